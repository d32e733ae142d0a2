"""Training losses against small hand-computed values."""
from __future__ import annotations

import math

import pytest
import torch

from samstream.train.losses import (
    LossWeights,
    actual_iou,
    dice_loss,
    focal_loss,
    iou_loss,
    multistep_loss,
    object_score_loss,
    step_loss,
)

LN2 = math.log(2)


def _t(vals):  # a 1x1x1xN map
    return torch.tensor(vals, dtype=torch.float32).view(1, 1, 1, -1)


def test_focal_at_zero_logits():
    # p = 0.5: ce = ln 2, (1 - p_t)^2 = 1/4; alpha_t = 0.25 for positives, 0.75 for negatives; mean over pixels
    got = focal_loss(_t([0.0, 0.0]), _t([1.0, 0.0]))
    assert got.shape == (1, 1)
    assert got.item() == pytest.approx((LN2 * 0.25 * 0.25 + LN2 * 0.25 * 0.75) / 2, rel=1e-6)


def test_focal_confident_right_is_small_and_wrong_is_large():
    right = focal_loss(_t([10.0, -10.0]), _t([1.0, 0.0])).item()
    wrong = focal_loss(_t([-10.0, 10.0]), _t([1.0, 0.0])).item()
    assert right < 1e-8 and wrong == pytest.approx((10 * 0.25 + 10 * 0.75) / 2, rel=1e-3)


def test_dice():
    # sigmoid(0) = 0.5 on 4 pixels, y = [1, 1, 0, 0]: 1 - (2*1 + 1) / (2 + 2 + 1) = 0.4
    assert dice_loss(_t([0.0] * 4), _t([1, 1, 0, 0])).item() == pytest.approx(0.4)


def test_iou_loss_l1_and_mse():
    logits, gt = _t([1.0, -1.0, 1.0, -1.0]), _t([1, 1, 0, 0])  # inter 1, union 3
    assert actual_iou(logits, gt).item() == pytest.approx(1 / 3)
    assert iou_loss(logits, gt, torch.tensor([[0.5]])).item() == pytest.approx(1 / 6)
    assert iou_loss(logits, gt, torch.tensor([[0.5]]), use_l1=False).item() == pytest.approx(1 / 36)
    # empty prediction and empty GT: union clamped to 1, IoU 0
    assert actual_iou(_t([-1.0, -1.0]), _t([0, 0])).item() == 0.0


def test_object_score_bce():
    got = object_score_loss(torch.tensor([[0.0], [2.0]]), torch.tensor([1.0, 0.0]))
    assert got.tolist() == pytest.approx([LN2, math.log(1 + math.exp(2))])


def test_best_of_multimask_and_supervise_all_iou():
    gt = _t([1, 1, 0, 0])
    good, bad = [9.0, 9.0, -9.0, -9.0], [-9.0, -9.0, 9.0, 9.0]
    logits = torch.tensor([bad, good], dtype=torch.float32).view(1, 2, 1, 4)  # the good candidate second
    ious = torch.tensor([[0.0, 1.0]])  # both exactly right: iou loss 0 either way
    obj = torch.tensor([[20.0]])
    out = step_loss(logits, ious, obj, gt, num_objects=1)
    assert out["loss_mask"].item() < 1e-6 and out["loss_dice"].item() < 1e-3
    assert out["loss_iou"].item() == pytest.approx(0.0, abs=1e-6)
    # with predicted IoU 0.5 for both: supervise_all_iou averages |0.5-0| and |0.5-1|; else only the chosen one
    half = torch.tensor([[0.5, 0.5]])
    assert step_loss(logits, half, obj, gt, 1)["loss_iou"].item() == pytest.approx(0.5)
    assert step_loss(logits, torch.tensor([[0.5, 0.9]]), obj, gt, 1, supervise_all_iou=False)["loss_iou"].item() \
        == pytest.approx(0.1)


def test_absent_object_gets_only_the_class_loss():
    logits = torch.zeros(1, 1, 1, 4)
    out = step_loss(logits, torch.tensor([[0.7]]), torch.tensor([[0.0]]), _t([0, 0, 0, 0]), num_objects=1)
    assert out["loss_mask"].item() == 0 and out["loss_dice"].item() == 0 and out["loss_iou"].item() == 0
    assert out["loss_class"].item() == pytest.approx(LN2)
    assert out["core_loss"].item() == pytest.approx(LN2)


def test_weights_steps_and_object_normalisation():
    logits = torch.zeros(2, 1, 1, 4)
    gt = torch.tensor([[1, 1, 0, 0], [1, 0, 0, 0]], dtype=torch.float32).view(2, 1, 1, 4)
    ious, obj = torch.full((2, 1), 0.5), torch.zeros(2, 1)
    one = step_loss(logits, ious, obj, gt, num_objects=2)
    focal = focal_loss(logits, gt)[:, 0].sum() / 2
    assert one["loss_mask"].item() == pytest.approx(focal.item())
    w = LossWeights()
    assert one["core_loss"].item() == pytest.approx(
        20 * one["loss_mask"].item() + one["loss_dice"].item() + one["loss_iou"].item() + one["loss_class"].item())
    two = multistep_loss([(logits, ious, obj)] * 2, gt[:, 0])  # (N, H, W) targets accepted; num_objects = N
    assert two["core_loss"].item() == pytest.approx(2 * one["core_loss"].item())
    assert w.mask == 20 and w.dice == w.iou == w.cls == 1


def test_gradient_reaches_logits_and_scores():
    logits = torch.zeros(1, 3, 4, 4, requires_grad=True)
    ious = torch.full((1, 3), 0.5, requires_grad=True)
    obj = torch.zeros(1, 1, requires_grad=True)
    gt = torch.zeros(1, 1, 4, 4)
    gt[..., :2, :2] = 1
    multistep_loss([(logits, ious, obj)], gt)["core_loss"].backward()
    assert logits.grad.abs().sum() > 0 and ious.grad.abs().sum() > 0 and obj.grad.abs().sum() > 0
    # only the chosen candidate receives mask gradient (all candidates equal here: the first is chosen)
    assert logits.grad[0, 1:].abs().sum() == 0


def test_errors():
    with pytest.raises(ValueError, match="at least one step"):
        multistep_loss([], torch.zeros(1, 1, 2, 2))
    with pytest.raises(ValueError, match="differ in size"):
        multistep_loss([(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1), torch.zeros(1, 1))], torch.zeros(1, 2, 2))
