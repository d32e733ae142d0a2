"""Boundary maps and disk dilation for the boundary F-measure, as the DAVIS 2017 toolkit computes them.

The toolkit dilates with `cv2.dilate(bmap, skimage.morphology.disk(r))`. We do the same operation
without OpenCV or scikit-image: the footprint is skimage's disk(r) (all offsets with dx² + dy² <= r²),
and dilation is the OR of the row-runs of that disk, so the maps are identical to cv2.dilate's
(the disk is symmetric, and pixels outside the image never switch a pixel on, as with cv2's
default border for dilation).
"""
from __future__ import annotations

import math

import numpy as np


def seg2bmap(mask) -> np.ndarray:
    """(H, W) bool boundary map of a (H, W) binary mask (DAVIS `_seg2bmap`, full resolution).

    A pixel is on the boundary when it differs from its east, south or south-east neighbour, with
    neighbours outside the image read as 0; quirk kept from the toolkit: on the last row only the east
    neighbour counts, on the last column only the south one, and the bottom-right pixel is never a
    boundary (so a mask covering the whole image has an empty boundary).
    """
    seg = np.asarray(mask).astype(bool)
    if seg.ndim != 2:
        raise ValueError(f"seg2bmap expects a 2-D mask, got shape {seg.shape}")
    e = np.zeros_like(seg)
    s = np.zeros_like(seg)
    se = np.zeros_like(seg)
    e[:, :-1] = seg[:, 1:]
    s[:-1, :] = seg[1:, :]
    se[:-1, :-1] = seg[1:, 1:]
    b = (seg ^ e) | (seg ^ s) | (seg ^ se)
    b[-1, :] = seg[-1, :] ^ e[-1, :]
    b[:, -1] = seg[:, -1] ^ s[:, -1]
    b[-1, -1] = False
    return b


def boundary_radius(shape: tuple[int, ...], bound_th: float = 0.008) -> int:
    """Dilation radius in pixels: bound_th itself when >= 1, else ceil(bound_th * image diagonal)."""
    if bound_th >= 1:
        return int(bound_th)
    # Same float expression as the toolkit (np.linalg.norm of the shape) so the ceil agrees.
    return int(np.ceil(bound_th * np.linalg.norm(shape[:2])))


def disk(radius: int) -> np.ndarray:
    """(2r+1, 2r+1) bool footprint equal to skimage.morphology.disk(r): dx² + dy² <= r²."""
    r = int(radius)
    d = np.arange(-r, r + 1)
    return (d[:, None] ** 2 + d[None, :] ** 2) <= r * r


def dilate_disk(bmap, radius: int) -> np.ndarray:
    """(H, W) bool dilation of a (H, W) binary map by disk(radius); equals cv2.dilate with that disk."""
    b = np.asarray(bmap).astype(bool)
    r = int(radius)
    out = np.zeros_like(b)
    rows = np.flatnonzero(b.any(axis=1))
    if rows.size == 0:
        return out
    cols = np.flatnonzero(b.any(axis=0))
    H, W = b.shape
    # Work on the bounding box of the set pixels grown by r: nothing outside it can switch on.
    y0, y1 = max(rows[0] - r, 0), min(rows[-1] + r + 1, H)
    x0, x1 = max(cols[0] - r, 0), min(cols[-1] + r + 1, W)
    sub = b[y0:y1, x0:x1]
    h, w = sub.shape
    csum = np.zeros((h, w + 1), dtype=np.int32)  # csum[:, x] = number of set pixels left of x
    np.cumsum(sub, axis=1, out=csum[:, 1:])
    x = np.arange(w)
    horiz: dict[int, np.ndarray] = {}  # half-width -> (h, w) horizontal dilation by [-hw, hw]
    res = np.zeros((h, w), dtype=bool)
    for dy in range(-min(r, h - 1), min(r, h - 1) + 1):  # shifts of h or more rows reach nothing
        hw = math.isqrt(r * r - dy * dy)  # disk row dy spans dx in [-hw, hw]
        if hw not in horiz:
            lo = np.clip(x - hw, 0, w)
            hi = np.clip(x + hw + 1, 0, w)
            horiz[hw] = (csum[:, hi] - csum[:, lo]) > 0
        src = horiz[hw]
        # res[y] |= src[y + dy]: a set pixel at row y+dy reaches row y through disk row -dy (same width)
        if dy >= 0:
            res[: h - dy] |= src[dy:]
        else:
            res[-dy:] |= src[: h + dy]
    out[y0:y1, x0:x1] = res
    return out


def dilation_at(bmap, radius: int, ys, xs) -> np.ndarray:
    """dilate_disk(bmap, radius)[ys, xs] as a (N,) bool array, without building the dilated map.

    The F-measure only reads the dilated map at the other mask's boundary pixels, so we test, for
    each query pixel and each disk row dy, whether the row y+dy of `bmap` has a set pixel within
    [x - hw(dy), x + hw(dy)] (row prefix sums). Same footprint, same result, a fraction of the work.
    """
    b = np.asarray(bmap).astype(bool)
    ys = np.asarray(ys, dtype=np.int64)
    xs = np.asarray(xs, dtype=np.int64)
    hit = np.zeros(ys.shape, dtype=bool)
    rows = np.flatnonzero(b.any(axis=1))
    if rows.size == 0 or ys.size == 0:
        return hit
    cols = np.flatnonzero(b.any(axis=0))
    # Crop to the bounding box of the set pixels; query coordinates move with it.
    y0, x0 = rows[0], cols[0]
    sub = b[y0: rows[-1] + 1, x0: cols[-1] + 1]
    h, w = sub.shape
    csum = np.zeros((h, w + 1), dtype=np.int32)  # csum[y, x] = set pixels of row y left of x
    np.cumsum(sub, axis=1, out=csum[:, 1:])
    qy, qx = ys - y0, xs - x0
    r = int(radius)
    for dy in range(-r, r + 1):
        hw = math.isqrt(r * r - dy * dy)
        yy = qy + dy
        ok = (yy >= 0) & (yy < h) & (qx + hw >= 0) & (qx - hw < w)
        if not ok.any():
            continue
        yv = yy[ok]
        lo = np.clip(qx[ok] - hw, 0, w)
        hi = np.clip(qx[ok] + hw + 1, 0, w)
        hit[ok] |= (csum[yv, hi] - csum[yv, lo]) > 0
    return hit
