"""Mask folder layouts.

* DAVIS: `<seq>/<frame>.png`, one indexed label PNG per frame (all objects in one file).
* SA-V: `<video>/<obj:03d>/<frame:05d>.png`, one binary PNG per object per annotated frame
  (separate files because SA-V objects may overlap, e.g. a person and their hand).
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from .png import read_binary_png, read_label_png, write_binary_png, write_label_png


def list_pngs(folder: str | os.PathLike) -> list[str]:
    """Sorted names of the `.png` files in `folder` (hidden files skipped)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"not a folder: {folder}")
    return sorted(n for n in os.listdir(folder) if n.endswith(".png") and not n.startswith("."))


def list_subdirs(folder: str | os.PathLike) -> list[str]:
    """Sorted names of the sub-folders of `folder` (hidden ones skipped)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"not a folder: {folder}")
    return sorted(n for n in os.listdir(folder) if not n.startswith(".") and (folder / n).is_dir())


def safe_name(part: str, what: str) -> str:
    """`part` checked as one file or folder name that stays inside its folder; ValueError naming it otherwise.

    Refused: empty names, path separators, NUL, and names starting with '.' ('.', '..', and hidden names,
    which the readers here skip). `what` says what the name is for, e.g. "object id".
    """
    if not isinstance(part, str):
        raise ValueError(f"{what} {part!r}: expected a string or a non-negative integer, got {type(part).__name__}")
    bad = (not part or part.startswith(".") or "\0" in part or os.path.splitdrive(part)[0]
           or any(sep in part for sep in {"/", "\\", os.sep, os.altsep} if sep))
    if bad:
        raise ValueError(f"{what} {part!r} cannot be used as a file name: it must be non-empty, not start with '.', "
                         "and hold no '/', '\\' or NUL, so that the file stays inside its folder")
    return part


def _index_or_name(value, digits: int, what: str) -> str:
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        if value < 0:
            raise ValueError(f"{what} {value!r}: must be a non-negative integer or a name")
        return f"{int(value):0{digits}d}"
    return safe_name(value, what)


def frame_name(frame: int | str) -> str:
    """File stem of a frame: ints become 5-digit names (00042), strings are kept (checked by `safe_name`)."""
    return _index_or_name(frame, 5, "frame name")


def object_name(obj: int | str, what: str = "object id") -> str:
    """Folder name of an SA-V object: ints become 3-digit names (007), strings are kept (checked by `safe_name`)."""
    return _index_or_name(obj, 3, what)


def read_davis_sequence(seq_dir: str | os.PathLike) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    """All frames of a DAVIS-layout sequence: ({frame stem: (H, W) uint8 labels}, palette of the first frame)."""
    frames: dict[str, np.ndarray] = {}
    palette = None
    for name in list_pngs(seq_dir):
        labels, pal = read_label_png(Path(seq_dir) / name)
        if palette is None:
            palette = pal
        frames[name[:-4]] = labels
    return frames, palette


def unique_names(keys, name_of, what: str) -> list[str]:
    """`name_of(k)` for every key, refusing two keys with one name (7 and "007"): one would overwrite the other."""
    names, seen = [], {}
    for k in keys:
        n = name_of(k)
        if n in seen:
            raise ValueError(f"{what}s {seen[n]!r} and {k!r} both give the name {n!r}: one would overwrite the other")
        seen[n] = k
        names.append(n)
    return names


def write_davis_sequence(
    seq_dir: str | os.PathLike, frames: Mapping[int | str, np.ndarray], palette=None
) -> list[Path]:
    """Write {frame: (H, W) labels} as `<seq_dir>/<frame>.png` indexed PNGs (DAVIS palette by default)."""
    names = unique_names(frames, frame_name, "frame name")  # every name checked before anything is written
    return [write_label_png(Path(seq_dir) / f"{n}.png", v, palette) for n, v in zip(names, frames.values())]


def read_sav_video(video_dir: str | os.PathLike) -> dict[str, dict[str, np.ndarray]]:
    """All masks of an SA-V-layout video: {object folder: {frame stem: (H, W) bool}}."""
    out: dict[str, dict[str, np.ndarray]] = {}
    for obj in list_subdirs(video_dir):
        obj_dir = Path(video_dir) / obj
        out[obj] = {name[:-4]: read_binary_png(obj_dir / name) for name in list_pngs(obj_dir)}
    return out


def write_sav_video(
    video_dir: str | os.PathLike, masks: Mapping[int | str, Mapping[int | str, np.ndarray]], palette=None
) -> list[Path]:
    """Write {object: {frame: (H, W) bool}} as `<video_dir>/<obj:03d>/<frame:05d>.png` binary PNGs."""
    files = []  # every name checked before anything is written
    for obj_name, frames in zip(unique_names(masks, object_name, "object id"), masks.values()):
        for name, mask in zip(unique_names(frames, frame_name, "frame name"), frames.values()):
            files.append((Path(video_dir) / obj_name / f"{name}.png", mask))
    return [write_binary_png(path, mask, palette) for path, mask in files]
