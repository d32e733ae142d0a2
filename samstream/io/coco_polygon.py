"""COCO polygon -> RLE rasterisation, following pycocotools' rleFrPoly step by step.

pycocotools upsamples the polygon 5x, walks each edge pixel by pixel, keeps the points where the
walk crosses a pixel column centre, and turns those y-boundary points into column-major runs.
The integer casts below mirror the C code's (truncation towards zero, `(int)(v + .5)`), so the
masks are the ones COCO ground truth is scored with, not a generic scanline fill.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .rle import counts_to_string, decode_counts, merge_rles

_SCALE = 5.0


def _trunc(v: np.ndarray) -> np.ndarray:
    """C's (int) cast of doubles: truncation towards zero."""
    return np.trunc(v).astype(np.int64)


def polygon_counts(xy: Sequence[float], h: int, w: int) -> list[int]:
    """Column-major run lengths of one polygon [x0, y0, x1, y1, ...] rasterised as pycocotools does."""
    pts = np.asarray(xy, dtype=np.float64).reshape(-1, 2)  # (k, 2) x, y
    k = pts.shape[0]
    x = _trunc(_SCALE * pts[:, 0] + 0.5)
    y = _trunc(_SCALE * pts[:, 1] + 0.5)
    x = np.append(x, x[0])  # (k+1,) closed
    y = np.append(y, y[0])
    us, vs = [], []
    # Dense walk along every edge at 5x resolution.
    for j in range(k):
        xs, xe, ys, ye = int(x[j]), int(x[j + 1]), int(y[j]), int(y[j + 1])
        dx, dy = abs(xe - xs), abs(ys - ye)
        flip = (dx >= dy and xs > xe) or (dx < dy and ys > ye)
        if flip:
            xs, xe, ys, ye = xe, xs, ye, ys
        if dx >= dy:
            s = (ye - ys) / dx if dx else 0.0  # C divides 0/0 only when dx == dy == 0; t is 0 then
            d = np.arange(dx + 1)
            t = dx - d if flip else d
            us.append(t + xs)
            vs.append(_trunc(ys + s * t + 0.5))
        else:
            s = (xe - xs) / dy
            d = np.arange(dy + 1)
            t = dy - d if flip else d
            vs.append(t + ys)
            us.append(_trunc(xs + s * t + 0.5))
    u = np.concatenate(us)  # (m,) x at 5x
    v = np.concatenate(vs)  # (m,) y at 5x
    # Points where the walk moves to another column, mapped back to pixel column centres.
    j = np.flatnonzero(u[1:] != u[:-1]) + 1
    xd = np.where(u[j] < u[j - 1], u[j], u[j] - 1).astype(np.float64)
    xd = (xd + 0.5) / _SCALE - 0.5
    keep = (np.floor(xd) == xd) & (xd >= 0) & (xd <= w - 1)
    yd = np.where(v[j] < v[j - 1], v[j], v[j - 1]).astype(np.float64)
    yd = (yd + 0.5) / _SCALE - 0.5
    yd = np.ceil(np.clip(yd, 0, h))
    xi, yi = xd[keep].astype(np.int64), yd[keep].astype(np.int64)
    # Boundary positions in column-major order -> run lengths; equal positions cancel out.
    a = np.sort(np.append(xi * h + yi, h * w))
    a = np.diff(a, prepend=0).tolist()
    b = [a[0]]
    i = 1
    while i < len(a):
        if a[i] > 0:
            b.append(a[i])
            i += 1
        else:  # a zero-length run merges its two neighbours
            i += 1
            if i < len(a):
                b[-1] += a[i]
                i += 1
    return [int(c) for c in b]


def polygons_to_rle(polygons: Sequence[Sequence[float]], h: int, w: int) -> dict:
    """Union of COCO polygons (each [x0, y0, x1, y1, ...], >= 3 points) as a compressed RLE."""
    if not polygons:
        raise ValueError("no polygon given")
    rles = []
    for i, poly in enumerate(polygons):
        if len(poly) < 6 or len(poly) % 2:
            raise ValueError(f"polygon {i} has {len(poly)} coordinates; need an even number >= 6")
        if not all(math.isfinite(float(c)) for c in poly):
            raise ValueError(f"polygon {i} has a non-finite coordinate")
        rles.append({"size": [h, w], "counts": counts_to_string(polygon_counts(poly, h, w))})
    return rles[0] if len(rles) == 1 else merge_rles(rles)


def polygons_to_mask(polygons: Sequence[Sequence[float]], h: int, w: int) -> np.ndarray:
    """(h, w) bool mask of COCO polygons, pixel for pixel as pycocotools rasterises them."""
    out = np.zeros((h, w), dtype=bool)
    for poly in polygons:
        out |= decode_counts(polygon_counts(poly, h, w), h, w)
    return out
