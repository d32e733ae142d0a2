"""Per-frame J and F, boundary maps, disk dilation and DAVIS statistics: hand-worked cases, a
brute-force reference, and (when installed) OpenCV + scikit-image, which the DAVIS toolkit uses."""
from __future__ import annotations

import math

import numpy as np
import pytest

from samstream.eval import (
    boundary_radius,
    db_statistics,
    decay_bounds,
    dilate_disk,
    dilation_at,
    disk,
    f_measure,
    jaccard,
    seg2bmap,
)
from samstream.eval.metrics import boundary_precision_recall
from tests.eval_reference import ref_boundary, ref_boundary_loops, ref_f, ref_j
from tests.helpers import DAVIS16_ANN, load_davis16, optional_import, perturb


def square(h, w, y0, x0, k):
    m = np.zeros((h, w), dtype=bool)
    m[y0:y0 + k, x0:x0 + k] = True
    return m


# ----------------------------------------------------------------------------- hand-worked cases

def test_square_shift_by_one_has_j_0_6_and_perfect_f():
    # 10x10 image: radius ceil(0.008 * 14.1) = 1. A 4x4 square and the same square one pixel to the
    # right overlap in 4x3 = 12 pixels of a 20-pixel union; every boundary pixel of one lies within
    # 1 px of the other's boundary (boundaries are 5x5 rings offset by one pixel).
    gt = square(10, 10, 2, 2, 4)
    pred = square(10, 10, 2, 3, 4)
    assert jaccard(gt, pred) == pytest.approx(12 / 20)
    assert f_measure(gt, pred) == 1.0


def test_square_shift_by_two_hand_counted_f():
    # Shift by 2: of the 16 pixels of the predicted boundary ring (rows 1-5, cols 3-7), the top and
    # bottom rows hit 4 of 5 each, the left column 2 of 3 (rows 2 and 4 touch the GT ring's top and
    # bottom rows), the right column 0 of 3: 10/16. Recall is the same by symmetry.
    gt = square(10, 10, 2, 2, 4)
    pred = square(10, 10, 2, 4, 4)
    assert jaccard(gt, pred) == pytest.approx(8 / 24)
    assert boundary_precision_recall(gt, pred) == (10 / 16, 10 / 16)
    assert f_measure(gt, pred) == pytest.approx(10 / 16)
    # With a 2-pixel tolerance (bound_th >= 1 is a radius in pixels) every pixel matches.
    assert f_measure(gt, pred, bound_th=2) == 1.0


def test_empty_mask_rules():
    gt = square(10, 10, 2, 2, 4)
    empty = np.zeros_like(gt)
    assert jaccard(gt, empty) == 0.0 and f_measure(gt, empty) == 0.0  # P=1, R=0
    assert jaccard(empty, gt) == 0.0 and f_measure(empty, gt) == 0.0  # P=0, R=1
    assert jaccard(empty, empty) == 1.0 and f_measure(empty, empty) == 1.0
    assert boundary_precision_recall(gt, empty) == (1.0, 0.0)
    assert boundary_precision_recall(empty, gt) == (0.0, 1.0)


def test_full_image_mask_has_no_boundary_quirk():
    full = np.ones((6, 8), dtype=bool)
    assert not seg2bmap(full).any()
    half = full.copy()
    half[:, 4:] = False
    assert f_measure(full, full) == 1.0  # both boundaries empty
    assert f_measure(full, half) == 0.0  # GT boundary empty, prediction's not: P=0, R=1
    assert jaccard(full, half) == 0.5


def test_boundary_of_squares_hand_counted():
    # An interior k x k square: the (k+1) x (k+1) ring shifted up-left by one pixel, 4k pixels.
    b = seg2bmap(square(12, 12, 3, 4, 5))
    assert b.sum() == 20
    assert b[2, 3] and b[2, 8] and b[7, 3] and b[7, 8] and not b[3, 4 + 1]
    # At the top-left corner the ring is cut by the image: row 2 (3 px) and column 2 (rows 0-1).
    b = seg2bmap(square(8, 8, 0, 0, 3))
    assert sorted(map(tuple, np.argwhere(b))) == [(0, 2), (1, 2), (2, 0), (2, 1), (2, 2)]
    # At the bottom-right corner: last row / column compared only along themselves, corner never set:
    # the row above the square (4 px) and the column left of it (3 px).
    b = seg2bmap(square(8, 8, 5, 5, 3))
    assert sorted(map(tuple, np.argwhere(b))) == [(4, 4), (4, 5), (4, 6), (4, 7), (5, 4), (6, 4), (7, 4)]


def test_void_ignore_excludes_pixels():
    gt = square(10, 10, 2, 2, 4)
    pred = gt.copy()
    pred[7, 2:6] = True  # 4 extra pixels
    void = np.zeros_like(gt)
    void[7, :] = True
    assert jaccard(gt, pred) == pytest.approx(16 / 20)
    assert jaccard(gt, pred, void) == 1.0
    assert f_measure(gt, pred, void) == 1.0  # the extra row is removed before taking boundaries


def test_radius_and_disk_sizes():
    assert boundary_radius((480, 854)) == 8  # 8 px at DAVIS 480p, as the toolkit documents
    assert boundary_radius((10, 10)) == 1
    assert boundary_radius((10, 10), bound_th=3) == 3
    # Lattice points with dx² + dy² <= r² (Gauss circle problem): 5, 13, 29, 49, 81, ..., 197 for r = 8.
    assert [int(disk(r).sum()) for r in (1, 2, 3, 4, 5, 8)] == [5, 13, 29, 49, 81, 197]
    assert disk(0).tolist() == [[True]]
    assert disk(8).shape == (17, 17)


def test_db_statistics_hand_worked():
    v = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2]
    # bounds round(linspace(1, 8, 5) + 1e-10) - 1 = [0, 2, 4, 5, 7]; first quarter v[0:3], last v[5:8]
    assert decay_bounds(8) == [0, 2, 4, 5, 7]
    mean, recall, decay = db_statistics(v)
    assert mean == pytest.approx(0.55)
    assert recall == 0.5  # 0.5 itself is not > 0.5
    assert decay == pytest.approx(0.8 - 0.3)


def test_decay_bounds_do_not_wrap_past_255_frames():
    # linspace(1, 300, 5) = 1, 75.75, 150.5, 225.25, 300 -> rounded - 1: the toolkit's uint8 cast
    # would turn 299 into 43 and make the last quarter empty.
    assert decay_bounds(300) == [0, 75, 150, 224, 299]
    v = np.r_[np.ones(225), np.zeros(75)]
    _, _, decay = db_statistics(v)
    assert decay == pytest.approx(1.0 - 1 / 76)  # last quarter v[224:300] holds one 1 and 75 zeros


def test_db_statistics_nan_and_empty():
    m, r, _d = db_statistics([1.0, float("nan"), 0.0, 1.0])
    assert m == pytest.approx(2 / 3)
    assert r == 0.5  # a NaN frame counts as a miss, as in the toolkit
    assert all(math.isnan(x) for x in db_statistics([]))


# ----------------------------------------------------------------------------- against references

def test_seg2bmap_matches_loop_reference_on_random_masks():
    rng = np.random.default_rng(0)
    for _ in range(200):
        h, w = rng.integers(1, 12, size=2)
        m = rng.random((h, w)) < rng.random()
        expected = ref_boundary_loops(m)
        assert np.array_equal(seg2bmap(m), expected)
        assert np.array_equal(ref_boundary(m), expected)  # the fast reference used on big frames


def _dilate_brute(b, r):
    out = np.zeros_like(b)
    h, w = b.shape
    for y, x in np.argwhere(b):
        for dy in range(-r, r + 1):
            for dx in range(-r, r + 1):
                if dy * dy + dx * dx <= r * r and 0 <= y + dy < h and 0 <= x + dx < w:
                    out[y + dy, x + dx] = True
    return out


def test_dilation_matches_brute_force_stamping():
    rng = np.random.default_rng(1)
    for _ in range(150):
        h, w = rng.integers(1, 40, size=2)
        r = int(rng.integers(0, 10))
        b = rng.random((h, w)) < 0.03
        expected = _dilate_brute(b, r)
        assert np.array_equal(dilate_disk(b, r), expected)
        ys, xs = np.nonzero(rng.random((h, w)) < 0.5)
        assert np.array_equal(dilation_at(b, r, ys, xs), expected[ys, xs])


def test_dilation_matches_opencv_with_skimage_disk():
    cv2 = optional_import("cv2")
    morphology = optional_import("skimage.morphology")
    rng = np.random.default_rng(2)
    for r in range(13):
        assert np.array_equal(morphology.disk(r).astype(bool), disk(r))
        b = rng.random((60, 90)) < 0.02
        ref = cv2.dilate(b.astype(np.uint8), morphology.disk(r).astype(np.uint8)).astype(bool)
        assert np.array_equal(dilate_disk(b, r), ref)
    # A real 854x480 boundary at the DAVIS radius.
    bm = seg2bmap(load_davis16("blackswan", 0))
    ref = cv2.dilate(bm.astype(np.uint8), morphology.disk(8).astype(np.uint8)).astype(bool)
    assert np.array_equal(dilate_disk(bm, 8), ref)


@pytest.mark.parametrize("seq", ["blackswan", "bmx-bumps", "surf"])
def test_j_and_f_match_reference_on_perturbed_davis_frames(seq):
    rng = np.random.default_rng(3)
    n = len(list((DAVIS16_ANN / seq).glob("*.png")))
    for i, t in enumerate(range(0, n, 7)):
        gt = load_davis16(seq, t)
        for kind in (i, i + 3):
            pred = perturb(gt, kind, rng)
            assert jaccard(gt, pred) == pytest.approx(ref_j(gt, pred), abs=1e-12)
            assert f_measure(gt, pred) == pytest.approx(ref_f(gt, pred), abs=1e-12)
        void = np.zeros_like(gt)
        void[200:240] = True
        pred = perturb(gt, i + 1, rng)
        assert jaccard(gt, pred, void) == pytest.approx(ref_j(gt, pred, void), abs=1e-12)
        assert f_measure(gt, pred, void) == pytest.approx(ref_f(gt, pred, void), abs=1e-12)


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="shapes differ"):
        jaccard(np.zeros((4, 4)), np.zeros((4, 5)))
