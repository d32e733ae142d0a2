"""Writing tracking results as they arrive: indexed PNGs, SA-V style JSON, an overlay video.

Every file appears atomically (temporary file, then `os.replace`), so an interrupted run leaves only
complete files: the PNGs of the frames it finished, the JSON as of its last flush, the overlay video
of the frames written so far (closing the writers brings the JSON and the video up to the PNGs). A run
killed outright (SIGKILL) can leave temporary files; each writer removes those of its own files that no
running process owns when it opens. Encoding helpers (label PNGs, COCO RLE, DAVIS palette) come from
`samstream.io`.
"""
from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import numpy as np

from ..io.atomic import TEMP_NAME, atomic_write_text
from ..io.palette import davis_palette
from ..io.png import read_label_png, write_label_png
from ..io.rle import encode_rle
from .predictor import FrameResult


def frame_filename(frame_idx: int, ext: str = ".png") -> str:
    return f"{frame_idx:05d}{ext}"


# the overlay video's temporary name, `.<stem>.<pid>.tmp<suffix>` (OverlayVideoWriter); atomic writes' is TEMP_NAME
_OVERLAY_TMP = re.compile(r"\.(?P<name>.+)\.(?P<pid>\d+)\.tmp(?P<suffix>\.[^.]+)")


def _owner_running(pid: int) -> bool:
    """Whether another running process may still be writing a temporary file of this process id."""
    if pid == os.getpid():
        return False  # ours: nothing of this process is half-written while a writer opens
    if os.name == "nt":
        return True  # no cheap probe there (os.kill would end the process): keep the file
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. another user's process
        return True
    return True


def remove_stale_temps(folder: str | os.PathLike, names, overlay: bool = False) -> list[Path]:
    """Remove the temporary files that killed runs left in `folder` for the files `names(name) -> bool` accepts
    (atomic writes' names, or the overlay video's with `overlay=True`), unless their process still runs.
    Returns the removed paths."""
    pattern = _OVERLAY_TMP if overlay else TEMP_NAME
    removed = []
    folder = Path(folder)
    if not folder.is_dir():
        return removed
    for p in folder.glob(".*.tmp*"):
        m = pattern.fullmatch(p.name)
        if m is None or not p.is_file():
            continue
        target = m["name"] + (m["suffix"] if overlay else "")
        if names(target) and not _owner_running(int(m["pid"])):
            try:
                p.unlink()
            except FileNotFoundError:
                continue
            removed.append(p)
    return removed


def check_label_ids(obj_ids) -> None:
    """Indexed PNGs hold one byte per pixel: object ids must be ints in 1..255."""
    bad = [i for i in obj_ids if not isinstance(i, (int, np.integer)) or isinstance(i, bool) or not 1 <= i <= 255]
    if bad:
        raise ValueError(f"object ids written to indexed PNGs must be ints in 1..255, got {bad}")


class PngWriter:
    """`<folder>/<frame:05d>.png`: one indexed PNG per frame, pixel value = object id (DAVIS palette)."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(self.folder, lambda name: re.fullmatch(r"\d+\.png", name) is not None)
        self.written: set[int] = set()

    def path(self, frame_idx: int) -> Path:
        return self.folder / frame_filename(frame_idx)

    def write(self, result: FrameResult) -> Path:
        check_label_ids(result.obj_ids)
        return self.write_labels(result.frame_idx, result.label_map())

    def write_labels(self, frame_idx: int, labels: np.ndarray) -> Path:
        p = write_label_png(self.path(frame_idx), labels.astype(np.uint8))
        self.written.add(frame_idx)
        return p

    def fill_missing(self, num_frames: int, hw: tuple[int, int]) -> int:
        """Write empty label maps for frames no result reached, so the folder has one PNG per frame."""
        n = 0
        for t in range(num_frames):
            if t not in self.written and not self.path(t).exists():
                self.write_labels(t, np.zeros(hw, dtype=np.uint8))
                n += 1
        return n

    def close(self) -> None:
        pass


class JsonWriter:
    """SA-V style masklet JSON with compressed COCO RLEs, one row per tracked frame.

    Fields: video_id, video_height, video_width, video_frame_count, masklet_id (object ids),
    masklet_num, masklet ([frame][object] RLE), plus masklet_frame_idx (frame index of each row) and
    masklet_score (object score logits). Rewritten atomically at most every `flush_seconds` and at close.
    """

    def __init__(self, path: str | os.PathLike, video_id: str, hw: tuple[int, int], num_frames: int | None,
                 flush_seconds: float = 2.0):
        self.path = Path(path)
        self.video_id = video_id
        self.hw = hw
        self.num_frames = num_frames
        self.flush_seconds = flush_seconds
        self.rows: dict[int, dict] = {}  # frame -> {obj_id: (rle, score)}
        self._last_flush = 0.0
        remove_stale_temps(self.path.parent, lambda name: name == self.path.name)

    def write(self, result: FrameResult) -> None:
        masks = result.masks
        self.rows[result.frame_idx] = {oid: (encode_rle(masks[i], compressed=True), float(result.scores[i]))
                                       for i, oid in enumerate(result.obj_ids)}
        if time.monotonic() - self._last_flush >= self.flush_seconds:
            self.flush()

    def to_dict(self) -> dict:
        ids: list = []
        for row in self.rows.values():
            ids += [i for i in row if i not in ids]
        h, w = self.hw
        empty = encode_rle(np.zeros((h, w), dtype=bool), compressed=True)
        frames = sorted(self.rows)
        return {
            "video_id": self.video_id, "video_height": h, "video_width": w,
            "video_frame_count": self.num_frames if self.num_frames is not None else (max(frames) + 1 if frames else 0),
            "masklet_id": ids, "masklet_num": len(ids),
            "masklet": [[self.rows[t][i][0] if i in self.rows[t] else empty for i in ids] for t in frames],
            "masklet_frame_idx": frames,
            "masklet_score": [[self.rows[t][i][1] if i in self.rows[t] else None for i in ids] for t in frames],
        }

    def flush(self) -> None:
        atomic_write_text(self.path, json.dumps(self.to_dict()))
        self._last_flush = time.monotonic()

    def close(self) -> None:
        self.flush()


def overlay_frame(frame: np.ndarray, labels: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """RGB frame (H, W, 3) uint8 + label map (H, W) -> the frame with each object tinted in its DAVIS colour
    and outlined."""
    out = frame.astype(np.float32)
    palette = davis_palette().astype(np.float32)
    fg = labels > 0
    if fg.any():
        colour = palette[labels]
        out[fg] = (1 - alpha) * out[fg] + alpha * colour[fg]
        edge = np.zeros_like(fg)  # pixels whose right or lower neighbour has another label
        edge[:, :-1] |= labels[:, :-1] != labels[:, 1:]
        edge[:-1, :] |= labels[:-1, :] != labels[1:, :]
        edge &= fg
        out[edge] = colour[edge]
    return out.clip(0, 255).astype(np.uint8)


class OverlayVideoWriter:
    """An mp4 of the frames with coloured masks.

    Frames are encoded as they arrive while they come in order (forward tracking). If they do not
    (backward or both directions), the video is composed at close from the label PNGs in
    `labels_dir`. The file is written under a temporary name and moved into place at close, also
    when the run is interrupted (it then holds the frames finished so far).

    frames: frame index -> RGB (H, W, 3) uint8, e.g. `VideoPredictor.frame`. fps: the video's; None
    (unknown: a folder of images, frames in memory, a stream) writes 30.
    """

    def __init__(self, path: str | os.PathLike, frames, fps: float | None = 30.0,
                 labels_dir: str | os.PathLike | None = None, codec: str = "libx264"):
        import av

        self._av = av
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self.path.with_name(f".{self.path.stem}.{os.getpid()}.tmp{self.path.suffix}")
        remove_stale_temps(self.path.parent, lambda name: name == self.path.name, overlay=True)
        self.frames = frames  # frame index -> RGB (H, W, 3) uint8
        self.fps = fps or 30.0
        self.labels_dir = None if labels_dir is None else Path(labels_dir)
        self.codec = codec
        self._container = None
        self._stream = None
        self.next_idx: int | None = None
        self.in_order = True
        self.count = 0

    def _open(self, hw: tuple[int, int]) -> None:
        from fractions import Fraction

        self._container = self._av.open(str(self.tmp), "w", format="mp4")
        self._stream = self._container.add_stream(self.codec, rate=Fraction(self.fps).limit_denominator(1001))
        self._stream.width = hw[1] + hw[1] % 2  # yuv420p needs even sizes
        self._stream.height = hw[0] + hw[0] % 2
        self._stream.pix_fmt = "yuv420p"

    def _encode(self, rgb: np.ndarray) -> None:
        if self._container is None:
            self._open(rgb.shape[:2])
        h, w = self._stream.height, self._stream.width
        if rgb.shape[:2] != (h, w):
            rgb = np.pad(rgb, ((0, h - rgb.shape[0]), (0, w - rgb.shape[1]), (0, 0)), mode="edge")
        frame = self._av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        self.count += 1

    def write(self, result: FrameResult) -> None:
        self.write_labels(result.frame_idx, result.label_map())

    def write_labels(self, frame_idx: int, labels: np.ndarray) -> None:
        if self.next_idx is None:
            self.next_idx = frame_idx
        if self.in_order and frame_idx == self.next_idx:
            self._encode(overlay_frame(self.frames(frame_idx), labels))
            self.next_idx += 1
        elif self.in_order and frame_idx != self.next_idx:
            self.in_order = False  # compose from the label files at close

    def _compose_from_labels(self) -> None:
        if self.labels_dir is None:
            return
        files = sorted(p for p in self.labels_dir.glob("[0-9]*.png") if p.stem.isdigit())
        for p in sorted(files, key=lambda p: int(p.stem)):
            labels, _ = read_label_png(p)
            self._encode(overlay_frame(self.frames(int(p.stem)), labels))

    def close(self) -> None:
        try:
            if not self.in_order:
                if self._container is not None:  # start over from the label files
                    self._container.close()
                    self._container = None
                    self.count = 0
                self._compose_from_labels()
            if self._container is None:
                return
            for packet in self._stream.encode():  # flush the encoder
                self._container.mux(packet)
            self._container.close()
            self._container = None
            os.replace(self.tmp, self.path)
        finally:
            if self._container is not None:
                self._container.close()
                self._container = None
            if self.tmp.exists():
                self.tmp.unlink()
