"""numpy versions of the tensor steps around the graphs: resizing, normalisation, bfloat16 storage, hole filling.

Each matches its torch counterpart in samstream (`transforms`, `postprocess`, `Tracker`) to float rounding.
"""
from __future__ import annotations

import numpy as np

IMAGENET_MEAN = np.array((0.485, 0.456, 0.406), dtype=np.float32)
IMAGENET_STD = np.array((0.229, 0.224, 0.225), dtype=np.float32)


# ------------------------------------------------------------------------------------------ resizing
def _aa_weights(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) weights of an antialiased bilinear (triangle filter) resize, as torch's antialias=True and
    PIL compute them: the filter widens by the scale when shrinking, and weights are normalised per output."""
    scale = n_in / n_out
    support = scale if scale > 1 else 1.0
    inv = 1.0 / scale if scale > 1 else 1.0
    w = np.zeros((n_out, n_in), dtype=np.float64)
    for i in range(n_out):
        center = (i + 0.5) * scale
        lo = max(int(center - support + 0.5), 0)
        hi = min(int(center + support + 0.5), n_in)
        j = np.arange(lo, hi)
        k = np.clip(1.0 - np.abs((j - center + 0.5) * inv), 0.0, None)
        total = k.sum()
        w[i, lo:hi] = k / total if total > 0 else 0
    return w.astype(np.float32)


def _bilinear_weights(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) weights of a plain bilinear resize with align_corners=False (torch's F.interpolate)."""
    scale = n_in / n_out
    src = np.maximum((np.arange(n_out) + 0.5) * scale - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    lam = (src - i0).astype(np.float32)
    w = np.zeros((n_out, n_in), dtype=np.float32)
    rows = np.arange(n_out)
    np.add.at(w, (rows, i0), 1 - lam)
    np.add.at(w, (rows, i1), lam)
    return w


def resize(x: np.ndarray, hw: tuple[int, int], antialias: bool = False) -> np.ndarray:
    """(..., h, w) float32 -> (..., H, W), bilinear (align_corners=False), antialiased when asked."""
    make = _aa_weights if antialias else _bilinear_weights
    wy, wx = make(x.shape[-2], hw[0]), make(x.shape[-1], hw[1])
    return np.matmul(np.matmul(wy, x.astype(np.float32)), wx.T)


def normalize(x: np.ndarray) -> np.ndarray:
    """(3, H, W) in [0, 1] -> ImageNet-normalised."""
    return (x - IMAGENET_MEAN[:, None, None]) / IMAGENET_STD[:, None, None]


def preprocess_image(image: np.ndarray, size: int) -> np.ndarray:
    """(H, W, 3) uint8 -> (1, 3, size, size) float32: antialiased bilinear, as samstream.transforms.preprocess_image."""
    x = image.transpose(2, 0, 1).astype(np.float32) / np.float32(255.0)
    return normalize(resize(x, (size, size), antialias=True))[None].astype(np.float32)


def preprocess_frame(image: np.ndarray, size: int) -> np.ndarray:
    """(H, W, 3) uint8 -> (1, 3, size, size) float32: PIL bicubic, as samstream.transforms.preprocess_frame."""
    from PIL import Image

    resized = np.asarray(Image.fromarray(image).resize((size, size), Image.BICUBIC))
    x = resized.transpose(2, 0, 1).astype(np.float32) / np.float32(255.0)
    return normalize(x)[None].astype(np.float32)


# ------------------------------------------------------------------------------------------ bfloat16 storage
def to_bfloat16_bits(x: np.ndarray) -> np.ndarray:
    """float32 -> bfloat16 as uint16 bits, rounded to nearest even (what torch's .to(torch.bfloat16) does)."""
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    rounded = (u + (np.uint32(0x7FFF) + ((u >> np.uint32(16)) & np.uint32(1)))) >> np.uint32(16)
    nan = np.isnan(x)
    if nan.any():
        rounded = np.where(nan, (u >> np.uint32(16)) | np.uint32(0x40), rounded)
    return rounded.astype(np.uint16)


def from_bfloat16_bits(b: np.ndarray) -> np.ndarray:
    return (b.astype(np.uint32) << np.uint32(16)).view(np.float32)


# ------------------------------------------------------------------------------------------ connected components
_NEIGHBOURS = ((0, 1), (1, 0), (1, 1), (1, -1))  # with their opposites: 8-connectivity


def component_areas(mask: np.ndarray) -> np.ndarray:
    """mask (H, W) bool -> area of the 8-connected component each True pixel belongs to (0 elsewhere), as
    samstream.postprocess.component_areas (scipy) gives. Label propagation with pointer jumping: every pixel
    points to the smallest index found in its component so far, until no neighbour knows a smaller one."""
    h, w = mask.shape
    n = h * w
    idx = np.arange(n, dtype=np.int64).reshape(h, w)
    big = np.int64(n)
    lab = np.where(mask, idx, big).ravel()
    pad_mask = np.pad(mask, 1)
    pairs = []  # (pixel, neighbour) flat indices of 8-adjacent True pixels, each edge once
    for dy, dx in _NEIGHBOURS:
        nb = pad_mask[1 + dy: 1 + dy + h, 1 + dx: 1 + dx + w]
        both = mask & nb
        ys, xs = np.nonzero(both)
        pairs.append((ys * w + xs, (ys + dy) * w + xs + dx))
    a = np.concatenate([p[0] for p in pairs]) if pairs else np.zeros(0, np.int64)
    b = np.concatenate([p[1] for p in pairs]) if pairs else np.zeros(0, np.int64)
    fg = np.flatnonzero(mask)
    while True:
        la, lb = lab[a], lab[b]
        lo = np.minimum(la, lb)
        changed = (la != lo) | (lb != lo)
        if not changed.any():
            break
        # hook the roots of both ends onto the smaller label, then jump pointers to their roots
        np.minimum.at(lab, la, lo)
        np.minimum.at(lab, lb, lo)
        while True:
            nxt = lab[lab[fg]]
            if np.array_equal(nxt, lab[fg]):
                break
            lab[fg] = nxt
    out = np.zeros(n, dtype=np.int64)
    if fg.size:
        counts = np.bincount(lab[fg], minlength=n)
        out[fg] = counts[lab[fg]]
    return out.reshape(h, w)


def fill_holes(logits: np.ndarray, max_area: int, fill_value: float) -> np.ndarray:
    """Background components (logit <= 0) of at most max_area pixels of each (..., H, W) map get fill_value."""
    if max_area <= 0:
        return logits
    flat = logits.reshape(-1, *logits.shape[-2:])
    out = flat.copy()
    for i in range(flat.shape[0]):
        areas = component_areas(flat[i] <= 0)
        hole = (areas > 0) & (areas <= max_area)
        out[i][hole] = fill_value
    return out.reshape(logits.shape)


def stability_score(logits: np.ndarray, offset: float) -> np.ndarray:
    """IoU of the masks thresholded at +/- offset; (..., H, W) -> (...)."""
    inter = (logits > offset).reshape(*logits.shape[:-2], -1).sum(-1).astype(np.float32)
    union = (logits > -offset).reshape(*logits.shape[:-2], -1).sum(-1).astype(np.float32)
    return np.where(union > 0, inter / np.maximum(union, 1), np.float32(1.0))
