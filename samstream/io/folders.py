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


def frame_name(frame: int | str) -> str:
    """File stem of a frame: ints become 5-digit names (00042), strings are kept."""
    return f"{frame:05d}" if isinstance(frame, (int, np.integer)) else str(frame)


def object_name(obj: int | str) -> str:
    """Folder name of an SA-V object: ints become 3-digit names (007), strings are kept."""
    return f"{obj:03d}" if isinstance(obj, (int, np.integer)) else str(obj)


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


def write_davis_sequence(
    seq_dir: str | os.PathLike, frames: Mapping[int | str, np.ndarray], palette=None
) -> list[Path]:
    """Write {frame: (H, W) labels} as `<seq_dir>/<frame>.png` indexed PNGs (DAVIS palette by default)."""
    return [write_label_png(Path(seq_dir) / f"{frame_name(k)}.png", v, palette) for k, v in frames.items()]


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
    written = []
    for obj, frames in masks.items():
        obj_dir = Path(video_dir) / object_name(obj)
        for frame, mask in frames.items():
            written.append(write_binary_png(obj_dir / f"{frame_name(frame)}.png", mask, palette))
    return written
