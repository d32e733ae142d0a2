"""Per-frame J (region IoU) and F (boundary F-measure), and the DAVIS per-object statistics
(mean, recall, decay), following the DAVIS 2017 toolkit (`db_eval_iou`, `f_measure`, `db_statistics`).
"""
from __future__ import annotations

import warnings

import numpy as np

from .boundary import boundary_radius, dilation_at, seg2bmap


def _binary_pair(gt, pred, void):
    gt = np.asarray(gt).astype(bool)
    pred = np.asarray(pred).astype(bool)
    if gt.shape != pred.shape:
        raise ValueError(f"ground truth {gt.shape} and prediction {pred.shape} shapes differ")
    if void is not None:
        void = np.asarray(void).astype(bool)
        if void.shape != gt.shape:
            raise ValueError(f"void mask {void.shape} and ground truth {gt.shape} shapes differ")
    return gt, pred, void


def jaccard(gt, pred, void=None) -> float:
    """Region similarity J = |gt ∩ pred| / |gt ∪ pred| over non-void pixels; 1 when the union is empty.

    gt, pred, void: (H, W) binary masks (void optional).
    """
    gt, pred, void = _binary_pair(gt, pred, void)
    if void is None:
        inter = np.count_nonzero(gt & pred)
        union = np.count_nonzero(gt | pred)
    else:
        keep = ~void
        inter = np.count_nonzero(gt & pred & keep)
        union = np.count_nonzero((gt | pred) & keep)
    return 1.0 if union == 0 else inter / union


def boundary_precision_recall(gt, pred, void=None, bound_th: float = 0.008) -> tuple[float, float]:
    """Boundary precision and recall of `pred` against `gt`, (H, W) binary masks; the tolerance is a
    disk of `boundary_radius(shape, bound_th)` pixels."""
    gt, pred, void = _binary_pair(gt, pred, void)
    if void is not None:
        # As the toolkit: void pixels are removed from both masks before taking boundaries.
        gt = gt & ~void
        pred = pred & ~void
    r = boundary_radius(gt.shape, bound_th)
    fg_b = seg2bmap(pred)
    gt_b = seg2bmap(gt)
    n_fg = np.count_nonzero(fg_b)
    n_gt = np.count_nonzero(gt_b)
    # Empty-boundary rules of the toolkit.
    if n_fg == 0 and n_gt > 0:
        return 1.0, 0.0
    if n_fg > 0 and n_gt == 0:
        return 0.0, 1.0
    if n_fg == 0 and n_gt == 0:
        return 1.0, 1.0
    # |B_pred ∩ dilate(B_gt)| and |B_gt ∩ dilate(B_pred)|, reading the dilations only where needed
    fy, fx = np.nonzero(fg_b)
    gy, gx = np.nonzero(gt_b)
    precision = np.count_nonzero(dilation_at(gt_b, r, fy, fx)) / n_fg
    recall = np.count_nonzero(dilation_at(fg_b, r, gy, gx)) / n_gt
    return float(precision), float(recall)


def f_measure(gt, pred, void=None, bound_th: float = 0.008) -> float:
    """Boundary F = 2PR / (P + R), 0 when P + R = 0."""
    p, r = boundary_precision_recall(gt, pred, void, bound_th)
    return 0.0 if p + r == 0 else 2 * p * r / (p + r)


def decay_bounds(n: int) -> list[int]:
    """The 5 quarter bounds of `db_statistics`: round(linspace(1, n, 5) + 1e-10) - 1.

    Quirk fixed: the toolkit casts these to uint8, which wraps for sequences longer than 256 frames
    and gives wrong bins; we keep them as Python ints.
    """
    return [int(v) for v in np.round(np.linspace(1, n, 5) + 1e-10) - 1]


def db_statistics(values) -> tuple[float, float, float]:
    """(mean, recall, decay) of per-frame values, as the DAVIS toolkit's `db_statistics`.

    mean = nanmean; recall = fraction of frames with value > 0.5 (a NaN frame counts as a miss, as
    in the toolkit); decay = nanmean of the first quarter - nanmean of the last quarter, where quarter
    i is values[b[i] : b[i+1] + 1] (quarters share their edge frame, as in the toolkit).
    Empty input gives NaNs.
    """
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    if v.size == 0:
        return float("nan"), float("nan"), float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)  # all-NaN slices give NaN, as intended
        mean = float(np.nanmean(v))
        recall = float(np.mean(v > 0.5))
        b = decay_bounds(v.size)
        bins = [v[b[i]: b[i + 1] + 1] for i in range(4)]
        decay = float(np.nanmean(bins[0]) - np.nanmean(bins[3]))
    return mean, recall, decay
