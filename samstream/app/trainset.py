"""A project's export: every video's masks in one zip or folder, and "as a training set", the DAVIS layout that
`samstream train --data` reads (`samstream.train.data.davis_videos`):

    JPEGImages/480p/<video>/00012.jpg     the video's frame 12 at full resolution
    Annotations/480p/<video>/00012.png    its indexed label PNG (pixel = object id, as the DAVIS export)

Only frames with a non-empty mask are written (the trainer pairs each JPEG with its PNG); `<video>` is the
video's name made a safe folder name, unique in the project. "480p" is only the folder name the reader expects
by default; the frames keep the video's size.
"""
from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image

from ..io.atomic import atomic_write_bytes
from ..io.png import encode_label_png
from ..video.writers import frame_filename
from .export import FORMATS, _add, export, frame_records, label_map, safe_filename
from .media import FrameImages

PROJECT_FORMATS = ("training", *FORMATS)
TRAIN_RESOLUTION = "480p"  # the folder level davis_videos() reads by default
JPEG_QUALITY = 95
VOID = 255  # the DAVIS reader ignores label 255


def folder_names(videos: list[dict]) -> dict[int, str]:
    """video id -> a safe folder name from the video's name, unique in the list (`_2`, `_3` ... on clashes)."""
    out, used = {}, set()
    for v in videos:
        base = safe_filename(str(v["name"] or "video"))
        name, k = base, 1
        while name.lower() in used:
            k += 1
            name = f"{base}_{k}"
        used.add(name.lower())
        out[v["id"]] = name
    return out


def _relabel(obj_ids) -> dict[int, int]:
    """Label values of the objects: their ids, except 255 (void to the DAVIS reader) -> a free id."""
    ids = set(obj_ids)
    if VOID not in ids:
        return {}
    free = sorted(set(range(1, VOID)) - ids)
    if not free:
        raise ValueError("a video with 255 objects cannot be written as DAVIS labels (255 means void)")
    return {VOID: free[0]}


def _jpeg(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=JPEG_QUALITY, subsampling=0)  # 4:4:4: full colour
    return buf.getvalue()


def training_files(store, library, project_id: int) -> Iterator[tuple[str, bytes]]:
    """(path in the training set, bytes) of every masked frame of the project's videos, video by video."""
    videos = store.videos(project_id)
    names = folder_names(videos)
    any_frame = False
    for v in videos:
        rows = {t: recs for t, recs in frame_records(store, v["id"]).items() if any(r["area"] for r in recs.values())}
        if not rows:
            continue
        relabel = _relabel(o["obj_id"] for o in store.objects(v["id"]))
        frames = FrameImages(library.resolve(v["path"]))
        try:
            for t, recs in rows.items():  # in frame order: the source decodes forward
                labels = label_map(recs, (v["height"], v["width"]))
                for old, new in relabel.items():
                    labels[labels == old] = new
                folder = f"{TRAIN_RESOLUTION}/{names[v['id']]}"
                yield f"JPEGImages/{folder}/{frame_filename(t, '.jpg')}", _jpeg(frames.rgb(t))
                yield f"Annotations/{folder}/{frame_filename(t)}", encode_label_png(labels)
                any_frame = True
        finally:
            frames.close()
    if not any_frame:
        raise ValueError(f"project {project_id} has no masks to export: annotate a video first")


def project_files(store, library, project_id: int, fmt: str) -> Iterator[tuple[str, bytes]]:
    """(path, bytes) of the project's export in `fmt`: "training" (see the module docstring) or one of the video
    formats, one file per video named `<video>_<format>.<ext>`."""
    if fmt not in PROJECT_FORMATS:
        raise ValueError(f"format: unknown export format {fmt!r}; choose from {', '.join(PROJECT_FORMATS)}")
    if fmt == "training":
        yield from training_files(store, library, project_id)
        return
    videos = store.videos(project_id)
    if not videos:
        raise ValueError(f"project {project_id} has no videos to export")
    for vid, folder in folder_names(videos).items():
        buf = io.BytesIO()
        name, _ = export(store, vid, fmt, buf)
        yield f"{folder}_{name.rsplit('_', 1)[-1]}", buf.getvalue()


def write_zip(files: Iterator[tuple[str, bytes]], out: BinaryIO) -> int:
    """Writes the files into a zip in `out` -> how many."""
    n = 0
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for path, data in files:
            _add(zf, path, data, compress=not path.endswith((".png", ".jpg")))  # images are compressed already
            n += 1
    return n


def write_folder(files: Iterator[tuple[str, bytes]], folder: str | Path) -> int:
    """Writes the files below `folder` (made if needed) -> how many."""
    n = 0
    for path, data in files:
        atomic_write_bytes(Path(folder, *path.split("/")), data)
        n += 1
    return n
