"""Frame sources, read lazily, and the bounded caches between them and the model.

A source hands out RGB frames (H, W, 3) uint8 by index. Nothing here holds the whole video: decoded
frames and image features live in small LRU caches, so a 10,000-frame file costs the same memory as
a 10-frame one.

Kinds: a folder of images (natural sort, any names), a video file of any container/codec FFmpeg
reads (PyAV), a list/array of frames, and any iterator of frames (live input of unknown length).
"""
from __future__ import annotations

import os
import re
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..model import ImageFeatures, SAM2Model
from ..transforms import preprocess_frame, to_rgb_array

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif", ".ppm", ".pgm"}


class FrameReadError(ValueError):
    """A frame could not be read; the message names the file and the frame index."""


class FrameUnavailableError(IndexError, ValueError):
    """A frame index that the source cannot give (out of range, not reached yet, or gone from a stream)."""


def natural_key(name: str):
    """Sort key that orders "frame2" before "frame10" (digit runs compare as numbers)."""
    return [(0, int(t), "") if t.isdigit() else (1, 0, t.lower()) for t in re.split(r"(\d+)", name) if t]


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


# ------------------------------------------------------------------------------------------ sources
class FrameSource:
    """Base class: frames by index. `num_frames` is None while the length is unknown (live input)."""

    name = "frames"
    num_frames: int | None = None
    #: True when any frame can be re-read later; False for one-pass input (iterators, live streams)
    random_access = True

    def read(self, idx: int) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def describe(self, idx: int) -> str:
        """How a frame is named in error messages."""
        return f"{self.name}: frame {idx}"

    def check_index(self, idx: int) -> int:
        if not isinstance(idx, (int, np.integer)) or isinstance(idx, bool):
            raise TypeError(f"frame index must be an int, got {type(idx).__name__}")
        idx = int(idx)
        n = self.num_frames
        if idx < 0 or (n is not None and idx >= n):
            hi = f"0..{n - 1}" if n else "none (the video is empty)"
            raise FrameUnavailableError(f"frame index {idx} out of range: {self.name} has {n} frames ({hi})")
        return idx

    def close(self) -> None:
        pass


class ImageFolderSource(FrameSource):
    """A folder of image files in natural order ("img2.jpg" before "img10.jpg"); any names."""

    def __init__(self, folder: str | os.PathLike):
        folder = Path(folder)
        if not folder.is_dir():
            raise FileNotFoundError(f"not a folder: {folder}")
        files = [f for f in os.listdir(folder) if not f.startswith(".") and Path(f).suffix.lower() in IMAGE_EXTENSIONS]
        if not files:
            raise FrameReadError(f"{folder}: no image files ({', '.join(sorted(IMAGE_EXTENSIONS))})")
        self.folder = folder
        self.files = [folder / f for f in sorted(files, key=natural_key)]
        self.num_frames = len(self.files)
        self.name = str(folder)

    def describe(self, idx: int) -> str:
        return f"{self.files[idx]} (frame {idx})"

    def read(self, idx: int) -> np.ndarray:
        idx = self.check_index(idx)
        path = self.files[idx]
        try:
            with Image.open(path) as im:
                im.load()  # truncated data only fails here
                return np.asarray(im.convert("RGB"))
        except FileNotFoundError as e:
            raise FrameReadError(f"{self.describe(idx)}: file disappeared ({e})") from e
        except (OSError, SyntaxError, ValueError) as e:
            raise FrameReadError(f"{self.describe(idx)}: cannot be decoded as an image ({e})") from e


class ArraySource(FrameSource):
    """Frames held by the caller: a (T, H, W, 3) uint8 array, or a list of arrays / PIL images / paths."""

    def __init__(self, frames):
        if isinstance(frames, np.ndarray):
            if frames.ndim != 4 or frames.shape[-1] != 3:
                raise ValueError(f"a frame array must have shape (T, H, W, 3), got {frames.shape}")
        elif isinstance(frames, torch.Tensor):
            raise TypeError("frames must be numpy arrays (T, H, W, 3) uint8 or a list of them, not torch tensors")
        self.frames = frames
        self.num_frames = len(frames)
        self.name = f"{type(frames).__name__} of {self.num_frames} frames"

    def read(self, idx: int) -> np.ndarray:
        idx = self.check_index(idx)
        return to_rgb_array(self.frames[idx], name=f"frame {idx}")


class IteratorSource(FrameSource):
    """Any iterator of frames (a camera, a network stream): read once, in order, length unknown.

    Frames are pulled on demand and kept only in the reader's bounded cache, so a frame that has
    fallen out of it cannot be read again.
    """

    random_access = False

    def __init__(self, frames: Iterable, name: str = "stream"):
        self._it: Iterator | None = iter(frames)
        self.name = name
        self.num_read = 0  # frames pulled so far
        self.exhausted = False

    def next_frame(self) -> np.ndarray | None:
        """The next frame of the iterator, or None at its end."""
        if self._it is None:
            return None
        try:
            frame = next(self._it)
        except StopIteration:
            self._it = None
            self.exhausted = True
            return None
        idx = self.num_read
        self.num_read += 1
        return to_rgb_array(frame, name=f"{self.name} frame {idx}")

    def read(self, idx: int) -> np.ndarray:  # pragma: no cover - FrameStore reads iterators sequentially
        raise FrameUnavailableError(f"{self.name}: frame {idx} can only be read in order")


class LiveSource(FrameSource):
    """Frames pushed one at a time by `VideoPredictor`'s streaming `step(frame)`."""

    random_access = False
    name = "live stream"

    def __init__(self):
        self.num_read = 0
        self.exhausted = False


class VideoFileSource(FrameSource):
    """A video file read with PyAV (FFmpeg): any container and codec FFmpeg decodes.

    Frames are decoded in order; a backward jump seeks to the keyframe before the target and decodes
    the frames from there up to it, handing the extra ones to the cache (so reverse tracking decodes
    each group of pictures a bounded number of times, not once per frame).
    """

    def __init__(self, path: str | os.PathLike, chunk: int = 16):
        try:
            import av
        except ImportError as e:  # pragma: no cover
            raise ImportError("reading video files needs PyAV: pip install av (or samstream[video])") from e
        self._av = av
        self.path = Path(path)
        self.name = str(self.path)
        if not self.path.is_file():
            raise FileNotFoundError(f"video file not found: {self.path}")
        self.chunk = chunk
        try:
            self._container = av.open(str(self.path))
        except (av.error.FFmpegError, OSError, ValueError) as e:
            raise FrameReadError(f"{self.path}: cannot be opened as a video ({e})") from e
        if not self._container.streams.video:
            self._container.close()
            raise FrameReadError(f"{self.path}: holds no video stream")
        self._stream = self._container.streams.video[0]
        self._stream.thread_type = "AUTO"
        # Presentation timestamps of all frames, from the packets alone (no decoding): gives the
        # frame count for containers that do not store it, and the target of each seek.
        pts, keys = [], []
        try:
            for pk in self._container.demux(self._stream):
                if pk.pts is not None and pk.size > 0:
                    pts.append(pk.pts)
                    if pk.is_keyframe:
                        keys.append(pk.pts)
        except av.error.FFmpegError:
            pass  # a damaged tail: the frames before it are still readable; decoding reports the rest
        order = np.argsort(np.asarray(pts, dtype=np.int64), kind="stable")
        self._pts = np.asarray(pts, dtype=np.int64)[order]
        self._key_idx = np.searchsorted(self._pts, np.asarray(sorted(keys), dtype=np.int64))
        declared = self._stream.frames or 0
        self.num_frames = max(len(self._pts), declared) if declared else len(self._pts)
        if self.num_frames == 0:
            raise FrameReadError(f"{self.path}: the video stream has no frames")
        self.fps = float(self._stream.average_rate) if self._stream.average_rate else 30.0
        self._decoder = None
        self._next = 0  # index of the frame the open decoder yields next

    def _decode_error(self, idx: int, e: Exception) -> FrameReadError:
        return FrameReadError(f"{self.path}: frame {idx} of {self.num_frames} cannot be decoded ({e}); "
                              f"the file is truncated or corrupt")

    def _restart(self, idx: int) -> None:
        """Position the decoder so that it next yields frame `idx` or an earlier one."""
        keys = self._key_idx[self._key_idx <= idx] if len(self._key_idx) else []
        k = int(keys[-1]) if len(keys) else 0
        try:
            self._container.seek(int(self._pts[k]) if k < len(self._pts) else 0, stream=self._stream,
                                 backward=True, any_frame=False)
        except self._av.error.FFmpegError as e:
            raise self._decode_error(idx, e) from e
        self._decoder = self._container.decode(self._stream)
        self._next = k

    def read_run(self, idx: int, lo: int) -> dict[int, np.ndarray]:
        """Decode frame idx and return it with the decoded frames in [lo, idx] (for the cache)."""
        idx = self.check_index(idx)
        if self._decoder is None or idx < self._next or idx - self._next > 4 * self.chunk:
            self._restart(idx)
        out: dict[int, np.ndarray] = {}
        while self._next <= idx:
            try:
                frame = next(self._decoder)
            except StopIteration:
                self._decoder = None
                raise FrameReadError(f"{self.path}: the video ends after {self._next} frames, before frame {idx} "
                                     f"(it declares {self.num_frames}); the file is truncated or corrupt") from None
            except self._av.error.FFmpegError as e:
                self._decoder = None
                raise self._decode_error(self._next, e) from e
            if frame.pts is not None and len(self._pts):
                j = int(np.searchsorted(self._pts, frame.pts))  # this frame's index, from its timestamp
                if j < self._next:
                    continue  # run-up from a keyframe before the one we seeked to
                if j > idx:
                    self._decoder = None
                    raise FrameReadError(f"{self.path}: frame {idx} of {self.num_frames} is missing from the "
                                         f"decoded stream; the file is truncated or corrupt")
                self._next = j
            if self._next >= lo:
                out[self._next] = frame.to_ndarray(format="rgb24")
            self._next += 1
        return out

    def read(self, idx: int) -> np.ndarray:
        return self.read_run(idx, idx)[idx]

    def close(self) -> None:
        self._decoder = None
        self._container.close()


def open_source(source) -> FrameSource:
    """Whatever the user passed -> a FrameSource."""
    if isinstance(source, FrameSource):
        return source
    if isinstance(source, (str, os.PathLike)):
        p = Path(source)
        if p.is_dir():
            return ImageFolderSource(p)
        if p.is_file():
            if p.suffix.lower() in IMAGE_EXTENSIONS:
                return ArraySource([p])
            return VideoFileSource(p)
        raise FileNotFoundError(f"video not found: {p} (expected a video file or a folder of images)")
    if isinstance(source, (bytes, bytearray)):
        raise TypeError("pass a path to the video file, not its bytes")
    if isinstance(source, (list, tuple, np.ndarray)):
        return ArraySource(source)
    if isinstance(source, torch.Tensor):
        raise TypeError("frames must be numpy arrays (T, H, W, 3) uint8 or a list of them, not torch tensors")
    if isinstance(source, Iterable):
        return IteratorSource(source)
    raise TypeError(f"cannot read frames from {type(source).__name__}: pass a folder, a video file, a list/array "
                    f"of frames or an iterator of frames")


# ------------------------------------------------------------------------------------------ reader
class FrameStore:
    """Frames and their image features for the tracker, through bounded LRU caches.

    Features (about 20 MB per 1024px frame) are computed at most once while cached; raw frames are
    kept only for writers (overlays) and for one-pass sources, whose frames cannot be read again.
    """

    def __init__(self, source: FrameSource, model: SAM2Model, feature_cache: int = 2,
                 frame_cache_bytes: int = 256 << 20, frame_cache_items: int = 64, mirror: bool = False):
        self.source = source
        self.model = model
        self.mirror = mirror  # also encode each frame flipped left-right, in the same encoder batch
        self.features_cache = LRUCache(feature_cache)
        self.frames_cache = LRUCache(frame_cache_items, frame_cache_bytes)
        self.hw: tuple[int, int] | None = None
        self.encode_count = 0  # image-encoder runs (for tests and statistics)

    # -- frames
    @property
    def num_frames(self) -> int | None:
        return self.source.num_frames

    @property
    def num_seen(self) -> int:
        """Frames known so far: all of them for finite sources, those read so far for live input."""
        if self.source.random_access:
            return self.source.num_frames
        return self.source.num_read

    def _check_size(self, idx: int, frame: np.ndarray) -> np.ndarray:
        hw = frame.shape[:2]
        if self.hw is None:
            self.hw = hw
        elif hw != self.hw:
            raise FrameReadError(f"{self.source.describe(idx)} is {hw[1]}x{hw[0]}, but the video's frames are "
                                 f"{self.hw[1]}x{self.hw[0]}")
        return frame

    def push(self, frame) -> int:
        """Append a frame to a live source -> its index."""
        src = self.source
        if not isinstance(src, LiveSource):
            raise TypeError("frames can only be pushed to a live stream (VideoPredictor.open_stream())")
        idx = src.num_read
        arr = self._check_size(idx, to_rgb_array(frame, name=f"stream frame {idx}"))
        src.num_read += 1
        self.frames_cache.put(idx, arr)
        return idx

    def frame(self, idx: int) -> np.ndarray:
        """RGB frame (H, W, 3) uint8."""
        arr = self.frames_cache.get(idx)
        if arr is not None:
            return arr
        src = self.source
        if isinstance(src, IteratorSource):
            if idx < src.num_read:
                raise FrameUnavailableError(f"{src.name}: frame {idx} is no longer available (a one-pass stream "
                                            f"keeps only its last {len(self.frames_cache)} frames)")
            while src.num_read <= idx:
                n = src.num_read
                f = src.next_frame()
                if f is None:
                    raise FrameUnavailableError(f"frame index {idx} out of range: {src.name} ended after {n} frames")
                self.frames_cache.put(n, self._check_size(n, f))
            return self.frames_cache.get(idx)
        if isinstance(src, LiveSource):
            if idx >= src.num_read:
                raise FrameUnavailableError(f"frame {idx} has not arrived yet: the live stream is at frame "
                                            f"{src.num_read - 1}")
            raise FrameUnavailableError(f"live stream frame {idx} is no longer available")
        src.check_index(idx)
        if isinstance(src, VideoFileSource):
            # decode a short run ending at idx so that a backward pass finds its next frames cached
            run = src.read_run(idx, max(0, idx - src.chunk + 1))
            for k in sorted(run):
                self.frames_cache.put(k, self._check_size(k, run[k]))
            return run[idx]
        arr = self._check_size(idx, src.read(idx))
        self.frames_cache.put(idx, arr)
        return arr

    def has_frame(self, idx: int) -> bool:
        """Whether frame idx exists (reading ahead in a one-pass stream if needed)."""
        if idx < 0:
            return False
        n = self.source.num_frames
        if n is not None:
            return idx < n
        if isinstance(self.source, LiveSource):
            return idx < self.source.num_read
        try:
            self.frame(idx)
            return True
        except FrameUnavailableError:
            return idx < self.source.num_read

    def video_hw(self) -> tuple[int, int]:
        if self.hw is None:
            self.frame(0)
        return self.hw

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
