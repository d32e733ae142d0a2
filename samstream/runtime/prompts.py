"""Validating user prompts and scaling them to model-input pixels (numpy), with ImagePredictor's rules and errors."""
from __future__ import annotations

import reprlib

import numpy as np

LABELS = (0, 1)


def _numbers(x, what: str, shape: str) -> np.ndarray:
    try:
        return np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be numbers of shape {shape}, got {reprlib.repr(x)}") from None


def _scale(xy: np.ndarray, hw, size: int, normalize_coords: bool, what: str) -> np.ndarray:
    h, w = hw
    lim = np.array([w, h] if normalize_coords else [1.0, 1.0], dtype=np.float32)
    bad = ~np.isfinite(xy).all(-1)
    if bad.any():
        raise ValueError(f"{what} {tuple(xy[bad][0].tolist())}: coordinates must be finite numbers, not NaN or "
                         f"infinity")
    out_of = ((xy < 0) | (xy > lim)).any(-1)
    if out_of.any():
        p = xy[out_of][0].tolist()
        frame = f"{w}x{h} image" if normalize_coords else "[0, 1] range (normalize_coords=False)"
        raise ValueError(f"{what} ({p[0]:g}, {p[1]:g}) lies outside the {frame}")
    return xy / lim * np.float32(size)


def prepare_points(hw, size: int, points=None, labels=None, box=None, normalize_coords: bool = True):
    """-> (coords (B, N, 2) float32 model-input pixels, labels (B, N) int32) or None; a box becomes two corners
    labelled 2 and 3, placed before the clicks (as the model was trained)."""
    pts = None
    if points is not None:
        xy = _numbers(points, "points", "(N, 2) or (B, N, 2)").astype(np.float32)
        if xy.ndim == 2:
            xy = xy[None]
        if xy.ndim != 3 or xy.shape[-1] != 2 or xy.shape[1] == 0:
            raise ValueError(f"points must have shape (N, 2) or (B, N, 2), got {tuple(np.shape(points))}")
        if labels is None:
            lab = np.ones(xy.shape[:2], dtype=np.int32)
        else:
            lab_f = _numbers(labels, "point labels", "(N,) or (B, N)")
            if lab_f.ndim == 1:
                lab_f = lab_f[None]
            if lab_f.shape != xy.shape[:2]:
                raise ValueError(f"labels shape {tuple(np.shape(labels))} does not match points shape "
                                 f"{tuple(np.shape(points))}")
            if not np.isin(lab_f, LABELS).all():
                raise ValueError("point labels must be 1 (foreground) or 0 (background)")
            lab = lab_f.astype(np.int32)
        pts = (_scale(xy, hw, size, normalize_coords, "point"), lab)
    elif labels is not None:
        raise ValueError("labels given without points")
    if box is not None:
        bx = _numbers(box, "box", "(4,) or (B, 4) as x0, y0, x1, y1").astype(np.float32)
        if bx.ndim == 1:
            bx = bx[None]
        if bx.ndim != 2 or bx.shape[-1] != 4:
            raise ValueError(f"box must have shape (4,) or (B, 4) as x0, y0, x1, y1, got {tuple(np.shape(box))}")
        if ((bx[:, 2] < bx[:, 0]) | (bx[:, 3] < bx[:, 1])).any():
            raise ValueError("a box has x1 < x0 or y1 < y0; boxes are (x0, y0, x1, y1)")
        corners = _scale(bx.reshape(-1, 2, 2), hw, size, normalize_coords, "box corner")
        corner_labels = np.broadcast_to(np.array([[2, 3]], np.int32), (corners.shape[0], 2))
        if pts is None:
            pts = (corners, corner_labels.copy())
        else:
            n = max(corners.shape[0], pts[0].shape[0])
            if corners.shape[0] not in (1, n) or pts[0].shape[0] not in (1, n):
                raise ValueError(f"{corners.shape[0]} boxes and {pts[0].shape[0]} point sets cannot be paired")
            xy, lab = pts
            pts = (np.concatenate([np.broadcast_to(corners, (n, 2, 2)), np.broadcast_to(xy, (n, *xy.shape[1:]))], 1),
                   np.concatenate([np.broadcast_to(corner_labels, (n, 2)), np.broadcast_to(lab, (n, lab.shape[1]))], 1))
    return pts


def to_rgb(image, name: str = "image") -> np.ndarray:
    """numpy (H, W, 3) uint8, a PIL image or a path -> (H, W, 3) uint8 RGB."""
    import os

    if isinstance(image, (str, os.PathLike)):
        from ..io.images import open_image

        with open_image(image) as im:
            return np.asarray(im.convert("RGB"))
    if hasattr(image, "convert") and not isinstance(image, np.ndarray):  # a PIL image
        return np.asarray(image.convert("RGB"))
    a = np.asarray(image)
    if a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"{name} must have shape (H, W, 3) (RGB, channels last), got {a.shape}")
    if a.dtype != np.uint8:
        raise ValueError(f"{name} must be uint8 in 0..255, got dtype {a.dtype}")
    return a
