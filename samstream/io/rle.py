"""COCO run-length encoding (RLE), bit-compatible with pycocotools (no dependency on it).

Counts are run lengths over the mask flattened in column-major (Fortran) order, alternating
background / foreground and always starting with background (so the first count may be 0).
An RLE is a dict {"size": [h, w], "counts": ...} where counts is either

* a list of ints ("uncompressed", as in COCO `iscrowd` ground truth), or
* a string ("compressed", pycocotools' rleToString): each count, from the 4th on, is first replaced
  by its difference to the count two before it (quirk of pycocotools: `i > 2`, not `i >= 2`), then
  written LEB128-like in 5-bit groups, least significant first, one ASCII char (48 + 6 bits) per
  group with bit 0x20 meaning "more groups follow" and bit 0x10 of the last group the sign.
"""
from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from .errors import FormatError


def encode_counts(mask) -> list[int]:
    """Run lengths of a (H, W) binary mask in column-major order, starting with background."""
    m = np.asarray(mask)
    if m.ndim != 2:
        raise ValueError(f"mask must be 2-D (H, W), got shape {m.shape}")
    flat = (m != 0).ravel(order="F")  # (H*W,) column-major
    if flat.size == 0:
        return [0]  # what pycocotools' rleEncode gives for an empty image
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1  # positions where a new run starts
    edges = np.concatenate(([0], change, [flat.size]))
    runs = np.diff(edges).tolist()
    if flat[0]:
        runs.insert(0, 0)  # counts always start with a (possibly empty) background run
    return runs


def _check_counts(counts: Sequence[int], h: int, w: int, path, field) -> np.ndarray:
    arr = np.asarray(counts)
    if arr.ndim != 1 or (arr.size and not np.issubdtype(arr.dtype, np.integer)):
        raise FormatError("counts must be a flat list of integers", path=path, field=field)
    arr = arr.astype(np.int64)
    if arr.size and arr.min() < 0:
        raise FormatError(f"negative run length {int(arr.min())}", path=path, field=field)
    if int(arr.sum()) != h * w:
        raise FormatError(f"run lengths sum to {int(arr.sum())}, expected {h * w} ({h}x{w})", path=path, field=field)
    return arr


def decode_counts(counts: Sequence[int], h: int, w: int, *, path=None, field: str = "counts") -> np.ndarray:
    """(h, w) bool mask from column-major run lengths (validated: non-negative, summing to h*w)."""
    arr = _check_counts(counts, h, w, path, field)
    values = (np.arange(arr.size) % 2).astype(bool)  # background, foreground, background, ...
    flat = np.repeat(values, arr)  # (h*w,) column-major
    return flat.reshape(w, h).T.copy()  # back to row-major (h, w)


def counts_to_string(counts: Sequence[int]) -> str:
    """pycocotools' compressed string for a list of run lengths."""
    cnts = [int(c) for c in counts]
    out = []
    for i, c in enumerate(cnts):
        x = c - cnts[i - 2] if i > 2 else c
        more = True
        while more:
            ch = x & 0x1F
            x >>= 5  # arithmetic shift: Python ints keep the sign like C's `long`
            more = x != -1 if ch & 0x10 else x != 0
            if more:
                ch |= 0x20
            out.append(chr(ch + 48))
    return "".join(out)


def string_to_counts(s: str | bytes, *, path=None, field: str = "counts") -> list[int]:
    """Run lengths from pycocotools' compressed string (inverse of `counts_to_string`)."""
    if isinstance(s, (bytes, bytearray)):
        try:
            s = s.decode("ascii")
        except UnicodeDecodeError:
            raise FormatError("compressed counts are not ASCII", path=path, field=field) from None
    if not isinstance(s, str):
        raise FormatError(f"compressed counts must be a string, got {type(s).__name__}", path=path, field=field)
    counts: list[int] = []
    p, n = 0, len(s)
    while p < n:
        x = k = 0
        more = True
        while more:
            if p >= n:
                raise FormatError("compressed counts end in the middle of a number", path=path, field=field)
            c = ord(s[p]) - 48
            if not 0 <= c < 64:
                raise FormatError(f"invalid character {s[p]!r} at offset {p}", path=path, field=field)
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and c & 0x10:
                x |= -1 << (5 * k)  # sign-extend
        if len(counts) > 2:
            x += counts[-2]
        counts.append(x)
    return counts


def encode_rle(mask, *, compressed: bool = True) -> dict:
    """COCO RLE of a (H, W) binary mask: {"size": [h, w], "counts": str (compressed) or list[int]}."""
    m = np.asarray(mask)
    counts = encode_counts(m)
    h, w = int(m.shape[0]), int(m.shape[1])
    return {"size": [h, w], "counts": counts_to_string(counts) if compressed else counts}


def _size_of(rle, path, field) -> tuple[int, int]:
    if not isinstance(rle, dict):
        raise FormatError(f"an RLE must be a dict with 'size' and 'counts', got {type(rle).__name__}",
                          path=path, field=field)
    if "size" not in rle or "counts" not in rle:
        missing = [k for k in ("size", "counts") if k not in rle]
        raise FormatError(f"RLE lacks {missing}", path=path, field=field)
    size = rle["size"]
    if (
        not isinstance(size, (list, tuple))
        or len(size) != 2
        or not all(isinstance(v, (int, np.integer)) or (isinstance(v, float) and v.is_integer()) for v in size)
        or min(size) < 0
    ):
        raise FormatError(f"size must be [height, width] non-negative integers, got {size!r}",
                          path=path, field=f"{field}.size")
    return int(size[0]), int(size[1])


def rle_counts(rle: dict, *, path=None, field: str = "segmentation") -> list[int]:
    """Run lengths of an RLE dict whose counts are compressed or uncompressed (validated)."""
    h, w = _size_of(rle, path, field)
    counts = rle["counts"]
    if isinstance(counts, (str, bytes, bytearray)):
        counts = string_to_counts(counts, path=path, field=f"{field}.counts")
    elif not isinstance(counts, (list, tuple, np.ndarray)):
        raise FormatError(f"counts must be a string or a list, got {type(counts).__name__}",
                          path=path, field=f"{field}.counts")
    return _check_counts(counts, h, w, path, f"{field}.counts").tolist()


def decode_rle(rle: dict, *, path: str | os.PathLike | None = None, field: str = "segmentation") -> np.ndarray:
    """(h, w) bool mask of a COCO RLE dict (compressed or uncompressed counts)."""
    h, w = _size_of(rle, path, field)
    return decode_counts(rle_counts(rle, path=path, field=field), h, w, path=path, field=f"{field}.counts")


def compress_rle(rle: dict) -> dict:
    """The same RLE with compressed (string) counts."""
    counts = rle_counts(rle)
    return {"size": [int(v) for v in rle["size"]], "counts": counts_to_string(counts)}


def rle_area(rle: dict) -> int:
    """Foreground pixel count (sum of the odd-indexed runs)."""
    return int(sum(rle_counts(rle)[1::2]))


def rle_bbox(rle: dict) -> list[float]:
    """[x, y, width, height] of the foreground, as pycocotools' toBbox (zeros when empty)."""
    h, _ = _size_of(rle, None, "segmentation")
    counts = np.asarray(rle_counts(rle), dtype=np.int64)
    m = (counts.size // 2) * 2  # only complete (background, foreground) pairs count
    if m == 0 or h == 0:
        return [0.0, 0.0, 0.0, 0.0]
    cum = np.cumsum(counts[:m])
    pos = cum - (np.arange(m) % 2)  # even j: first pixel of a foreground run; odd j: its last pixel
    x, y = pos // h, pos % h
    xs, xe, ys, ye = int(x.min()), int(x.max()), int(y.min()), int(y.max())
    if np.any(x[1::2] > x[0::2]):  # a run crossing a column covers the last and first rows
        ys, ye = 0, h - 1
    return [float(xs), float(ys), float(xe - xs + 1), float(ye - ys + 1)]


def merge_rles(rles: Sequence[dict], *, intersect: bool = False) -> dict:
    """Union (or intersection) of RLEs of the same size, compressed."""
    if not rles:
        raise ValueError("merge_rles needs at least one RLE")
    masks = [decode_rle(r) for r in rles]
    if any(m.shape != masks[0].shape for m in masks):
        raise ValueError(f"RLE sizes differ: {[list(m.shape) for m in masks]}")
    out = masks[0].copy()
    for m in masks[1:]:
        out = out & m if intersect else out | m
    return encode_rle(out)
