"""The frames a tracking session reads and their image features, through bounded LRU caches.

`FrameStore` sits between a `FrameSource` (which decodes) and the tracker: it keeps recent frames
and the image encoder's features of recent frames, and runs the encoder (on the frame and, with
mirror, its left-right flip in the same batch). Nothing holds the whole video, so a 10,000-frame
file costs the same memory as a 10-frame one.
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np
import torch

from ..model import ImageFeatures, SAM2Model
from ..transforms import preprocess_frame
from .sources import FrameSource, FrameUnavailableError


class LRUCache:
    """Least-recently-used map with a capacity in entries and, optionally, in bytes."""

    def __init__(self, max_items: int, max_bytes: int | None = None):
        if max_items < 1:
            raise ValueError(f"cache capacity must be >= 1, got {max_items}")
        self.max_items, self.max_bytes = max_items, max_bytes
        self._d: OrderedDict = OrderedDict()
        self._bytes = 0

    @staticmethod
    def _size(v) -> int:
        if isinstance(v, np.ndarray):
            return v.nbytes
        if isinstance(v, torch.Tensor):
            return v.numel() * v.element_size()
        if isinstance(v, ImageFeatures):
            return sum(LRUCache._size(t) for t in (v.embed, v.pos, *v.high_res))
        return 0

    def get(self, key):
        v = self._d.get(key)
        if v is not None:
            self._d.move_to_end(key)
        return v

    def put(self, key, value) -> None:
        if key in self._d:
            self._bytes -= self._size(self._d.pop(key))
        self._d[key] = value
        self._bytes += self._size(value)
        while len(self._d) > self.max_items or (self.max_bytes and self._bytes > self.max_bytes and len(self._d) > 1):
            _, old = self._d.popitem(last=False)
            self._bytes -= self._size(old)

    def __contains__(self, key) -> bool:
        return key in self._d

    def __len__(self) -> int:
        return len(self._d)

    @property
    def nbytes(self) -> int:
        return self._bytes

    def clear(self) -> None:
        self._d.clear()
        self._bytes = 0


class FrameStore:
    """Frames of a source and their image features for the tracker, through bounded LRU caches.

    Features (about 20 MB per 1024px frame) are computed at most once while cached; raw frames are
    kept for writers (overlays), for edge refinement and for one-pass sources, whose frames cannot be
    read again.
    """

    def __init__(self, source: FrameSource, model: SAM2Model, feature_cache: int = 2,
                 frame_cache_bytes: int = 256 << 20, frame_cache_items: int = 64, mirror: bool = False):
        self.source = source
        self.model = model
        self.mirror = mirror  # also encode each frame flipped left-right, in the same encoder batch
        self.features_cache = LRUCache(feature_cache)
        self.frames_cache = LRUCache(frame_cache_items, frame_cache_bytes)
        self.encode_count = 0  # image-encoder runs (for tests and statistics)

    # -- frames
    @property
    def num_frames(self) -> int | None:
        return self.source.num_frames

    def push(self, frame) -> int:
        """Append a frame to live input -> its index."""
        idx, arr = self.source.push(frame)
        self.frames_cache.put(idx, arr)
        return idx

    def frame(self, idx: int) -> np.ndarray:
        """RGB frame (H, W, 3) uint8: from the cache, else from the source (which says if it cannot give it)."""
        arr = self.frames_cache.get(idx)
        if arr is not None:
            return arr
        for k, f in self.source.fetch(idx):  # the frames read on the way are cached too, idx last
            self.frames_cache.put(k, f)
            arr = f
        return arr

    def has_frame(self, idx: int) -> bool:
        """Whether frame idx exists (reading ahead in a one-pass stream if needed)."""
        if idx < 0:
            return False
        n = self.source.num_frames
        if n is not None:
            return idx < n
        try:
            self.frame(idx)
            return True
        except FrameUnavailableError:
            return idx < self.source.num_read  # given already (and perhaps gone from the cache since)

    def video_hw(self) -> tuple[int, int]:
        """(H, W) of the frames (reads frame 0 if none was read yet)."""
        if self.source.frame_size is None:
            self.frame(0)
        return self.source.frame_size

    # -- features
    @torch.inference_mode()
    def features(self, idx: int, mirrored: bool = False) -> ImageFeatures:
        """Image features of frame idx, batch 1: embed (1, C, E, E), pos (1, C, E, E), high_res levels.
        mirrored: those of the frame flipped left-right (needs mirror=True)."""
        if mirrored and not self.mirror:
            raise ValueError("mirrored features need a FrameStore made with mirror=True")
        feats = self.features_cache.get(idx)
        if feats is None:
            m = self.model
            x = preprocess_frame(self.frame(idx), m.cfg.image_size)[None]  # (1, 3, S, S)
            if self.mirror:
                x = torch.cat([x, x.flip(-1)])  # (2, 3, S, S): both views in one encoder batch
            feats = m.encode_image(x.to(m.device, m.dtype))
            self.encode_count += 1
            self.features_cache.put(idx, feats)
        if not self.mirror:
            return feats
        i = slice(1, 2) if mirrored else slice(0, 1)
        return ImageFeatures(feats.embed[i], feats.pos[i], [h[i] for h in feats.high_res])

    def close(self) -> None:
        self.features_cache.clear()
        self.frames_cache.clear()
        self.source.close()
