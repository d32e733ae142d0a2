"""COCO JSON: annotations from masks, round trips, polygons, malformed files."""
from __future__ import annotations

import json

import numpy as np
import pytest

from samstream.io import (
    FormatError,
    decode_rle,
    encode_rle,
    mask_to_annotation,
    polygons_to_mask,
    polygons_to_rle,
    read_coco_json,
    segmentation_to_mask,
    write_coco_json,
)
from tests.helpers import load_davis16, optional_import


def test_annotation_fields_hand_worked():
    m = np.zeros((10, 12), bool)
    m[3:7, 5:9] = True
    m[8, 1] = True
    ann = mask_to_annotation(m, image_id=7, category_id=3, annotation_id=11, score=0.5)
    assert ann["id"] == 11 and ann["image_id"] == 7 and ann["category_id"] == 3
    assert ann["area"] == 17
    assert ann["bbox"] == [1.0, 3.0, 8.0, 6.0]  # x from 1 to 8, y from 3 to 8
    assert ann["iscrowd"] == 0 and ann["score"] == 0.5
    assert isinstance(ann["segmentation"]["counts"], str)


def test_dataset_round_trip(tmp_path):
    masks = [load_davis16("blackswan", 0), load_davis16("surf", 3), np.zeros((480, 854), bool)]
    images = [{"id": i + 1, "file_name": f"{i}.jpg", "height": 480, "width": 854} for i in range(3)]
    anns = [mask_to_annotation(m, image_id=i + 1, annotation_id=i + 1) for i, m in enumerate(masks)]
    anns[1] = {**anns[1], "segmentation": encode_rle(masks[1], compressed=False), "iscrowd": 1}
    write_coco_json(tmp_path / "d.json", anns, images, [{"id": 1, "name": "object"}], info={"v": 1})
    coco = read_coco_json(tmp_path / "d.json")
    assert sorted(coco.images) == [1, 2, 3] and coco.extra == {"info": {"v": 1}}
    for i, m in enumerate(masks):
        (ann,) = coco.annotations_for(i + 1)
        assert np.array_equal(coco.mask(ann), m)
        assert ann["area"] == int(m.sum())


def test_results_list_round_trip(tmp_path):
    m = load_davis16("libby", 5)
    write_coco_json(tmp_path / "r.json", [mask_to_annotation(m, image_id=4, score=0.9)])
    coco = read_coco_json(tmp_path / "r.json")
    assert coco.images == {} and len(coco.annotations) == 1
    assert np.array_equal(coco.mask(coco.annotations[0]), m)  # size taken from the RLE


def test_polygon_rectangle_covers_pixel_centres_inside():
    # Corners (1,1)-(4,3): pixels whose centres lie inside, i.e. columns 1-3 and rows 1-2.
    m = polygons_to_mask([[1, 1, 4, 1, 4, 3, 1, 3]], 5, 6)
    exp = np.zeros((5, 6), bool)
    exp[1:3, 1:4] = True
    assert np.array_equal(m, exp)
    assert np.array_equal(decode_rle(polygons_to_rle([[1, 1, 4, 1, 4, 3, 1, 3]], 5, 6)), exp)
    # two polygons are unioned
    two = segmentation_to_mask([[1, 1, 4, 1, 4, 3, 1, 3], [0, 4, 2, 4, 2, 5, 0, 5]], 5, 6)
    assert two.sum() == 6 + 2


def test_polygons_match_pycocotools_when_installed():
    mask_utils = optional_import("pycocotools.mask")
    rng = np.random.default_rng(0)
    for _ in range(300):
        h, w = (int(v) for v in rng.integers(1, 60, size=2))
        poly = rng.uniform(-5, 65, size=2 * int(rng.integers(3, 9))).tolist()
        ref = mask_utils.frPyObjects([poly], h, w)[0]
        assert polygons_to_rle([poly], h, w)["counts"] == ref["counts"].decode("ascii")


def _write(tmp_path, payload):
    p = tmp_path / "bad.json"
    p.write_text(payload if isinstance(payload, str) else json.dumps(payload))
    return p


GOOD_IMG = {"id": 1, "height": 3, "width": 2}


@pytest.mark.parametrize(
    "payload, match",
    [
        ("{not json", "invalid JSON"),
        ({"annotations": []}, "field 'images'"),
        ({"images": [{"id": 1}], "annotations": []}, r"images\[0\]\.height"),
        ({"images": [GOOD_IMG], "annotations": [{"id": 1, "image_id": 2, "bbox": [0, 0, 1, 1]}]},
         r"annotations\[0\]\.image_id"),
        ({"images": [GOOD_IMG], "annotations": [{"id": 1, "image_id": 1,
                                                 "segmentation": {"size": [3, 2], "counts": [1, 1]}}]},
         r"annotations\[0\]\.segmentation\.counts.*sum to 2, expected 6"),
        ({"images": [GOOD_IMG], "annotations": [{"id": 1, "image_id": 1, "segmentation": "x"}]},
         r"annotations\[0\]\.segmentation"),
        ({"images": [GOOD_IMG], "annotations": [{"id": 1, "image_id": 1, "bbox": [0, 0]}]},
         r"annotations\[0\]\.bbox"),
        ({"images": [GOOD_IMG], "annotations": [{"id": 1, "image_id": 1}]}, "neither"),
        (5, "top level"),
    ],
)
def test_malformed_files(tmp_path, payload, match):
    p = _write(tmp_path, payload)
    with pytest.raises(FormatError, match=match) as e:
        read_coco_json(p)
    assert str(p) in str(e.value)


def test_bad_polygon_and_size_mismatch(tmp_path):
    write_coco_json(tmp_path / "d.json",
                    [{"id": 1, "image_id": 1, "segmentation": [[0, 0, 1, 1]]},
                     {"id": 2, "image_id": 1, "segmentation": encode_rle(np.zeros((4, 2), bool))}],
                    [GOOD_IMG])
    coco = read_coco_json(tmp_path / "d.json")
    with pytest.raises(FormatError, match=r"annotations\[0\]\.segmentation\[0\]"):
        coco.mask(coco.annotations[0])
    with pytest.raises(FormatError, match=r"annotations\[1\]\.segmentation\.size"):
        coco.mask(coco.annotations[1])
