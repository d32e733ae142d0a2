"""Rasterise a brush stroke onto a mask: a round brush swept along a polyline (pure numpy).

Coordinates are video pixels, x right, y down, with the image spanning [0, W] x [0, H]: pixel (row i, column j)
has its centre at (j + 0.5, i + 0.5), so a click on a pixel's square paints that pixel however small the brush.
"""
from __future__ import annotations

import itertools

import numpy as np


def paint_stroke(mask: np.ndarray, points, radius: float, erase: bool = False) -> np.ndarray:
    """A copy of `mask` (H, W) bool with the stroke painted (or erased with erase=True).

    points: [[x, y], ...] (one point paints a disc); radius: brush radius in pixels (> 0). A pixel is in the
    stroke when its centre lies within `radius` of the polyline (the union of capsules between consecutive
    points). Parts of the stroke outside the image are ignored.
    """
    out = np.array(mask, dtype=bool, copy=True)
    if out.ndim != 2:
        raise ValueError(f"mask must be 2-D (H, W), got shape {out.shape}")
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)  # (N, 2) x, y
    if len(pts) == 0:
        raise ValueError("points: a stroke needs at least one point")
    if not np.isfinite(pts).all():
        raise ValueError("points: coordinates must be finite numbers")
    if not (np.isfinite(radius) and radius > 0):
        raise ValueError(f"radius must be a finite number > 0, got {radius}")
    h, w = out.shape
    segments = itertools.pairwise(pts) if len(pts) > 1 else [(pts[0], pts[0])]
    for a, b in segments:
        # only the capsule's bounding box is looked at: a stroke costs its area, not the frame's
        x0 = max(int(np.floor(min(a[0], b[0]) - radius)), 0)
        x1 = min(int(np.ceil(max(a[0], b[0]) + radius)) + 1, w)
        y0 = max(int(np.floor(min(a[1], b[1]) - radius)), 0)
        y1 = min(int(np.ceil(max(a[1], b[1]) + radius)) + 1, h)
        if x0 >= x1 or y0 >= y1:
            continue
        px = np.arange(x0, x1, dtype=np.float64)[None, :] + 0.5  # (1, w') pixel centres
        py = np.arange(y0, y1, dtype=np.float64)[:, None] + 0.5  # (h', 1)
        d = b - a
        length2 = float(d @ d)
        # the nearest point of segment a-b to each pixel centre, as a fraction t of the way from a to b
        t = 0.0 if length2 == 0 else np.clip(((px - a[0]) * d[0] + (py - a[1]) * d[1]) / length2, 0.0, 1.0)
        dist2 = (px - (a[0] + t * d[0])) ** 2 + (py - (a[1] + t * d[1])) ** 2  # (h', w')
        out[y0:y1, x0:x1][dist2 <= radius * radius] = not erase
    return out
