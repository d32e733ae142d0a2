"""SA-V masklet JSON (`{video_id}_manual.json` / `{video_id}_auto.json` of SA-V train).

`masklet` is a list over annotated frames (6 fps: every 4th frame of the 24 fps video) of lists over
masklets of compressed COCO RLEs of size [video_height, video_width]. Other per-masklet fields
(masklet_id, masklet_type, masklet_size_abs, ...) are lists with one entry per masklet.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .atomic import atomic_write_text
from .errors import FormatError
from .folders import object_name, unique_names, write_sav_video
from .rle import decode_rle, rle_counts

#: SA-V videos are 24 fps and annotated at 6 fps.
SAV_ANNOTATION_STRIDE = 4

# Per-masklet list fields that must have `masklet_num` entries when present.
_PER_MASKLET = ("masklet_id", "masklet_size_rel", "masklet_size_abs", "masklet_size_bucket",
                "masklet_visibility_changes", "masklet_first_appeared_frame", "masklet_frame_count",
                "masklet_edited_frame_count", "masklet_type")


@dataclass
class SavMasklets:
    """The masklets of one SA-V video. `rles[t][k]` is masklet k on annotated frame t."""

    video_id: str
    height: int
    width: int
    video_frame_count: int  # frames of the 24 fps video
    masklet_ids: list[int]
    rles: list[list[dict]]  # [annotated frame][masklet] compressed RLE dicts
    meta: dict = field(default_factory=dict)  # every other field of the file, unchanged
    path: str | None = None

    @property
    def num_masklets(self) -> int:
        return len(self.masklet_ids)

    @property
    def num_annotated_frames(self) -> int:
        return len(self.rles)

    @property
    def frame_indices(self) -> list[int]:
        """Video (24 fps) frame index of each annotated frame."""
        return [t * SAV_ANNOTATION_STRIDE for t in range(self.num_annotated_frames)]

    def mask(self, t: int, k: int) -> np.ndarray:
        """(H, W) bool mask of masklet k on annotated frame t."""
        return decode_rle(self.rles[t][k], path=self.path, field=f"masklet[{t}][{k}]")

    def frame_masks(self, t: int) -> np.ndarray:
        """(N, H, W) bool masks of all masklets on annotated frame t."""
        out = np.zeros((self.num_masklets, self.height, self.width), dtype=bool)
        for k in range(self.num_masklets):
            out[k] = self.mask(t, k)
        return out

    def masklet_masks(self, k: int) -> np.ndarray:
        """(T, H, W) bool masks of masklet k over the annotated frames."""
        out = np.zeros((self.num_annotated_frames, self.height, self.width), dtype=bool)
        for t in range(self.num_annotated_frames):
            out[t] = self.mask(t, k)
        return out

    def areas(self) -> np.ndarray:
        """(T, N) int64 pixel areas, from the run lengths (no decoding)."""
        return np.array([[sum(rle_counts(r)[1::2]) for r in row] for row in self.rles], dtype=np.int64).reshape(
            self.num_annotated_frames, self.num_masklets)

    def to_dict(self) -> dict:
        return {**self.meta, "video_id": self.video_id, "video_height": float(self.height),
                "video_width": float(self.width), "video_frame_count": float(self.video_frame_count),
                "masklet": self.rles, "masklet_id": self.masklet_ids, "masklet_num": self.num_masklets}


def _whole(v, path, field) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not float(v).is_integer() or v < 0:
        raise FormatError(f"expected a non-negative whole number, got {v!r}", path=path, field=field)
    return int(v)


def _int_field(data, key, path) -> int:
    return _whole(data.get(key), path, key)


def _masklet_ids(ids, path) -> list[int]:
    """masklet_id entries as ints: non-negative whole numbers (they name the export folders), each once."""
    out, seen = [], {}
    for k, v in enumerate(ids):
        i = _whole(v, path, f"masklet_id[{k}]")
        if i in seen:
            raise FormatError(f"masklet id {i} is also masklet_id[{seen[i]}]; ids must be unique",
                              path=path, field=f"masklet_id[{k}]")
        seen[i] = k
        out.append(i)
    return out


def parse_sav_dict(data: dict, path: str | os.PathLike | None = None) -> SavMasklets:
    """Validate an SA-V masklet dict (as loaded from JSON) and wrap it."""
    if not isinstance(data, dict):
        raise FormatError(f"top level must be an object, got {type(data).__name__}", path=path)
    for key in ("video_id", "video_height", "video_width", "masklet", "masklet_id"):
        if key not in data:
            raise FormatError("missing", path=path, field=key)
    h, w = _int_field(data, "video_height", path), _int_field(data, "video_width", path)
    frames = data["masklet"]
    ids = data["masklet_id"]
    if not isinstance(ids, list):
        raise FormatError("must be a list", path=path, field="masklet_id")
    ids = _masklet_ids(ids, path)
    n = len(ids)
    if "masklet_num" in data and _int_field(data, "masklet_num", path) != n:
        raise FormatError(f"says {data['masklet_num']} masklets but masklet_id lists {n}",
                          path=path, field="masklet_num")
    for key in _PER_MASKLET:
        if key in data and (not isinstance(data[key], list) or len(data[key]) != n):
            got = len(data[key]) if isinstance(data[key], list) else type(data[key]).__name__
            raise FormatError(f"expected a list of {n} entries (one per masklet), got {got}", path=path, field=key)
    if not isinstance(frames, list):
        raise FormatError("must be a list over annotated frames", path=path, field="masklet")
    for t, row in enumerate(frames):
        if not isinstance(row, list) or len(row) != n:
            got = len(row) if isinstance(row, list) else type(row).__name__
            raise FormatError(f"expected {n} RLEs (one per masklet), got {got}", path=path, field=f"masklet[{t}]")
        for k, rle in enumerate(row):
            where = f"masklet[{t}][{k}]"
            if not isinstance(rle, dict) or not isinstance(rle.get("counts"), str):
                raise FormatError("expected a compressed RLE {size, counts: str}", path=path, field=where)
            if list(rle.get("size", [])) != [h, w]:
                raise FormatError(f"size {rle.get('size')!r} differs from [video_height, video_width] = [{h}, {w}]",
                                  path=path, field=f"{where}.size")
    frame_count = _int_field(data, "video_frame_count", path) if "video_frame_count" in data else \
        len(frames) * SAV_ANNOTATION_STRIDE
    meta = {k: v for k, v in data.items() if k not in ("masklet",)}
    return SavMasklets(video_id=str(data["video_id"]), height=h, width=w, video_frame_count=frame_count,
                       masklet_ids=ids, rles=frames, meta=meta,
                       path=None if path is None else os.fspath(path))


def load_sav_json(path: str | os.PathLike) -> SavMasklets:
    """Read and validate an SA-V `*_manual.json` / `*_auto.json` file (RLEs decode lazily)."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except json.JSONDecodeError as e:
        raise FormatError(f"invalid JSON ({e})", path=path) from None
    return parse_sav_dict(data, path)


def save_sav_json(path: str | os.PathLike, masklets: SavMasklets) -> Path:
    """Write masklets back as an SA-V JSON file, atomically."""
    return atomic_write_text(path, json.dumps(masklets.to_dict()))


def export_sav_folders(
    masklets: SavMasklets, video_dir: str | os.PathLike, *, skip_empty_before_first: bool = False
) -> int:
    """Write masklets in the SA-V val/test layout `<video_dir>/<masklet_id:03d>/<frame:05d>.png`.

    Frame names are 24 fps video indices (annotated frame t -> 4t). Returns the number of files.
    skip_empty_before_first: leave out the frames before a masklet first appears.
    """
    # Every id checked before anything is written.
    unique_names(masklets.masklet_ids, lambda i: object_name(i, "masklet id"), "masklet id")
    written = 0
    for k, obj in enumerate(masklets.masklet_ids):
        per_frame = {}
        seen = False
        for t, frame in enumerate(masklets.frame_indices):
            m = masklets.mask(t, k)
            seen = seen or bool(m.any())
            if seen or not skip_empty_before_first:
                per_frame[frame] = m
        written += len(write_sav_video(video_dir, {obj: per_frame}))
    return written
