"""COCO-style JSON: annotations with an RLE / polygon segmentation, bbox and area.

A dataset file is a dict with "images", "annotations" and usually "categories"; a results file is
a bare list of annotations (each with "score"). Readers validate the structure and raise
FormatError naming the file and the field (e.g. ``annotations[3].segmentation.counts``).
"""
from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .atomic import atomic_write_text
from .coco_polygon import polygons_to_mask
from .errors import FormatError
from .rle import decode_rle, encode_rle, rle_area, rle_bbox, rle_counts


def mask_to_annotation(
    mask,
    *,
    image_id: int,
    category_id: int = 1,
    annotation_id: int | None = None,
    iscrowd: int = 0,
    score: float | None = None,
    compressed: bool = True,
) -> dict:
    """COCO annotation of a (H, W) binary mask: segmentation RLE, area (pixels) and bbox [x, y, w, h]."""
    rle = encode_rle(mask, compressed=compressed)
    ann = {"image_id": int(image_id), "category_id": int(category_id), "segmentation": rle,
           "area": rle_area(rle), "bbox": rle_bbox(rle), "iscrowd": int(iscrowd)}
    if annotation_id is not None:
        ann = {"id": int(annotation_id), **ann}
    if score is not None:
        ann["score"] = float(score)
    return ann


def segmentation_to_mask(
    segmentation, height: int, width: int, *, path=None, field: str = "segmentation"
) -> np.ndarray:
    """(height, width) bool mask of a COCO segmentation: RLE (compressed or list counts) or polygons."""
    if isinstance(segmentation, dict):
        mask = decode_rle(segmentation, path=path, field=field)
        if mask.shape != (height, width):
            raise FormatError(f"RLE size {list(mask.shape)} differs from the image size [{height}, {width}]",
                              path=path, field=f"{field}.size")
        return mask
    if isinstance(segmentation, list):
        for i, poly in enumerate(segmentation):
            if not isinstance(poly, list) or len(poly) < 6 or len(poly) % 2 or \
                    not all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in poly):
                raise FormatError("a polygon must be a flat list of an even number (>= 6) of coordinates",
                                  path=path, field=f"{field}[{i}]")
        if not segmentation:
            return np.zeros((height, width), dtype=bool)
        return polygons_to_mask(segmentation, height, width)
    raise FormatError(f"segmentation must be an RLE dict or a list of polygons, got {type(segmentation).__name__}",
                      path=path, field=field)


@dataclass
class CocoFile:
    """A parsed COCO JSON file. `images` maps image id -> image record (dataset files only)."""

    path: str | None
    annotations: list[dict]
    images: dict[int, dict] = field(default_factory=dict)
    categories: list[dict] = field(default_factory=list)
    extra: dict = field(default_factory=dict)  # other top-level keys ("info", "licenses", ...)

    def annotations_for(self, image_id: int) -> list[dict]:
        return [a for a in self.annotations if a["image_id"] == image_id]

    def mask(self, ann: dict, height: int | None = None, width: int | None = None) -> np.ndarray:
        """(H, W) bool mask of an annotation; the size comes from its image unless given."""
        idx = _index_of(self.annotations, ann)
        if height is None or width is None:
            img = self.images.get(ann["image_id"])
            if img is None:
                if isinstance(ann.get("segmentation"), dict) and "size" in ann["segmentation"]:
                    height, width = (int(v) for v in ann["segmentation"]["size"])
                else:
                    raise FormatError(f"image {ann['image_id']} is not in 'images'; pass height and width",
                                      path=self.path, field=f"annotations[{idx}].image_id")
            else:
                height, width = int(img["height"]), int(img["width"])
        return segmentation_to_mask(ann["segmentation"], height, width, path=self.path,
                                    field=f"annotations[{idx}].segmentation")


def _index_of(items: list, item) -> int | str:
    for i, x in enumerate(items):
        if x is item:
            return i
    return "?"


def _require(record, keys, path, where):
    if not isinstance(record, dict):
        raise FormatError(f"expected an object, got {type(record).__name__}", path=path, field=where)
    for k in keys:
        if k not in record:
            raise FormatError("missing", path=path, field=f"{where}.{k}")


def _check_annotation(ann, i, path, need_id: bool):
    where = f"annotations[{i}]"
    _require(ann, ("image_id", "id") if need_id else ("image_id",), path, where)
    if "segmentation" not in ann and "bbox" not in ann:
        raise FormatError("has neither 'segmentation' nor 'bbox'", path=path, field=where)
    seg = ann.get("segmentation")
    if isinstance(seg, dict):
        rle_counts(seg, path=path, field=f"{where}.segmentation")  # validates size and counts
    elif seg is not None and not isinstance(seg, list):
        raise FormatError(f"must be an RLE dict or a list of polygons, got {type(seg).__name__}",
                          path=path, field=f"{where}.segmentation")
    bbox = ann.get("bbox")
    if bbox is not None and (not isinstance(bbox, list) or len(bbox) != 4
                             or not all(isinstance(v, (int, float)) for v in bbox)):
        raise FormatError(f"bbox must be [x, y, width, height], got {bbox!r}", path=path, field=f"{where}.bbox")


def read_coco_json(path: str | os.PathLike) -> CocoFile:
    """Read and validate a COCO dataset file (dict) or results file (list of annotations)."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except json.JSONDecodeError as e:
        raise FormatError(f"invalid JSON ({e})", path=path) from None
    if isinstance(data, list):  # detection results
        for i, ann in enumerate(data):
            _check_annotation(ann, i, path, need_id=False)
        return CocoFile(path=os.fspath(path), annotations=data)
    if not isinstance(data, dict):
        raise FormatError(f"top level must be an object or a list, got {type(data).__name__}", path=path)
    for key in ("images", "annotations"):
        if not isinstance(data.get(key), list):
            raise FormatError("missing or not a list", path=path, field=key)
    images = {}
    for i, img in enumerate(data["images"]):
        _require(img, ("id", "height", "width"), path, f"images[{i}]")
        images[img["id"]] = img
    for i, ann in enumerate(data["annotations"]):
        _check_annotation(ann, i, path, need_id=True)
        if ann["image_id"] not in images:
            raise FormatError(f"image {ann['image_id']!r} is not listed in 'images'", path=path,
                              field=f"annotations[{i}].image_id")
    cats = data.get("categories", [])
    if not isinstance(cats, list):
        raise FormatError("not a list", path=path, field="categories")
    extra = {k: v for k, v in data.items() if k not in ("images", "annotations", "categories")}
    return CocoFile(path=os.fspath(path), annotations=data["annotations"], images=images, categories=cats, extra=extra)


def _jsonable_rle(seg):
    # pycocotools hands back bytes counts; JSON needs str.
    if isinstance(seg, dict) and isinstance(seg.get("counts"), (bytes, bytearray)):
        return {**seg, "counts": seg["counts"].decode("ascii")}
    return seg


def write_coco_json(
    path: str | os.PathLike,
    annotations: Sequence[dict],
    images: Sequence[dict] | None = None,
    categories: Sequence[dict] | None = None,
    **extra,
) -> Path:
    """Write a COCO file atomically: a dataset dict when `images` is given, else a results list."""
    anns = [{**a, "segmentation": _jsonable_rle(a["segmentation"])} if "segmentation" in a else dict(a)
            for a in annotations]
    if images is None:
        payload = anns
    else:
        payload = {**extra, "images": list(images), "annotations": anns, "categories": list(categories or [])}
    return atomic_write_text(path, json.dumps(payload))
