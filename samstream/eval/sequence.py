"""Per-frame J and F of the objects of one sequence, under the two protocols of the field.

* "davis" (DAVIS 2017 toolkit, semi-supervised): the objects are 1..max id of the first ground-truth
  frame; every object is scored on every evaluated frame (J = F = 1 where it is absent from both).
* "sav" (SA-V evaluator / vos-benchmark): an id enters at the first evaluated frame where it appears
  in the ground truth or in the prediction and is scored on every later evaluated frame; only ids
  that appear in the ground truth on some evaluated frame are reported.

Both take frames already chosen by the caller (first/last dropped or not) as
(name, gt (H, W) int labels, pred (H, W) int labels); ground-truth 255 is void.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from .metrics import f_measure, jaccard

VOID_LABEL = 255
VOID_MODES = ("background", "ignore")


@dataclass
class FrameScores:
    """Per-frame scores of one object: frames[i] has J j[i] and F f[i]."""

    frames: list[str] = field(default_factory=list)
    j: list[float] = field(default_factory=list)
    f: list[float] = field(default_factory=list)

    def add(self, name: str, gt: np.ndarray, pred: np.ndarray, void: np.ndarray | None, bound_th: float) -> None:
        self.frames.append(name)
        self.j.append(jaccard(gt, pred, void))
        self.f.append(f_measure(gt, pred, void, bound_th))


def split_void(gt: np.ndarray, void_mode: str) -> tuple[np.ndarray, np.ndarray | None]:
    """(gt with 255 turned into background, void mask or None).

    "background" (default, the toolkit's semi-supervised behaviour): 255 becomes background and
    no pixel is excluded. "ignore": void pixels are also left out of J and of both boundary maps,
    which the toolkit's metric functions support but its semi-supervised run never does.
    """
    if void_mode not in VOID_MODES:
        raise ValueError(f"void must be one of {VOID_MODES}, got {void_mode!r}")
    void = gt == VOID_LABEL
    if not void.any():
        return gt, None
    return np.where(void, 0, gt), (void if void_mode == "ignore" else None)


def _ids(labels: np.ndarray) -> set[int]:
    """Non-zero ids present in a label array (bincount: much faster than np.unique for uint8)."""
    if labels.dtype in (np.uint8, np.uint16, bool):
        present = np.flatnonzero(np.bincount(labels.ravel()))
    else:
        present = np.unique(labels)
    return {int(v) for v in present if v != 0}


def score_davis_protocol(
    frames: Iterable[tuple[str, np.ndarray, np.ndarray]],
    n_objects: int,
    *,
    void: str = "background",
    bound_th: float = 0.008,
) -> dict[int, FrameScores]:
    """Objects 1..n_objects scored on every given frame: {object id: FrameScores}."""
    out = {k: FrameScores() for k in range(1, n_objects + 1)}
    for name, gt, pred in frames:
        gt, vmask = split_void(np.asarray(gt), void)
        pred = np.asarray(pred)
        for k, scores in out.items():
            scores.add(name, gt == k, pred == k, vmask, bound_th)
    return out


def score_sav_protocol(
    frames: Iterable[tuple[str, np.ndarray, np.ndarray]],
    *,
    void: str = "background",
    bound_th: float = 0.008,
) -> dict[int, FrameScores]:
    """Ids scored from the frame where they first appear (GT or prediction): {id in GT: FrameScores}."""
    entered: dict[int, FrameScores] = {}
    seen_in_gt: set[int] = set()
    for name, gt, pred in frames:
        gt, vmask = split_void(np.asarray(gt), void)
        pred = np.asarray(pred)
        gt_ids = _ids(gt)
        seen_in_gt |= gt_ids
        for k in sorted(gt_ids | _ids(pred)):
            entered.setdefault(k, FrameScores())
        for k, scores in entered.items():
            scores.add(name, gt == k, pred == k, vmask, bound_th)
    # ids seen only in the prediction are scored (as the SA-V evaluator does) but not reported
    return {k: entered[k] for k in sorted(entered) if k in seen_in_gt}
