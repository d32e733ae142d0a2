"""Media for the browser: video frames as downscaled JPEGs, masks as RGBA PNG overlays, object colours.

The browser shows frames at its display size, so frames are sent downscaled (long side <= `max_side`) and
overlays are drawn at that size too: a few objects on 1280x720 are a few numpy operations and one PNG encode.
"""
from __future__ import annotations

import io
import os
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np
from PIL import Image

from ..io.palette import davis_palette
from ..video.sources import open_source

RAW_CACHE_BYTES = 192 * 2**20  # decoded frames kept for the next request (a backward step reuses a decoded run)
CONTOUR_PX = 2


def display_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """(w, h) of a width x height frame shown with its long side at most `max_side`; never upscaled."""
    width, height, max_side = int(width), int(height), int(max_side)
    if width < 1 or height < 1 or max_side < 1:
        raise ValueError(f"display size of {width}x{height} at max side {max_side}: all must be positive")
    long = max(width, height)
    if long <= max_side:
        return width, height
    scale = max_side / long
    return (max_side if width == long else max(1, round(width * scale)),
            max_side if height == long else max(1, round(height * scale)))


class FrameImages:
    """One video's frames for the browser: JPEGs at display size (LRU cache, keyed by frame, size and quality)
    and full-resolution RGB. Its own FrameSource, so reading frames never moves the model's decoder; one lock,
    since requests arrive from a thread pool and a source decodes one frame at a time."""

    def __init__(self, path: str | os.PathLike, cache_frames: int = 64):
        self.path = Path(path)
        self._src = open_source(self.path)
        self._lock = threading.Lock()
        self._jpegs: OrderedDict[tuple, bytes] = OrderedDict()
        self._raw: OrderedDict[int, np.ndarray] = OrderedDict()
        self.cache_frames = int(cache_frames)

    @property
    def num_frames(self) -> int | None:
        return self._src.num_frames

    def _read(self, frame: int) -> np.ndarray:
        """Frame (H, W, 3) uint8, from the decoded-frame cache or the source (keeping the run it decodes)."""
        if frame in self._raw:
            self._raw.move_to_end(frame)
            return self._raw[frame]
        out = None
        for k, rgb in self._src.fetch(frame):
            rgb.flags.writeable = False  # shared by the caches
            self._raw[k] = rgb
            self._raw.move_to_end(k)
            out = rgb
        limit = max(1, RAW_CACHE_BYTES // max(1, out.nbytes))
        while len(self._raw) > limit:
            self._raw.popitem(last=False)
        return out

    def rgb(self, frame: int) -> np.ndarray:
        """Frame `frame` at full resolution: (H, W, 3) uint8, the caller's own copy."""
        with self._lock:
            return self._read(self._src.check_index(frame)).copy()

    def jpeg(self, frame: int, max_side: int = 1280, quality: int = 85) -> bytes:
        """Frame `frame` as a JPEG, long side at most `max_side` (never upscaled)."""
        if not 1 <= int(quality) <= 95:
            raise ValueError(f"JPEG quality {quality}: expected 1..95")
        with self._lock:
            idx = self._src.check_index(frame)
            if self._src.frame_size is None:
                self._read(idx)  # the size is known after the first frame
            h, w = self._src.frame_size
            size = display_size(w, h, max_side)
            key = (idx, size, int(quality))
            if key in self._jpegs:
                self._jpegs.move_to_end(key)
                return self._jpegs[key]
            img = Image.fromarray(self._read(idx))
            if size != (w, h):
                img = img.resize(size, Image.Resampling.LANCZOS, reducing_gap=2.0)
            buf = io.BytesIO()
            img.save(buf, "JPEG", quality=int(quality))
            data = buf.getvalue()
            self._jpegs[key] = data
            while len(self._jpegs) > self.cache_frames:
                self._jpegs.popitem(last=False)
            return data

    def close(self) -> None:
        with self._lock:
            self._src.close()
            self._jpegs.clear()
            self._raw.clear()


def default_colour(obj_id: int) -> str:
    """'#rrggbb' of object `obj_id` (0..255) in the DAVIS palette, the colour its PNG label gets elsewhere."""
    obj_id = int(obj_id)
    if not 0 <= obj_id <= 255:
        raise ValueError(f"object id {obj_id}: expected 0..255")
    r, g, b = (int(c) for c in davis_palette()[obj_id])
    return f"#{r:02x}{g:02x}{b:02x}"


def parse_colour(colour: str) -> tuple[int, int, int]:
    """'#rrggbb' -> (r, g, b); ValueError naming the text otherwise."""
    if not (isinstance(colour, str) and len(colour) == 7 and colour[0] == "#"):
        raise ValueError(f"colour {colour!r}: expected '#rrggbb'")
    try:
        return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)
    except ValueError:
        raise ValueError(f"colour {colour!r}: expected '#rrggbb'") from None


def _erode(m: np.ndarray) -> np.ndarray:
    """One 4-neighbour erosion step; outside the frame counts as the border pixel (the frame's edge is no
    object edge)."""
    p = np.pad(m, 1, mode="edge")
    return m & p[:-2, 1:-1] & p[2:, 1:-1] & p[1:-1, :-2] & p[1:-1, 2:]


def overlay_png(masks: dict[int, np.ndarray], colours: dict[int, str], size: tuple[int, int],
                alpha: int = 128) -> bytes:
    """RGBA PNG of `size` (w, h) showing full-resolution (H, W) bool masks per obj_id: the object's colour
    (`colours[obj_id]`, else `default_colour`) at `alpha` inside, an opaque 2-px contour at its inner edge,
    transparent elsewhere; later objects drawn over earlier ones. Downscaled by nearest neighbour."""
    w, h = (int(v) for v in size)
    if w < 1 or h < 1:
        raise ValueError(f"overlay size {size}: expected positive (w, h)")
    alpha = int(alpha)
    if not 0 <= alpha <= 255:
        raise ValueError(f"alpha {alpha}: expected 0..255")
    out = np.zeros((h, w, 4), dtype=np.uint8)
    picks: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
    for obj_id, mask in masks.items():
        mask = np.asarray(mask)
        if mask.ndim != 2:
            raise ValueError(f"mask of object {obj_id}: expected (H, W), got shape {mask.shape}")
        mh, mw = mask.shape
        if (mh, mw) not in picks:  # source row / column of each display pixel (its centre)
            rows = np.minimum(((np.arange(h) + 0.5) * (mh / h)).astype(np.intp), mh - 1)
            cols = np.minimum(((np.arange(w) + 0.5) * (mw / w)).astype(np.intp), mw - 1)
            picks[mh, mw] = rows, cols
        rows, cols = picks[mh, mw]
        m = mask.astype(bool, copy=False)
        m = m if (mh, mw) == (h, w) else m[rows[:, None], cols[None, :]]
        if not m.any():
            continue
        inner = m
        for _ in range(CONTOUR_PX):
            inner = _erode(inner)
        rgb = parse_colour(colours[obj_id]) if obj_id in colours else parse_colour(default_colour(obj_id))
        out[m] = (*rgb, alpha)
        out[m & ~inner] = (*rgb, 255)
    buf = io.BytesIO()
    Image.fromarray(out, "RGBA").save(buf, "PNG", compress_level=1)  # speed over size: it is sent once
    return buf.getvalue()
