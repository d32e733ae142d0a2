"""COCO RLE: hand-worked encodings, round trips, malformed counts, and pycocotools when installed."""
from __future__ import annotations

import numpy as np
import pytest

from samstream.io import (
    FormatError,
    compress_rle,
    counts_to_string,
    decode_counts,
    decode_rle,
    encode_counts,
    encode_rle,
    merge_rles,
    rle_area,
    rle_bbox,
    string_to_counts,
)
from tests.helpers import optional_import

# [[0, 1],
#  [1, 1],
#  [0, 0]]  column-major: 0 1 0 | 1 1 0  -> runs 1 bg, 1 fg, 1 bg, 2 fg, 1 bg
HAND_MASK = np.array([[0, 1], [1, 1], [0, 0]], dtype=bool)
HAND_COUNTS = [1, 1, 1, 2, 1]


def test_hand_worked_counts_and_string():
    assert encode_counts(HAND_MASK) == HAND_COUNTS
    # counts 4 and 5 are stored as differences to the count two before: 2-1 = 1, 1-1 = 0;
    # each value < 16 is one char 48 + value.
    assert counts_to_string(HAND_COUNTS) == "11110"
    assert encode_rle(HAND_MASK) == {"size": [3, 2], "counts": "11110"}
    assert decode_rle({"size": [3, 2], "counts": "11110"}).tolist() == HAND_MASK.tolist()


def test_hand_worked_multi_char_and_negative_delta():
    # 100 = 0b11_00100: low 5 bits 4 with the "more" bit 0x20 -> chr(48 + 36) = 'T', then 3 -> '3'
    assert counts_to_string([100]) == "T3"
    # [5, 3, 10, 1]: the 4th count is stored as 1 - 3 = -2 -> 5-bit two's complement 30 (sign bit
    # 0x10 set, no more groups) -> chr(48 + 30) = 'N'
    assert counts_to_string([5, 3, 10, 1]) == "53:N"
    assert string_to_counts("53:N") == [5, 3, 10, 1]
    assert string_to_counts("T3") == [100]


def test_leading_foreground_and_empty_image():
    m = np.ones((2, 2), dtype=bool)
    assert encode_counts(m) == [0, 4]  # counts always start with background
    assert encode_counts(np.zeros((0, 3), dtype=bool)) == [0]
    assert decode_counts([0, 4], 2, 2).all()


def test_round_trip_random_masks_both_forms():
    rng = np.random.default_rng(0)
    for _ in range(200):
        h, w = rng.integers(1, 50, size=2)
        m = rng.random((h, w)) < rng.random()
        for compressed in (True, False):
            rle = encode_rle(m, compressed=compressed)
            assert np.array_equal(decode_rle(rle), m)
            assert rle_area(rle) == int(m.sum())
        counts = encode_counts(m)
        assert string_to_counts(counts_to_string(counts)) == counts
        assert sum(counts) == h * w


def test_large_counts_round_trip():
    counts = [0, 2**31 - 5, 3, 7, 1_000_000, 1]
    assert string_to_counts(counts_to_string(counts)) == counts


def test_area_and_bbox_hand_worked():
    rle = encode_rle(HAND_MASK)
    assert rle_area(rle) == 3
    assert rle_bbox(rle) == [0.0, 0.0, 2.0, 2.0]
    m = np.zeros((10, 12), dtype=bool)
    m[3:7, 5:9] = True
    assert rle_bbox(encode_rle(m)) == [5.0, 3.0, 4.0, 4.0]
    assert rle_bbox(encode_rle(np.zeros((4, 4), bool))) == [0.0, 0.0, 0.0, 0.0]


def test_bbox_matches_mask_extent():
    rng = np.random.default_rng(1)
    for _ in range(100):
        m = np.zeros((30, 40), dtype=bool)
        y0, x0 = rng.integers(0, 25), rng.integers(0, 35)
        m[y0: y0 + rng.integers(1, 6), x0: x0 + rng.integers(1, 6)] = True
        m[rng.integers(0, 30), rng.integers(0, 40)] = True
        ys, xs = np.nonzero(m)
        exp = [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]
        assert rle_bbox(encode_rle(m)) == [float(v) for v in exp]


def test_merge_and_compress():
    a = np.zeros((5, 5), bool)
    a[:2] = True
    b = np.zeros((5, 5), bool)
    b[:, :2] = True
    ra, rb = encode_rle(a, compressed=False), encode_rle(b)
    assert np.array_equal(decode_rle(merge_rles([ra, rb])), a | b)
    assert np.array_equal(decode_rle(merge_rles([ra, rb], intersect=True)), a & b)
    assert compress_rle(ra) == encode_rle(a)


@pytest.mark.parametrize(
    "rle, match",
    [
        ({"size": [3, 2], "counts": [1, 1, 1]}, "sum to 3, expected 6"),
        ({"size": [3, 2], "counts": "1111"}, "sum to"),
        ({"size": [3, 2], "counts": "11 10"}, "invalid character"),
        ({"size": [3, 2], "counts": "1T"}, "middle of a number"),
        ({"size": [3, 2], "counts": [7, -1]}, "negative"),
        ({"size": [3], "counts": "11110"}, "height, width"),
        ({"counts": "11110"}, "lacks"),
        ({"size": [3, 2], "counts": 5}, "string or a list"),
        ([1, 2], "dict"),
    ],
)
def test_malformed_rle_errors(rle, match):
    with pytest.raises(FormatError, match=match) as e:
        decode_rle(rle, path="masks.json", field="annotations[0].segmentation")
    assert "masks.json" in str(e.value) and "annotations[0].segmentation" in str(e.value)
    assert isinstance(e.value, ValueError)


def test_matches_pycocotools_when_installed():
    mask_utils = optional_import("pycocotools.mask")
    rng = np.random.default_rng(2)
    for _ in range(100):
        h, w = rng.integers(1, 60, size=2)
        m = rng.random((h, w)) < rng.random()
        ref = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
        ours = encode_rle(m)
        assert ours["counts"] == ref["counts"].decode("ascii")
        assert rle_bbox(ours) == mask_utils.toBbox(ref).tolist()
        assert rle_area(ours) == int(mask_utils.area(ref))
        assert np.array_equal(decode_rle({"size": [int(h), int(w)], "counts": ref["counts"]}), m)
        # uncompressed COCO counts, converted by pycocotools
        unc = encode_rle(m, compressed=False)
        conv = mask_utils.frPyObjects(unc, int(h), int(w))
        assert compress_rle(unc)["counts"] == conv["counts"].decode("ascii")
