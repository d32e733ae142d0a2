"""YOLO segmentation labels: one line `class x1 y1 x2 y2 ...` per polygon, coordinates normalised
by the image width / height to [0, 1].

Masks become polygons by tracing pixel edges (vertices on pixel corners), so a hole-free 4-connected
region comes back pixel-exact when filled at pixel centres. The format is still lossy: holes are
dropped (one outline per line, no holes), objects split into one line per 4-connected part, and
coordinates are rounded to `decimals` places.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .atomic import atomic_write_text
from .errors import FormatError

# Direction of travel -> (dx, dy); screen coordinates, y grows downwards.
_DIRS = {0: (1, 0), 1: (0, 1), 2: (-1, 0), 3: (0, -1)}  # east, south, west, north


def _directed_edges(mask: np.ndarray) -> dict[tuple[int, int], list[tuple[tuple[int, int], int]]]:
    """Pixel edges between foreground and background, oriented clockwise (on screen) around the
    foreground: {start corner (x, y): [(end corner, direction), ...]}."""
    m = np.pad(mask, 1)  # (H+2, W+2) so every border pixel has a background neighbour
    fg = m[1:-1, 1:-1]
    r, c = np.nonzero(fg & ~m[:-2, 1:-1])  # top edges: (c, r) -> (c+1, r), east
    edges = [(c, r, c + 1, r, 0)]
    r, c = np.nonzero(fg & ~m[1:-1, 2:])  # right edges: (c+1, r) -> (c+1, r+1), south
    edges.append((c + 1, r, c + 1, r + 1, 1))
    r, c = np.nonzero(fg & ~m[2:, 1:-1])  # bottom edges: (c+1, r+1) -> (c, r+1), west
    edges.append((c + 1, r + 1, c, r + 1, 2))
    r, c = np.nonzero(fg & ~m[1:-1, :-2])  # left edges: (c, r+1) -> (c, r), north
    edges.append((c, r + 1, c, r, 3))
    out: dict = {}
    for x0, y0, x1, y1, d in edges:
        for a, b, e, f in zip(x0.tolist(), y0.tolist(), x1.tolist(), y1.tolist(), strict=False):
            out.setdefault((a, b), []).append(((e, f), d))
    return out


def mask_to_polygons(mask, *, keep_holes: bool = False) -> list[np.ndarray]:
    """Outlines of a (H, W) binary mask as (K, 2) float arrays of pixel-corner (x, y) coordinates.

    One polygon per 4-connected foreground part (clockwise on screen); hole outlines
    (counter-clockwise) only when keep_holes. Collinear vertices are removed.
    """
    m = np.asarray(mask) != 0
    if m.ndim != 2:
        raise ValueError(f"mask must be 2-D (H, W), got shape {m.shape}")
    out_edges = _directed_edges(m)  # static graph: corner -> [(next corner, direction)], <= 2 each
    unused = {(pos, d) for pos, outs in out_edges.items() for _, d in outs}
    polys = []
    for first in sorted(unused):  # sorted: deterministic output order
        if first not in unused:
            continue
        pos, d = first
        verts, dirs = [], []
        while True:
            unused.discard((pos, d))
            verts.append(pos)
            dirs.append(d)
            nxt = next(e for e, dd in out_edges[pos] if dd == d)
            outs = out_edges[nxt]
            if len(outs) == 1:
                nd = outs[0][1]
            else:
                # Two diagonal foreground pixels meet at this corner: turn right (clockwise) so
                # that each pixel stays on its own outline, i.e. foreground is 4-connected.
                nd = (d + 1) % 4
            pos, d = nxt, nd
            if (pos, d) == first:
                break
        # keep only corners where the direction changes
        verts = np.asarray(verts, dtype=np.int64)  # (E, 2) start corner of every edge
        dirs = np.asarray(dirs)  # (E,)
        turn = dirs != np.roll(dirs, 1)
        poly = verts[turn].astype(np.float64)  # (K, 2) x, y
        area2 = np.sum(poly[:, 0] * np.roll(poly[:, 1], -1) - np.roll(poly[:, 0], -1) * poly[:, 1])
        if area2 > 0 or keep_holes:  # outer outlines have positive area in (x, y-down) coordinates
            polys.append(poly)
    return polys


def fill_polygons(polygons: Sequence[np.ndarray], height: int, width: int) -> np.ndarray:
    """(height, width) bool union of polygons ((K, 2) pixel (x, y) coordinates), each filled even-odd,
    a pixel being inside when its centre (c + 0.5, r + 0.5) is."""
    out = np.zeros((height, width), dtype=bool)
    yc = np.arange(height) + 0.5  # (H,) row centres
    for poly in polygons:
        p = np.asarray(poly, dtype=np.float64).reshape(-1, 2)
        if len(p) < 3:
            continue
        x0, y0 = p[:, 0], p[:, 1]
        x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
        # (H, E): does edge e cross the horizontal line through row centre r (half-open in y)?
        cross = (y0[None, :] <= yc[:, None]) != (y1[None, :] <= yc[:, None])
        rows, e = np.nonzero(cross)
        t = (yc[rows] - y0[e]) / (y1[e] - y0[e])
        xs = x0[e] + t * (x1[e] - x0[e])  # x of each crossing
        # Toggle parity from the first pixel whose centre lies right of the crossing.
        cols = np.clip(np.ceil(xs - 0.5), 0, width).astype(np.int64)
        toggles = np.zeros((height, width + 1), dtype=np.int64)
        np.add.at(toggles, (rows, cols), 1)
        out |= (np.cumsum(toggles[:, :width], axis=1) % 2).astype(bool)
    return out


def mask_to_yolo(mask) -> list[np.ndarray]:
    """Normalised outlines ((K, 2) x/W, y/H in [0, 1]) of a (H, W) binary mask, holes dropped."""
    m = np.asarray(mask)
    h, w = m.shape[:2]
    return [p / np.array([w, h], dtype=np.float64) for p in mask_to_polygons(m)]


def yolo_to_mask(polygons: Sequence[np.ndarray], height: int, width: int) -> np.ndarray:
    """(height, width) bool mask from normalised polygons."""
    scale = np.array([width, height], dtype=np.float64)
    return fill_polygons([np.asarray(p, dtype=np.float64).reshape(-1, 2) * scale for p in polygons], height, width)


def format_yolo_labels(labels: Sequence[tuple[int, np.ndarray]], decimals: int = 6) -> str:
    """Text of a YOLO label file for [(class_id, (K, 2) normalised polygon), ...]."""
    lines = []
    for cls, poly in labels:
        p = np.asarray(poly, dtype=np.float64).reshape(-1)
        if p.size < 6:
            raise ValueError(f"a polygon needs >= 3 points, got {p.size // 2}")
        lines.append(" ".join([str(int(cls))] + [f"{v:.{decimals}f}" for v in p]))
    return "\n".join(lines) + ("\n" if lines else "")


def write_yolo_labels(path: str | os.PathLike, labels: Sequence[tuple[int, np.ndarray]], decimals: int = 6) -> Path:
    """Write a YOLO segmentation label file atomically."""
    return atomic_write_text(path, format_yolo_labels(labels, decimals))


def read_yolo_labels(path: str | os.PathLike, *, tolerance: float = 1e-6) -> list[tuple[int, np.ndarray]]:
    """Parse a YOLO segmentation label file into [(class_id, (K, 2) normalised polygon), ...]."""
    out = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            parts = line.split()
            if not parts:
                continue
            where = f"line {lineno}"
            try:
                cls = int(parts[0])
            except ValueError:
                raise FormatError(f"class id {parts[0]!r} is not an integer", path=path, field=where) from None
            if cls < 0:
                raise FormatError(f"negative class id {cls}", path=path, field=where)
            try:
                vals = np.array([float(v) for v in parts[1:]], dtype=np.float64)
            except ValueError as e:
                raise FormatError(f"non-numeric coordinate ({e})", path=path, field=where) from None
            if vals.size % 2:
                raise FormatError(f"odd number of coordinates ({vals.size})", path=path, field=where)
            if vals.size < 6:
                raise FormatError(f"a polygon needs >= 3 points, got {vals.size // 2}", path=path, field=where)
            if not np.all(np.isfinite(vals)) or vals.min() < -tolerance or vals.max() > 1 + tolerance:
                raise FormatError("coordinates must be normalised to [0, 1]", path=path, field=where)
            out.append((cls, vals.reshape(-1, 2)))
    return out


def write_yolo_masks(path: str | os.PathLike, masks: Sequence[tuple[int, np.ndarray]], decimals: int = 6) -> Path:
    """Write [(class_id, (H, W) binary mask), ...] as a YOLO label file (one line per outline)."""
    return write_yolo_labels(path, [(cls, p) for cls, m in masks for p in mask_to_yolo(m)], decimals)


def read_yolo_masks(path: str | os.PathLike, height: int, width: int) -> list[tuple[int, np.ndarray]]:
    """[(class_id, (height, width) bool mask), ...], one entry per line of a YOLO label file."""
    return [(cls, yolo_to_mask([p], height, width)) for cls, p in read_yolo_labels(path)]
