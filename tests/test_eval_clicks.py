"""Click simulation for interactive evaluation, with fake predictors."""
from __future__ import annotations

import numpy as np
import pytest

from samstream.eval import (
    Click,
    first_click,
    mask_iou,
    next_click,
    number_of_clicks,
    simulate_clicks,
    summarize_clicks,
)


def rect(h, w, y0, y1, x0, x1):
    m = np.zeros((h, w), dtype=bool)
    m[y0:y1, x0:x1] = True
    return m


def test_first_click_is_the_deepest_interior_point():
    # Rows 2-8, cols 3-13: the distance to the nearest background pixel is 4 on row 5 for columns
    # 6-10; ties go to the first in row-major order.
    gt = rect(12, 20, 2, 9, 3, 14)
    assert first_click(gt) == Click(5, 6, True)


def test_image_border_counts_as_boundary():
    # The object touches the left border: without padding, column 0 would look far from any edge.
    gt = rect(9, 30, 0, 9, 0, 20)
    c = first_click(gt)
    assert (c.y, c.x) == (4, 4)  # distance 5 to the padded border rows / column


def test_next_click_targets_the_largest_error_region():
    gt = rect(20, 30, 2, 12, 2, 12) | rect(20, 30, 14, 18, 20, 28)
    pred = rect(20, 30, 2, 12, 2, 12)  # misses the small square: false negative
    c = next_click(gt, pred)
    assert c.positive and 14 <= c.y < 18 and 20 <= c.x < 28
    pred2 = gt | rect(20, 30, 0, 20, 13, 19)  # a bigger false positive band
    c = next_click(gt, pred2)
    assert not c.positive and 13 <= c.x < 19
    assert next_click(gt, gt) is None


class DiskPredictor:
    """Predicts discs of radius R around positive clicks minus discs around negative ones; records calls."""

    def __init__(self, shape, radius):
        self.shape, self.radius, self.calls = shape, radius, []

    def __call__(self, points, labels, prev_logits):
        self.calls.append((points.copy(), labels.copy(), prev_logits))
        yy, xx = np.mgrid[: self.shape[0], : self.shape[1]]
        pos = np.zeros(self.shape, bool)
        neg = np.zeros(self.shape, bool)
        for (x, y), lab in zip(points, labels, strict=False):
            d = (yy - y) ** 2 + (xx - x) ** 2 <= self.radius ** 2
            (pos if lab == 1 else neg)[...] |= d
        mask = pos & ~neg
        return mask, len(self.calls)  # the "logits" are the call number, to check they come back


def test_simulation_passes_points_labels_and_logits():
    gt = rect(40, 40, 5, 35, 5, 35)
    pred = DiskPredictor(gt.shape, 6)
    trace = simulate_clicks(pred, gt, max_clicks=4)
    assert len(trace.ious) == 4 and len(pred.calls) == 4
    pts, labels, logits = pred.calls[0]
    assert pts.shape == (1, 2) and pts.dtype == np.float32 and labels.tolist() == [1] and logits is None
    assert (pts[0, 0], pts[0, 1]) == (trace.clicks[0].x, trace.clicks[0].y)  # (x, y) order
    for k, (pts, _, logits) in enumerate(pred.calls[1:], start=1):
        assert len(pts) == k + 1 and logits == k  # previous call's logits
    assert all(c.positive for c in trace.clicks)  # discs inside a big square only ever miss object
    assert trace.ious[-1] > trace.ious[0]


def test_perfect_prediction_stops_calling_the_model():
    gt = rect(20, 20, 4, 10, 4, 10)
    calls = []

    def oracle(points, labels, prev):
        calls.append(len(points))
        return gt if len(points) >= 3 else rect(20, 20, 4, 10, 4, 7)

    trace = simulate_clicks(oracle, gt, max_clicks=20)
    assert calls == [1, 2, 3]
    assert trace.ious[:3] == [0.5, 0.5, 1.0] and trace.ious[3:] == [1.0] * 17
    assert number_of_clicks(trace.ious, 0.9) == 3


def test_summary_hand_worked():
    curves = [
        [0.80, 0.86, 0.91] + [0.95] * 17,  # NoC@85 = 2, NoC@90 = 3
        [0.50] * 4 + [0.88] + [0.89] * 15,  # NoC@85 = 5, never 0.90 -> 20
        [0.92] * 20,  # 1 and 1
    ]
    s = summarize_clicks(curves)
    assert s["mIoU@1"] == pytest.approx((0.80 + 0.50 + 0.92) / 3)
    assert s["mIoU@5"] == pytest.approx((0.95 + 0.88 + 0.92) / 3)
    assert s["NoC@85"] == pytest.approx((2 + 5 + 1) / 3)
    assert s["NoC@90"] == pytest.approx((3 + 20 + 1) / 3)
    assert s["NoC@85_failed"] == 0 and s["NoC@90_failed"] == 1
    assert s["num_objects"] == 3


def test_summary_rejects_short_traces():
    with pytest.raises(ValueError, match="mIoU@5"):
        summarize_clicks([[0.5, 0.6]], at=(1, 5))


def test_bad_inputs():
    with pytest.raises(ValueError, match="empty"):
        simulate_clicks(lambda p, lab, g: np.zeros((4, 4)), np.zeros((4, 4), bool))
    with pytest.raises(ValueError, match="shape"):
        simulate_clicks(lambda p, lab, g: np.zeros((4, 5)), rect(4, 4, 1, 3, 1, 3), max_clicks=1)
    assert mask_iou(np.zeros((3, 3)), np.zeros((3, 3))) == 1.0
