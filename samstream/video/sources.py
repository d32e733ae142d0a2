"""Frame sources: where a video's frames come from, read lazily, and what each kind can give.

A source hands out RGB frames (H, W, 3) uint8 by index and answers for itself: whether frames can be
read again (random access), which it can still give, its length, fps and frame size. Nothing here
caches or encodes; `frames.FrameStore` keeps recent frames and their image features.

Kinds: a folder of images (natural sort, any names), a video file of any container/codec FFmpeg
reads (PyAV), one image file (the frames of an animated GIF / PNG / WebP or a TIFF stack, read with
PIL; a still image is a video of one frame), a list/array of frames, any iterator of frames (input of
unknown length, read once) and live input pushed frame by frame.
"""
from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import torch

from ..io.errors import FormatError
from ..io.images import open_image
from ..transforms import STILL_FORMATS, pil_to_rgb, to_rgb_array

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif", ".ppm", ".pgm"}


class FrameReadError(ValueError):
    """A frame could not be read; the message names the file and the frame index."""


class FrameUnavailableError(IndexError, ValueError):
    """A frame index that the source cannot give (out of range, not reached yet, or gone from a stream)."""


def natural_key(name: str):
    """Sort key that orders "frame2" before "frame10" (digit runs compare as numbers)."""
    return [(0, int(t), "") if t.isdigit() else (1, 0, t.lower()) for t in re.split(r"(\d+)", name) if t]


def _as_index(idx) -> int:
    if not isinstance(idx, (int, np.integer)) or isinstance(idx, bool):
        raise TypeError(f"frame index must be an int, got {type(idx).__name__}")
    return int(idx)


# ------------------------------------------------------------------------------------------ interface
class FrameSource:
    """Frames by index, and what the source can tell about them. Every kind answers for itself:

    name: how the source is named in messages.
    num_frames: frames in the video; None while unknown (an iterator before its end, live input).
    fps: frames per second; None where unknown (folders, arrays, iterators, live input).
    frame_size: (H, W) of the frames, None until the first is read; a frame of another size is refused.
    random_access: any frame can be read again, in any order. False for one-pass input (iterators, live
        input), which gives each frame once and in order: the frames before `num_read` are gone from it
        (only a cache may still hold them).
    live: frames are pushed by the caller (`push`) rather than pulled.
    num_read: frames a one-pass source has given so far (0 for random access, where nothing is used up).

    check_index(idx): the frames that may be addressed now. fetch(idx): read a frame (with any others
    decoded on the way, for the caller's cache). read(idx): one frame of a random-access source.
    """

    name = "frames"
    num_frames: int | None = None
    fps: float | None = None
    frame_size: tuple[int, int] | None = None
    random_access = True
    live = False
    num_read = 0

    def read(self, idx: int) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def fetch(self, idx: int) -> Iterator[tuple[int, np.ndarray]]:
        """Read frame idx -> (index, frame) pairs: frames read on the way first (a cache may keep them), idx last."""
        idx = self.check_index(idx)
        yield idx, self.read(idx)

    def push(self, frame) -> tuple[int, np.ndarray]:
        """Append a frame to live input -> (its index, the frame as RGB (H, W, 3) uint8)."""
        raise TypeError(f"frames can only be pushed to live input, not to {self.name}")

    def describe(self, idx: int) -> str:
        """How a frame is named in error messages."""
        return f"{self.name}: frame {idx}"

    def check_index(self, idx: int) -> int:
        """idx as an int if the frame may be addressed now, else FrameUnavailableError."""
        idx = _as_index(idx)
        n = self.num_frames
        if idx < 0 or (n is not None and idx >= n):
            hi = f"0..{n - 1}" if n else "none (the video is empty)"
            raise FrameUnavailableError(f"frame index {idx} out of range: {self.name} has {n} frames ({hi})")
        return idx

    def _accept(self, idx: int, frame: np.ndarray) -> np.ndarray:
        """A frame read: the first sets the video's frame size, later ones must have it."""
        hw = frame.shape[:2]
        if self.frame_size is None:
            self.frame_size = hw
        elif hw != self.frame_size:
            h, w = self.frame_size
            raise FrameReadError(f"{self.describe(idx)} is {hw[1]}x{hw[0]}, but the video's frames are {w}x{h}")
        return frame

    def close(self) -> None:
        pass


# ------------------------------------------------------------------------------------------ random access
class ImageFolderSource(FrameSource):
    """A folder of image files in natural order ("img2.jpg" before "img10.jpg"); any names."""

    def __init__(self, folder: str | os.PathLike):
        folder = Path(folder)
        if not folder.is_dir():
            raise FileNotFoundError(f"not a folder: {folder}")
        files = [f for f in os.listdir(folder) if not f.startswith(".") and Path(f).suffix.lower() in IMAGE_EXTENSIONS]
        if not files:
            raise FrameReadError(f"{folder}: no image files ({', '.join(sorted(IMAGE_EXTENSIONS))})")
        by_stem: dict[str, list[str]] = {}
        for f in files:
            by_stem.setdefault(Path(f).stem, []).append(f)
        twins = sorted(sorted(names) for names in by_stem.values() if len(names) > 1)
        if twins:  # 00000.jpg and 00000.png: two frames with one position in the video
            raise FrameReadError(f"{folder}: frames with the same name in different formats, e.g. "
                                 f"{' and '.join(twins[0])} ({len(twins)} such name(s)); keep one file per frame")
        self.folder = folder
        self.files = [folder / f for f in sorted(files, key=natural_key)]
        self.num_frames = len(self.files)
        self.name = str(folder)

    def describe(self, idx: int) -> str:
        return f"{self.files[idx]} (frame {idx})"

    def read(self, idx: int) -> np.ndarray:
        idx = self.check_index(idx)
        path = self.files[idx]
        try:  # to_rgb_array: the pixel limit, 16-bit content kept, animations refused
            frame = to_rgb_array(path, name=f"frame {idx}")
        except FileNotFoundError as e:
            raise FrameReadError(f"{self.describe(idx)}: file disappeared ({e})") from e
        except (OSError, SyntaxError, ValueError) as e:
            raise FrameReadError(f"{self.describe(idx)}: cannot be decoded as an image ({e})") from e
        return self._accept(idx, frame)


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
        return self._accept(idx, to_rgb_array(self.frames[idx], name=f"frame {idx}"))


class ImageFileSource(FrameSource):
    """One image file as a video: the frames of an animation (GIF, APNG, WebP) or of a multi-page TIFF,
    read with PIL like every other image; a still image is a video of one frame.

    Animations are decoded in order (a frame may be drawn over the one before), so a backward jump
    rewinds to the first frame: it reads a run of frames ending at the target, for the cache.
    """

    def __init__(self, path: str | os.PathLike, chunk: int = 16):
        self.path = Path(path)
        self.name = str(self.path)
        self.chunk = chunk
        self._im = None
        self._open()
        try:
            n = getattr(self._im, "n_frames", 1)
        except (OSError, SyntaxError, ValueError, EOFError) as e:
            self.close()
            raise FrameReadError(f"{self.path}: its frames cannot be counted ({e}); the file is truncated or "
                                 f"corrupt") from e
        self.num_frames = 1 if self._im.format in STILL_FORMATS else n
        duration = self._im.info.get("duration")  # ms per frame, of the first frame
        self.fps = 1000.0 / duration if self.num_frames > 1 and duration and duration > 0 else None

    def _open(self) -> None:
        """Open the file at its first frame (the pixel limit and clear errors of every image samstream opens)."""
        self.close()
        try:
            self._im = open_image(self.path, what="an image or an animation")
        except FormatError as e:
            raise FrameReadError(str(e)) from e
        self._pos = 0  # the frame the image is at

    def describe(self, idx: int) -> str:
        return f"{self.path} (frame {idx})"

    def read(self, idx: int) -> np.ndarray:
        idx = self.check_index(idx)
        if idx < self._pos:
            self._open()  # a rewind by reopening: PIL's own backward seeks fail on some APNGs
        try:
            self._im.seek(idx)
            self._pos = idx
            frame = self._im.copy()  # this frame alone, as a still image (what pil_to_rgb reads)
        except (OSError, SyntaxError, ValueError, EOFError) as e:
            raise FrameReadError(f"{self.path}: frame {idx} of {self.num_frames} cannot be decoded ({e}); "
                                 f"the file is truncated or corrupt") from e
        return self._accept(idx, pil_to_rgb(frame, self.describe(idx)))

    def fetch(self, idx: int) -> Iterator[tuple[int, np.ndarray]]:
        idx = self.check_index(idx)
        lo = max(0, idx - self.chunk + 1) if idx < self._pos else idx  # one rewind per run, not per frame
        for k in range(lo, idx + 1):
            yield k, self.read(k)

    def close(self) -> None:
        if self._im is not None:
            self._im.close()
            self._im = None


class VideoFileSource(FrameSource):
    """A video file read with PyAV (FFmpeg): any container and codec FFmpeg decodes.

    Frame k is the k-th frame that decoding the file from its start gives (what any player shows). Frames
    are decoded in order; a backward jump seeks to a keyframe before the target and decodes from there up
    to it, handing the extra ones to the cache (so reverse tracking decodes each group of pictures a
    bounded number of times, not once per frame).

    Containers differ in how far their seeks and timestamps can be trusted (an MPEG-TS seek lands after
    its target, keyframe flags can be wrong, MPEG-PS timestamps can repeat, raw streams have none), so
    neither is taken on trust. Timestamps name frames only while they are unique and agree with the
    decoded order; after a seek, decoding resumes at the first keyframe decoded, named by its timestamp.
    A seek that lands after the target, or gives nothing, is retried further back, and at last the file
    is decoded from its start. Without usable timestamps frames are counted from the start, and a
    backward jump decodes from there.
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
        self._container = None
        self._open()
        # The frames' presentation timestamps, from the packets alone (no decoding): they give the frame
        # count of containers that do not store it, and name the frame a decoder is at after a seek.
        pts, keys, packets = [], [], 0
        try:
            for pk in self._container.demux(self._stream):
                if pk.size > 0:
                    packets += 1
                    if pk.pts is not None:
                        pts.append(pk.pts)
                        if pk.is_keyframe:
                            keys.append(pk.pts)
        except av.error.FFmpegError:
            pass  # a damaged tail: the frames before it are still readable; decoding reports the rest
        declared = self._stream.frames or 0
        self.num_frames = max(packets, declared)
        self.fps = float(self._stream.average_rate) if self._stream.average_rate else None
        self._pts = np.unique(np.asarray(pts, dtype=np.int64))
        # Timestamps name frames only when every packet has its own; raw streams (.h264) have none.
        timed = len(pts) == packets and len(self._pts) == len(pts)
        self._keys = np.asarray(sorted(keys), dtype=np.int64)
        self._start()
        try:
            first = next(self._decoder, None)
        except av.error.FFmpegError as e:
            self._close_container()
            raise FrameReadError(f"{self.path}: the video stream cannot be decoded ({e})") from e
        if first is None:
            self._close_container()
            raise FrameReadError(f"{self.path}: the video stream has no frames")
        self._pending = first
        j = self._table_index(first) if timed else None
        self.timed = True
        if j is None:
            self._count_only()
        elif j:  # a stream cut mid-GOP: the frames before its first decodable keyframe are not part of the video
            self._pts = self._pts[j:]
            self.num_frames -= j

    def _count_only(self) -> None:
        """Frames are known by their count from the start alone: no timestamps, no seeks."""
        self.timed = False
        self._pts = self._pts[:0]

    # -- the container
    def _open(self) -> None:
        self._close_container()
        try:
            self._container = self._av.open(str(self.path))
        except (self._av.error.FFmpegError, OSError, ValueError) as e:
            raise FrameReadError(f"{self.path}: cannot be opened as a video ({e})") from e
        if not self._container.streams.video:
            self._close_container()
            raise FrameReadError(f"{self.path}: holds no video stream")
        self._stream = self._container.streams.video[0]
        self._stream.thread_type = "AUTO"

    def _close_container(self) -> None:
        self._decoder = None
        self._pending = None
        if self._container is not None:
            self._container.close()
            self._container = None

    def _start(self) -> None:
        """Decode from the file's start: the one position every container gives exactly."""
        self._open()
        self._decoder = self._container.decode(self._stream)
        self._pending = None
        self._next = 0  # index of the frame the open decoder yields next

    def _table_index(self, frame) -> int | None:
        """The frame's index from its timestamp, or None when the timestamp names no frame of the file."""
        if frame.pts is None or not len(self._pts):
            return None
        j = int(np.searchsorted(self._pts, frame.pts))
        return j if j < len(self._pts) and self._pts[j] == frame.pts else None

    def _decode_error(self, idx: int, e: Exception) -> FrameReadError:
        return FrameReadError(f"{self.path}: frame {idx} of {self.num_frames} cannot be decoded ({e}); "
                              f"the file is truncated or corrupt")

    # -- positioning
    def _seek(self, idx: int) -> bool:
        """Seek to a keyframe before frame idx; True once the decoder is there, at a frame it has named.

        A seek is trusted only when the first keyframe decoded after it is at or before idx; frames
        decoded before that keyframe may depend on frames the seek skipped, and are passed over.
        """
        t = self._pts[min(idx, len(self._pts) - 1)]
        keys = self._keys[(self._keys <= t) & (self._keys >= self._pts[0])]
        tried = set()
        for back in (1, 2, 4, 8, 16):  # keyframes back: each container's seek lands within a few of its target
            if back > len(keys):
                break
            target = int(keys[-back])
            if target in tried:
                continue
            tried.add(target)
            try:
                self._container.seek(target, stream=self._stream, backward=True, any_frame=False)
                decoder = self._container.decode(self._stream)
                for frame in decoder:
                    j = self._table_index(frame)
                    if j is None or j > idx:
                        break  # landed after the target, or at a frame it cannot name: seek further back
                    if frame.key_frame:
                        self._decoder, self._pending, self._next = decoder, frame, j
                        return True
            except self._av.error.FFmpegError:
                pass  # a damaged spot: try further back, then the start
        return False

    def _keyframe_between(self, a: int, b: int) -> bool:
        """A keyframe after frame a, at or before frame b."""
        last = len(self._pts) - 1
        t0, t1 = self._pts[min(a, last)], self._pts[min(b, last)]
        return bool(((self._keys > t0) & (self._keys <= t1)).any())

    def _position(self, idx: int) -> None:
        """Make the decoder next yield frame idx or an earlier one."""
        if not (self.timed and self._seek(idx)):
            self._start()

    def read_run(self, idx: int, lo: int) -> dict[int, np.ndarray]:
        """Decode frame idx and return it with the decoded frames in [lo, idx] (for the cache)."""
        idx = self.check_index(idx)
        if self._decoder is None or idx < self._next:
            self._position(idx)
        elif self.timed and idx - self._next > 4 * self.chunk and self._keyframe_between(self._next, idx):
            self._position(idx)  # far ahead: a seek is shorter than decoding the frames between
        out: dict[int, np.ndarray] = {}
        while self._next <= idx:
            try:
                frame = self._pending if self._pending is not None else next(self._decoder)
            except StopIteration:
                self._decoder = None
                raise FrameReadError(f"{self.path}: the video ends after {self._next} frames, before frame {idx} "
                                     f"(it declares {self.num_frames}); the file is truncated or corrupt") from None
            except self._av.error.FFmpegError as e:
                self._decoder = None
                raise self._decode_error(self._next, e) from e
            self._pending = None
            j = self._table_index(frame)
            if j is not None and j != self._next:
                # The timestamps disagree with the decoded order (a frame the decoder dropped, a muxer's wrong
                # timestamp): they cannot name this file's frames. Count from the start from now on.
                self._count_only()
                self._start()
                out.clear()
                continue
            if self._next >= lo:
                out[self._next] = self._accept(self._next, frame.to_ndarray(format="rgb24"))
            self._next += 1
        return out

    def read(self, idx: int) -> np.ndarray:
        return self.read_run(idx, idx)[idx]

    def fetch(self, idx: int) -> Iterator[tuple[int, np.ndarray]]:
        # a short run ending at idx, so that a backward pass finds its next frames cached
        idx = self.check_index(idx)
        run = self.read_run(idx, max(0, idx - self.chunk + 1))
        yield from sorted(run.items())

    def close(self) -> None:
        self._close_container()


# ------------------------------------------------------------------------------------------ one-pass input
class StreamSource(FrameSource):
    """One-pass input of unknown length: each frame is given once, in order; `num_read` so far."""

    random_access = False
    #: frames past the last one given that may be addressed (an iterator can read its next frame on demand)
    ahead = 0

    def __init__(self, name: str):
        self.name = name
        self.num_read = 0

    def check_index(self, idx: int) -> int:
        idx = _as_index(idx)
        if idx < 0:
            raise FrameUnavailableError(f"frame index {idx} is negative")
        seen = self.num_read
        if idx >= seen + self.ahead:
            at = f"is at frame {seen - 1}" if seen else "has no frame yet"
            raise FrameUnavailableError(f"frame {idx} has not been reached yet: the stream {at}")
        return idx

    def fetch(self, idx: int) -> Iterator[tuple[int, np.ndarray]]:
        if idx < self.num_read:
            raise FrameUnavailableError(f"{self.name}: frame {idx} is no longer available (a one-pass stream gives "
                                        f"each frame once; only the latest frames stay cached)")
        yield from self._read_ahead(idx)

    def _read_ahead(self, idx: int) -> Iterator[tuple[int, np.ndarray]]:  # pragma: no cover - abstract
        raise NotImplementedError

    def read(self, idx: int) -> np.ndarray:  # pragma: no cover - one-pass input is read through fetch
        raise FrameUnavailableError(f"{self.name}: frame {idx} can only be read in order")


class IteratorSource(StreamSource):
    """Any iterator of frames (a camera, a network stream): read once, in order, on demand, length unknown."""

    ahead = 1

    def __init__(self, frames: Iterable, name: str = "stream"):
        super().__init__(name)
        self._it: Iterator | None = iter(frames)
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
        return self._accept(idx, to_rgb_array(frame, name=f"{self.name} frame {idx}"))

    def _read_ahead(self, idx: int) -> Iterator[tuple[int, np.ndarray]]:
        while self.num_read <= idx:
            n = self.num_read
            f = self.next_frame()
            if f is None:
                raise FrameUnavailableError(f"frame index {idx} out of range: {self.name} ended after {n} frames")
            yield n, f


class LiveSource(StreamSource):
    """Frames pushed one at a time (by `VideoPredictor.step(frame)`); a frame exists once it is pushed."""

    live = True

    def __init__(self, name: str = "live stream"):
        super().__init__(name)

    def push(self, frame) -> tuple[int, np.ndarray]:
        idx = self.num_read
        arr = self._accept(idx, to_rgb_array(frame, name=f"stream frame {idx}"))
        self.num_read += 1
        return idx, arr

    def _read_ahead(self, idx: int) -> Iterator[tuple[int, np.ndarray]]:
        raise FrameUnavailableError(f"frame {idx} has not arrived yet: the live stream is at frame {self.num_read - 1}")


# ------------------------------------------------------------------------------------------ kinds by input
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
                return ImageFileSource(p)
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
