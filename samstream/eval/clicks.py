"""Click simulation for interactive image segmentation (SA-23 style mIoU@k, NoC@85 / NoC@90).

The first click is the interior point of the object farthest from its boundary; each next click is
the point farthest from the boundary of the largest error region, positive when that region is
missed object (false negative), negative when it is wrongly included background (false positive).
"Farthest from the boundary" is the maximum of the Euclidean distance transform of the region padded
with a ring of zeros (so the image border counts as boundary); ties go to the first pixel in
row-major order. Error regions are 4-connected components, compared by pixel count (a tie goes to
the false negative region, then to the component met first in row-major order).

The model is any callable `predict(points, labels, prev_logits)`:
  points (K, 2) float32 (x, y) pixel coordinates of all clicks so far (SAM's point_coords order),
  labels (K,) int32, 1 positive / 0 negative, prev_logits whatever it returned last time (None first);
  returns a (H, W) mask (foreground where > 0: bool, 0/1 or logits), or (mask, logits) to have the
  logits passed back on the next call (SAM's low-res mask prompt).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

Predictor = Callable[[np.ndarray, np.ndarray, object], object]


@dataclass(frozen=True)
class Click:
    y: int
    x: int
    positive: bool


def _ndimage():
    try:
        from scipy import ndimage
    except ModuleNotFoundError:
        raise ModuleNotFoundError("click simulation needs scipy: pip install 'samstream[eval]'") from None
    return ndimage


def farthest_from_boundary(region) -> tuple[int, int]:
    """(y, x) of the pixel of a (H, W) bool region farthest from its boundary (or the image border)."""
    r = np.asarray(region, dtype=bool)
    if not r.any():
        raise ValueError("empty region: no pixel to click")
    dist = _ndimage().distance_transform_edt(np.pad(r, 1))[1:-1, 1:-1]  # (H, W)
    y, x = np.unravel_index(int(np.argmax(dist)), dist.shape)
    return int(y), int(x)


def first_click(gt) -> Click:
    """Positive click at the object's interior point farthest from its boundary."""
    y, x = farthest_from_boundary(gt)
    return Click(y, x, True)


def _largest_component(mask: np.ndarray) -> tuple[int, np.ndarray | None]:
    lab, n = _ndimage().label(mask)  # default structure: 4-connectivity
    if n == 0:
        return 0, None
    sizes = np.bincount(lab.ravel())[1:]  # (n,) pixel count of each component
    k = int(np.argmax(sizes))  # first of the largest ones
    return int(sizes[k]), lab == k + 1


def next_click(gt, pred) -> Click | None:
    """The corrective click for a prediction, or None when it has no error."""
    gt = np.asarray(gt, dtype=bool)
    pred = np.asarray(pred, dtype=bool)
    fn_size, fn = _largest_component(gt & ~pred)
    fp_size, fp = _largest_component(~gt & pred)
    if fn is None and fp is None:
        return None
    positive = fn_size >= fp_size
    y, x = farthest_from_boundary(fn if positive else fp)
    return Click(y, x, positive)


def mask_iou(gt, pred) -> float:
    """IoU of two binary masks; 1 when both are empty."""
    gt = np.asarray(gt, dtype=bool)
    pred = np.asarray(pred, dtype=bool)
    union = np.count_nonzero(gt | pred)
    return 1.0 if union == 0 else np.count_nonzero(gt & pred) / union


@dataclass
class ClickTrace:
    """One object's session: ious[k] is the IoU after k+1 clicks."""

    clicks: list[Click]
    ious: list[float]


def simulate_clicks(predict: Predictor, gt, max_clicks: int = 20) -> ClickTrace:
    """Run `max_clicks` simulated clicks on one object.

    Once a prediction is perfect there is no error left to click: the IoU is carried over to the
    remaining click counts without calling the model again.
    """
    gt = np.asarray(gt, dtype=bool)
    if gt.ndim != 2:
        raise ValueError(f"ground truth must be a (H, W) mask, got shape {gt.shape}")
    if not gt.any():
        raise ValueError("ground truth mask is empty: no object to click on")
    clicks: list[Click] = []
    ious: list[float] = []
    pred = np.zeros_like(gt)
    logits = None
    for k in range(max_clicks):
        click = first_click(gt) if k == 0 else next_click(gt, pred)
        if click is None:
            ious.append(ious[-1])
            continue
        clicks.append(click)
        points = np.array([[c.x, c.y] for c in clicks], dtype=np.float32)  # (K, 2) x, y
        labels = np.array([1 if c.positive else 0 for c in clicks], dtype=np.int32)  # (K,)
        out = predict(points, labels, logits)
        if isinstance(out, tuple):
            out, logits = out[0], out[1]
        pred = np.asarray(out) > 0
        if pred.shape != gt.shape:
            raise ValueError(f"predict returned a mask of shape {pred.shape}, expected {gt.shape}")
        ious.append(mask_iou(gt, pred))
    return ClickTrace(clicks, ious)


def number_of_clicks(ious: Sequence[float], threshold: float, max_clicks: int = 20) -> int:
    """Clicks needed to reach IoU >= threshold; max_clicks when it is never reached within them."""
    for k, v in enumerate(ious[:max_clicks]):
        if v >= threshold:
            return k + 1
    return max_clicks


def summarize_clicks(
    traces: Sequence[ClickTrace | Sequence[float]],
    *,
    at: Sequence[int] = (1, 5),
    thresholds: Sequence[float] = (0.85, 0.90),
    max_clicks: int = 20,
) -> dict[str, float]:
    """mIoU after k clicks for k in `at`, and mean NoC@t with the count of objects never reaching t.

    Keys: "mIoU@1", "mIoU@5", "NoC@85", "NoC@85_failed", "NoC@90", "NoC@90_failed", "num_objects".
    """
    curves = [list(t.ious if isinstance(t, ClickTrace) else t) for t in traces]
    if not curves:
        raise ValueError("no click traces to summarize")
    out: dict[str, float] = {"num_objects": len(curves)}
    for k in at:
        short = [i for i, c in enumerate(curves) if len(c) < k]
        if short:
            raise ValueError(f"mIoU@{k} needs {k} clicks but trace {short[0]} has {len(curves[short[0]])}")
        out[f"mIoU@{k}"] = float(np.mean([c[k - 1] for c in curves]))
    for t in thresholds:
        name = f"NoC@{round(100 * t)}"
        short = [i for i, c in enumerate(curves) if len(c) < max_clicks and max(c, default=0) < t]
        if short:
            raise ValueError(f"{name} needs traces of {max_clicks} clicks (or reaching {t}); "
                             f"trace {short[0]} is shorter")
        nocs = [number_of_clicks(c, t, max_clicks) for c in curves]
        out[name] = float(np.mean(nocs))
        out[f"{name}_failed"] = sum(1 for c in curves if max(c[:max_clicks], default=0) < t)
    return out


def evaluate_clicks(
    samples: Iterable[tuple[np.ndarray, Predictor]],
    *,
    max_clicks: int = 20,
    at: Sequence[int] = (1, 5),
    thresholds: Sequence[float] = (0.85, 0.90),
    progress: bool = True,
    total: int | None = None,
) -> tuple[list[ClickTrace], dict[str, float]]:
    """Simulate clicks on every (gt mask, predict) sample; returns the traces and `summarize_clicks`."""
    traces = [simulate_clicks(p, gt, max_clicks) for gt, p in
              tqdm(samples, total=total, desc="clicks", unit="obj", disable=not progress)]
    return traces, summarize_clicks(traces, at=at, thresholds=thresholds, max_clicks=max_clicks)
