"""YOLO segmentation polygons: mask -> outlines -> mask, the label file format, bad files."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from samstream.io import (
    FormatError,
    fill_polygons,
    mask_to_polygons,
    mask_to_yolo,
    read_yolo_labels,
    read_yolo_masks,
    write_yolo_labels,
    write_yolo_masks,
    yolo_to_mask,
)
from tests.helpers import load_davis16


def test_square_hand_worked():
    m = np.zeros((6, 8), bool)
    m[1:4, 2:5] = True  # rows 1-3, columns 2-4: corners (2, 1) and (5, 4)
    (poly,) = mask_to_polygons(m)
    assert poly.tolist() == [[2, 1], [5, 1], [5, 4], [2, 4]]  # clockwise on screen
    (norm,) = mask_to_yolo(m)
    assert np.allclose(norm, [[2 / 8, 1 / 6], [5 / 8, 1 / 6], [5 / 8, 4 / 6], [2 / 8, 4 / 6]])
    assert np.array_equal(yolo_to_mask([norm], 6, 8), m)


def test_diagonal_pixels_are_separate_parts():
    m = np.array([[1, 0], [0, 1]], bool)
    polys = mask_to_polygons(m)
    assert len(polys) == 2 and all(len(p) == 4 for p in polys)


def test_hole_free_regions_come_back_exactly():
    rng = np.random.default_rng(0)
    for _ in range(100):
        h, w = rng.integers(2, 30, size=2)
        m = ndi.binary_fill_holes(rng.random((h, w)) < 0.5, structure=np.ones((3, 3)))
        assert np.array_equal(fill_polygons(mask_to_polygons(m), h, w), m)
        _, n = ndi.label(m)  # 4-connected parts
        assert len(mask_to_polygons(m)) == n


def test_holes_are_filled_lossy():
    m = np.zeros((10, 10), bool)
    m[1:9, 1:9] = True
    m[4:6, 4:6] = False
    assert len(mask_to_polygons(m)) == 1 and len(mask_to_polygons(m, keep_holes=True)) == 2
    back = yolo_to_mask(mask_to_yolo(m), 10, 10)
    assert back.sum() == 64 and (back & m).sum() == m.sum()  # IoU = 60 / 64


def test_file_round_trip_on_davis_masks(tmp_path):
    masks = [(0, load_davis16("blackswan", 0)), (3, load_davis16("surf", 3)), (5, load_davis16("bmx-bumps", 30))]
    write_yolo_masks(tmp_path / "00000.txt", masks)
    back = read_yolo_masks(tmp_path / "00000.txt", 480, 854)
    for cls, m in masks:
        union = np.logical_or.reduce([b for c, b in back if c == cls])
        # exactly the mask with its holes filled (holes are 8-connected background inside)
        assert np.array_equal(union, ndi.binary_fill_holes(m, structure=np.ones((3, 3))))
        iou = (union & m).sum() / (union | m).sum()
        if cls != 5:  # the bike's spokes leave big holes in bmx-bumps
            assert iou > 0.99
    lines = (tmp_path / "00000.txt").read_text().splitlines()
    assert {line.split()[0] for line in lines} == {"0", "3", "5"}
    vals = np.array([float(v) for line in lines for v in line.split()[1:]])
    assert vals.min() >= 0 and vals.max() <= 1


def test_labels_round_trip(tmp_path):
    labels = [(2, np.array([[0.1, 0.2], [0.5, 0.2], [0.3, 0.7]]))]
    write_yolo_labels(tmp_path / "a.txt", labels)
    ((cls, poly),) = read_yolo_labels(tmp_path / "a.txt")
    assert cls == 2 and np.allclose(poly, labels[0][1])


@pytest.mark.parametrize(
    "text, match",
    [
        ("0 0.1 0.2 0.3 0.4 0.5\n", "odd number"),
        ("0 0.1 0.2 0.3 0.4\n", ">= 3 points"),
        ("a 0.1 0.2 0.3 0.4 0.5 0.6\n", "not an integer"),
        ("0 0.1 0.2 0.3 x 0.5 0.6\n", "non-numeric"),
        ("0 0.1 0.2 0.3 0.4 0.5 1.6\n", r"\[0, 1\]"),
        ("0 0.1 0.2 0.3 0.4 0.5 0.6\n\n-1 0.1 0.2 0.3 0.4 0.5 0.6\n", "line 3.*negative"),
    ],
)
def test_malformed_label_files(tmp_path, text, match):
    p = tmp_path / "bad.txt"
    p.write_text(text)
    with pytest.raises(FormatError, match=match) as e:
        read_yolo_labels(p)
    assert "bad.txt" in str(e.value)
