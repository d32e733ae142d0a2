"""Import of existing masks into a video, to continue work on them: DAVIS indexed PNGs (a zip), SA-V masklet JSON,
COCO JSON (what `export.py` writes, and the same formats from other tools).

The format is told from the content, never the name: a zip holds label PNGs named by frame (`00012.png`, in any
one folder), a JSON object with "masklet" is SA-V, one with "annotations" is COCO. Everything is read and checked
first (sizes against the video, frames in range, every PNG and RLE decoded), so a bad file stores nothing; then one
store event ("import") writes every object and mask, and one undo removes it all.

Imported masks are stored as source "import" and as the frames' mask prompts: locked like hand edits (propagation
never overwrites them) and in the model's memory. Only non-empty masks are imported: an empty mask (an object
absent from a frame, or a DAVIS frame nobody annotated) says nothing worth locking. Object ids are kept where they
are free in the video (1..255, deleted objects' ids count as taken), else the smallest free ids are used.
"""
from __future__ import annotations

import io
import json
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import BinaryIO

import numpy as np
from PIL import Image

from ..io.coco import segmentation_to_mask
from ..io.errors import FormatError
from ..io.png import _labels_of
from ..io.rle import decode_rle, encode_rle
from ..io.sav import parse_sav_dict
from .store import MAX_OBJ_ID, StoreError, mask_record

MAX_PNG_BYTES = 64 << 20  # one zipped label PNG, uncompressed (a zip bomb stops here)
MAX_JSON_BYTES = 1 << 30
_FRAME_NAME = re.compile(r"(\d+)\.png", re.IGNORECASE)
_IGNORED = re.compile(r"(^|/)(__MACOSX|\.)")  # macOS resource forks, hidden files


class ImportFileError(ValueError):
    """A file that cannot be imported; the message names the file and the problem (answered 400)."""


@dataclass
class Imported:
    """What a file holds, checked against the video: per file object id its name / category and its masks."""

    fmt: str
    names: dict[int, dict] = field(default_factory=dict)  # file id -> {"name", "category"} (None where absent)
    masks: dict[int, dict[int, dict]] = field(default_factory=dict)  # file id -> {frame: compressed RLE}

    def add(self, file_id: int, frame: int, mask: np.ndarray) -> None:
        if mask.any():
            self.masks.setdefault(file_id, {})[frame] = encode_rle(mask)
            self.names.setdefault(file_id, {"name": None, "category": None})


def _size_check(name: str, what: str, h: int, w: int, video: dict) -> None:
    if (h, w) != (video["height"], video["width"]):
        raise ImportFileError(f"{name}: {what} is {w}x{h}, the video is {video['width']}x{video['height']} (width x "
                           "height): masks must have the video's size")


def _frame_check(name: str, where: str, frame, video: dict) -> int:
    if isinstance(frame, bool) or not isinstance(frame, (int, float)) or not float(frame).is_integer():
        raise ImportFileError(f"{name}: {where}: frame {frame!r} is not a whole number")
    n = video["num_frames"]
    if not 0 <= frame < n:
        raise ImportFileError(f"{name}: {where}: frame {int(frame)} is outside the video (frames 0..{n - 1})")
    return int(frame)


# ------------------------------------------------------------------------------------------ readers
def _read_davis_zip(f: BinaryIO, name: str, video: dict) -> Imported:
    try:
        zf = zipfile.ZipFile(f)
    except (zipfile.BadZipFile, OSError) as e:
        raise ImportFileError(f"{name}: not a readable zip file ({e})") from None
    out = Imported("davis")
    seen: dict[int, str] = {}
    with zf:
        for info in zf.infolist():
            if info.is_dir() or _IGNORED.search(info.filename):
                continue
            base = PurePosixPath(info.filename).name
            if not base.lower().endswith(".png"):
                continue  # a readme, a palette file: not masks
            m = _FRAME_NAME.fullmatch(base)
            if m is None:
                raise ImportFileError(f"{name}: {info.filename}: a mask PNG is named by its frame number (00012.png)")
            t = _frame_check(name, info.filename, int(m.group(1)), video)
            if t in seen:
                raise ImportFileError(f"{name}: {info.filename} and {seen[t]} are both frame {t}")
            seen[t] = info.filename
            if info.file_size > MAX_PNG_BYTES:
                raise ImportFileError(f"{name}: {info.filename} is larger than {MAX_PNG_BYTES >> 20} MiB")
            try:
                img = Image.open(io.BytesIO(zf.read(info)))
                _size_check(name, info.filename, img.height, img.width, video)  # from the header, before decoding
                img.load()
                labels = _labels_of(img, info.filename)  # (H, W) uint8
            except ImportFileError:
                raise
            except FormatError as e:
                raise ImportFileError(f"{name}: {e}") from None
            except (OSError, ValueError, zipfile.BadZipFile, Image.DecompressionBombError) as e:
                raise ImportFileError(f"{name}: {info.filename} is not a readable PNG ({e})") from None
            for k in np.unique(labels):
                if 0 < k < 255:  # 0 background, 255 void
                    out.add(int(k), t, labels == k)
    if not seen:
        raise ImportFileError(f"{name}: the zip holds no mask PNGs named by frame (00000.png, ...)")
    return out


def _read_sav(data: dict, name: str, video: dict) -> Imported:
    try:
        sav = parse_sav_dict(data, name)
    except FormatError as e:
        raise ImportFileError(str(e)) from None
    _size_check(name, "the masklets' size", sav.height, sav.width, video)
    frames = data.get("masklet_frame_idx", sav.frame_indices)  # ours name them; SA-V's own are every 4th frame
    if not isinstance(frames, list) or len(frames) != sav.num_annotated_frames:
        raise ImportFileError(f"{name}: masklet_frame_idx must list one frame per row of masklet")
    frames = [_frame_check(name, f"masklet_frame_idx[{i}]", t, video) for i, t in enumerate(frames)]
    if len(set(frames)) != len(frames):
        raise ImportFileError(f"{name}: masklet_frame_idx lists a frame twice")
    out = Imported("sav")
    for i, t in enumerate(frames):
        for k, oid in enumerate(sav.masklet_ids):
            try:
                out.add(oid, t, sav.mask(i, k))
            except FormatError as e:
                raise ImportFileError(str(e)) from None
    return out


def _image_frame(name: str, i: int, img: dict, video: dict) -> int:
    """An image's video frame: "frame_index" (ours), else the number its file name ends with."""
    if "frame_index" in img:
        return _frame_check(name, f"images[{i}].frame_index", img["frame_index"], video)
    m = re.search(r"(\d+)\.\w+$", str(img.get("file_name", "")))
    if m is None:
        raise ImportFileError(f"{name}: images[{i}] has no frame_index and its file_name names no frame number")
    return _frame_check(name, f"images[{i}].file_name", int(m.group(1)), video)


def _read_coco(data: dict, name: str, video: dict) -> Imported:
    """Objects are the annotations' "obj_id" (ours; also "track_id" / "instance_id"); without one, each
    category is one object. Categories name the objects' category."""
    images, anns, cats = data.get("images"), data.get("annotations"), data.get("categories", [])
    if not isinstance(images, list) or not isinstance(anns, list) or not isinstance(cats, list):
        raise ImportFileError(f"{name}: a COCO file has lists 'images', 'annotations' (and 'categories')")
    frame_of, size_of = {}, {}
    for i, img in enumerate(images):
        if not isinstance(img, dict) or not {"id", "height", "width"} <= set(img):
            raise ImportFileError(f"{name}: images[{i}] needs id, height and width")
        _size_check(name, f"images[{i}]", img["height"], img["width"], video)
        frame_of[img["id"]] = _image_frame(name, i, img, video)
        size_of[img["id"]] = (img["height"], img["width"])
    cat_names = {c.get("id"): c.get("name") for c in cats if isinstance(c, dict)}
    out = Imported("coco")
    for i, ann in enumerate(anns):
        where = f"annotations[{i}]"
        if not isinstance(ann, dict) or ann.get("image_id") not in frame_of or "segmentation" not in ann:
            raise ImportFileError(f"{name}: {where} needs a segmentation and an image_id listed in 'images'")
        if ann.get("iscrowd"):
            continue
        oid = next((ann[k] for k in ("obj_id", "track_id", "instance_id") if k in ann), ann.get("category_id", 1))
        if isinstance(oid, bool) or not isinstance(oid, int) or oid < 0:
            raise ImportFileError(f"{name}: {where}: an object id must be a non-negative integer, got {oid!r}")
        t = frame_of[ann["image_id"]]
        try:
            mask = segmentation_to_mask(ann["segmentation"], *size_of[ann["image_id"]], path=name,
                                        field=f"{where}.segmentation")
        except FormatError as e:
            raise ImportFileError(str(e)) from None
        if t in out.masks.get(oid, {}):  # two annotations of one object on one frame: their union
            mask = mask | decode_rle(out.masks[oid][t])
        out.add(oid, t, mask)
        if oid in out.names:
            cat = cat_names.get(ann.get("category_id"))
            out.names[oid] = {"name": ann.get("name") if isinstance(ann.get("name"), str) else out.names[oid]["name"],
                              "category": cat if isinstance(cat, str) else out.names[oid]["category"]}
    return out


def read_import(f: BinaryIO, name: str, video: dict) -> Imported:
    """Read and check the masks in the seekable binary file `f` (shown as `name` in errors) for `video` (a store
    video dict) -> Imported. ImportFileError (a ValueError) for anything wrong, naming the file and the problem."""
    f.seek(0)
    head = f.read(8)
    f.seek(0)
    if head.startswith(b"PK"):
        return _read_davis_zip(f, name, video)
    if head.startswith(b"\x89PNG"):
        raise ImportFileError(f"{name}: a single PNG; put the PNGs, named by frame (00000.png, ...), in a zip")
    raw = f.read(MAX_JSON_BYTES + 1)
    if len(raw) > MAX_JSON_BYTES:
        raise ImportFileError(f"{name}: larger than {MAX_JSON_BYTES >> 20} MiB")
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ImportFileError(f"{name}: neither a zip of DAVIS PNGs nor a SA-V or COCO JSON file") from None
    if isinstance(data, dict) and "masklet" in data:
        return _read_sav(data, name, video)
    if isinstance(data, dict) and "annotations" in data:
        return _read_coco(data, name, video)
    raise ImportFileError(f"{name}: a JSON file, but neither SA-V (no 'masklet') nor COCO (no 'annotations')")


# ------------------------------------------------------------------------------------------ storing
def assign_ids(file_ids, taken: set[int]) -> dict[int, int]:
    """file id -> video id: the file's own where it is a free valid id, else the smallest free ones, in order."""
    taken, out = set(taken), {}
    for fid in sorted(file_ids):
        if 1 <= fid <= MAX_OBJ_ID and fid not in taken:
            out[fid] = fid
            taken.add(fid)
    free = (i for i in range(1, MAX_OBJ_ID + 1) if i not in taken)
    for fid in sorted(file_ids):
        if fid not in out:
            new = next(free, None)
            if new is None:
                raise StoreError(f"the file has {len(file_ids)} objects; the video has room for "
                                 f"{MAX_OBJ_ID - len(taken) + len(out)} more (at most {MAX_OBJ_ID})")
            out[fid] = new
    return out


def store_import(store, video_id: int, imported: Imported, name: str, user: str = "local",
                 expect_version: int | None = None, colour_of=None) -> dict:
    """Writes `imported` into the video as one "import" event -> {"version", "objects": [{"obj_id", "from",
    "frames"}]}. colour_of(obj_id) gives a new object's colour (None: the browser picks)."""
    if not imported.masks:
        raise ImportFileError(f"{name}: no masks in it (every mask is empty)")
    taken = {o["obj_id"] for o in store.objects(video_id, include_deleted=True)}
    ids = assign_ids(list(imported.masks), taken)
    # the records first: the store's lock is held for the whole event block
    records = [(ids[fid], t, rle, mask_record(decode_rle(rle), None, "import"))
               for fid, frames in sorted(imported.masks.items()) for t, rle in sorted(frames.items())]
    summary = [{"obj_id": ids[fid], "from": fid, "frames": len(imported.masks[fid])} for fid in sorted(ids)]
    payload = {"format": imported.fmt, "file": name, "objects": summary}
    with store.event(video_id, "import", payload, user, expect_version) as ev:
        for fid, oid in sorted(ids.items(), key=lambda kv: kv[1]):
            meta = imported.names.get(fid, {})
            ev.set_object(oid, {"name": meta.get("name"), "category": meta.get("category"),
                                "colour": colour_of(oid) if colour_of else None, "hidden": False, "deleted": False})
        for oid, t, rle, rec in records:
            ev.set_prompt(oid, t, {"mask": rle})
            ev.set_mask(oid, t, rec)
    return {"version": ev.version, "objects": summary}
