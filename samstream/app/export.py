"""Export a video's stored masks: DAVIS PNG zip, SA-V JSON, COCO JSON, YOLO-seg zip.

From the store only (no model, no video decoding). Deleted objects are left out (the store's reads do that).
The DAVIS and SA-V outputs are the files `samstream track` writes for the same masks: one indexed PNG per frame
(`00000.png`, ...; frames without masks empty; pixel = object id) and masks.json (`JsonWriter.to_dict`, rows = the
frames with any mask row). Where masks overlap, a pixel goes to the object with the highest score; hand-drawn and
imported masks (no score) outrank every model mask.

Every exporter writes into a binary file object (the server gives a temporary file, so a long video's export
is never held in memory whole); `export(store, video_id, fmt, out)` picks one and returns the download's name
and media type.
"""
from __future__ import annotations

import json
import re
import zipfile
from typing import BinaryIO

import numpy as np

from ..cli.args import video_name
from ..io.png import encode_label_png
from ..io.rle import decode_rle, encode_rle, rle_area, rle_bbox
from ..io.yolo import format_yolo_labels, mask_to_yolo
from ..video.writers import frame_filename

FORMATS = ("davis", "sav", "coco", "yolo")
# a fixed time stamp for zip entries, so the same masks give the same bytes
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
DEFAULT_CATEGORY = "object"


def _rle(rec: dict) -> dict:
    rle = rec["rle"]
    return json.loads(rle) if isinstance(rle, str) else rle


def _priority(rec: dict) -> float:
    """Which object wins a pixel where masks overlap: the score; unscored (hand, import) masks first."""
    score = rec.get("score")
    return float("inf") if score is None or rec.get("source") in ("hand", "import") else float(score)


def frame_records(store, video_id: int) -> dict[int, dict[int, dict]]:
    """frame -> {obj_id: mask record} for the frames with any mask row of a live object, in frame order."""
    out = {}
    for t in store.masked_frames(video_id):
        recs = store.frame_masks(video_id, t)
        if recs:
            out[t] = dict(sorted(recs.items()))
    return out


def label_map(records: dict[int, dict], hw: tuple[int, int]) -> np.ndarray:
    """(H, W) uint8 label map of one frame's mask records: pixel = obj_id, the highest priority on overlaps."""
    labels = np.zeros(hw, dtype=np.uint8)
    # paint the lowest priority first, so the winner is painted last; ties: the lower obj_id wins (painted last)
    order = sorted(records, key=lambda oid: (_priority(records[oid]), -oid))
    for oid in order:
        if records[oid].get("area"):
            labels[decode_rle(_rle(records[oid]))] = oid
    return labels


def _zip(out: BinaryIO) -> zipfile.ZipFile:
    return zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED)


def _add(zf: zipfile.ZipFile, name: str, data: bytes, compress: bool = True) -> None:
    info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    info.external_attr = 0o644 << 16
    zf.writestr(info, data)


def write_davis(store, video_id: int, out: BinaryIO) -> None:
    """A zip of `00000.png` ... : one indexed label PNG per frame of the video (DAVIS palette)."""
    video = store.video(video_id)
    hw = (video["height"], video["width"])
    rows = frame_records(store, video_id)
    empty = encode_label_png(np.zeros(hw, dtype=np.uint8))
    with _zip(out) as zf:
        for t in range(video["num_frames"]):
            data = encode_label_png(label_map(rows[t], hw)) if t in rows else empty
            _add(zf, frame_filename(t), data, compress=False)  # PNGs are compressed already


def sav_dict(store, video_id: int) -> dict:
    """The SA-V style dict `samstream.video.writers.JsonWriter.to_dict` builds for the same masks."""
    video = store.video(video_id)
    h, w = video["height"], video["width"]
    rows = frame_records(store, video_id)
    ids: list[int] = []
    for recs in rows.values():
        ids += [i for i in recs if i not in ids]
    empty = encode_rle(np.zeros((h, w), dtype=bool), compressed=True)
    frames = list(rows)
    return {
        "video_id": video_name(video["path"]), "video_height": h, "video_width": w,
        "video_frame_count": video["num_frames"], "masklet_id": ids, "masklet_num": len(ids),
        "masklet": [[_rle(rows[t][i]) if i in rows[t] else empty for i in ids] for t in frames],
        "masklet_frame_idx": frames,
        "masklet_score": [[rows[t][i]["score"] if i in rows[t] else None for i in ids] for t in frames],
    }


def write_sav(store, video_id: int, out: BinaryIO) -> None:
    out.write(json.dumps(sav_dict(store, video_id)).encode())


def _categories(objects: list[dict]) -> list[str]:
    """Category names in first-seen order of the objects (by obj_id); objects without one get DEFAULT_CATEGORY."""
    names: list[str] = []
    for o in objects:
        c = o.get("category") or DEFAULT_CATEGORY
        if c not in names:
            names.append(c)
    return names


def coco_dict(store, video_id: int) -> dict:
    """A COCO dataset dict: one image per frame (id = frame + 1, "frame_index" = frame), one annotation per
    non-empty mask (RLE segmentation, area, bbox, "score" when the model gave one, "obj_id" = track id), one
    category per distinct object category."""
    video = store.video(video_id)
    h, w = video["height"], video["width"]
    objects = sorted(store.objects(video_id), key=lambda o: o["obj_id"])
    cats = _categories(objects)
    cat_of = {o["obj_id"]: cats.index(o.get("category") or DEFAULT_CATEGORY) + 1 for o in objects}
    images = [{"id": t + 1, "file_name": frame_filename(t, ".jpg"), "height": h, "width": w, "frame_index": t}
              for t in range(video["num_frames"])]
    anns = []
    for t, recs in frame_records(store, video_id).items():
        for oid, rec in recs.items():
            if not rec.get("area") or oid not in cat_of:
                continue
            rle = _rle(rec)
            ann = {"id": len(anns) + 1, "image_id": t + 1, "category_id": cat_of[oid], "segmentation": rle,
                   "area": rle_area(rle), "bbox": rle_bbox(rle), "iscrowd": 0, "obj_id": oid}
            if rec.get("score") is not None:
                ann["score"] = float(rec["score"])
            anns.append(ann)
    return {"info": {"video": video_name(video["path"]), "num_frames": video["num_frames"]},
            "images": images, "annotations": anns,
            "categories": [{"id": i + 1, "name": c} for i, c in enumerate(cats)]}


def write_coco(store, video_id: int, out: BinaryIO) -> None:
    out.write(json.dumps(coco_dict(store, video_id)).encode())


def write_yolo(store, video_id: int, out: BinaryIO) -> None:
    """A zip of `labels/00000.txt` ... (one per frame, empty where no mask; a line per outline, class = the
    object's category index) and `classes.txt` (one category name a line, in class order)."""
    video = store.video(video_id)
    objects = sorted(store.objects(video_id), key=lambda o: o["obj_id"])
    cats = _categories(objects)
    cls_of = {o["obj_id"]: cats.index(o.get("category") or DEFAULT_CATEGORY) for o in objects}
    rows = frame_records(store, video_id)
    with _zip(out) as zf:
        _add(zf, "classes.txt", "".join(f"{c}\n" for c in cats).encode())
        for t in range(video["num_frames"]):
            labels = [(cls_of[oid], poly) for oid, rec in rows.get(t, {}).items() if rec.get("area") and oid in cls_of
                      for poly in mask_to_yolo(decode_rle(_rle(rec)))]
            _add(zf, f"labels/{frame_filename(t, '.txt')}", format_yolo_labels(labels).encode())


_WRITERS = {"davis": (write_davis, "zip", "application/zip"), "sav": (write_sav, "json", "application/json"),
            "coco": (write_coco, "json", "application/json"), "yolo": (write_yolo, "zip", "application/zip")}


def safe_filename(name: str, fallback: str = "video") -> str:
    """`name` as a plain download file name: letters, digits, '.', '-', '_' only, no leading dot, <= 100 chars."""
    s = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")[:100]
    return s or fallback


def export(store, video_id: int, fmt: str, out: BinaryIO) -> tuple[str, str]:
    """Write video `video_id`'s export in format `fmt` (one of FORMATS) to `out` -> (file name, media type)."""
    if fmt not in _WRITERS:
        raise ValueError(f"unknown export format {fmt!r}; choose from {', '.join(FORMATS)}")
    write, ext, media = _WRITERS[fmt]
    video = store.video(video_id)
    write(store, video_id, out)
    suffix = "masks" if fmt == "sav" else fmt
    return f"{safe_filename(video_name(video['path']))}_{suffix}.{ext}", media
