"""SAM 2 training losses (`MultiStepMultiMasksAndIous`): focal, dice, IoU, object score, best-of-multimask.

Every per-mask function takes logits (N, M, H, W) and a binary target (N, 1, H, W) and returns (N, M):
N objects, M candidate masks. Sums over objects are divided by num_objects by the caller-facing API.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .config import LossWeights


def focal_loss(logits: torch.Tensor, targets: torch.Tensor, alpha: float = 0.25, gamma: float = 2.0) -> torch.Tensor:
    """Sigmoid focal loss averaged over pixels: (N, M, H, W), (N, 1, H, W) -> (N, M)."""
    targets = targets.to(logits.dtype).expand_as(logits)
    p = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    loss = ce * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = loss * (alpha * targets + (1 - alpha) * (1 - targets))
    return loss.flatten(2).mean(-1)


def dice_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """1 - (2 sum(p y) + 1) / (sum p + sum y + 1) per mask: -> (N, M)."""
    p = torch.sigmoid(logits).flatten(2)
    y = targets.to(p.dtype).expand_as(logits).flatten(2)
    return 1 - (2 * (p * y).sum(-1) + 1) / (p.sum(-1) + y.sum(-1) + 1)


def actual_iou(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """IoU of (logits > 0) with (targets > 0), union clamped >= 1: -> (N, M)."""
    pred = (logits > 0).flatten(2)
    gt = (targets > 0).expand_as(logits).flatten(2)
    inter = (pred & gt).sum(-1).float()
    union = (pred | gt).sum(-1).float().clamp(min=1.0)
    return inter / union


def iou_loss(logits: torch.Tensor, targets: torch.Tensor, pred_ious: torch.Tensor, use_l1: bool = True) -> torch.Tensor:
    """Regression of the predicted IoU (N, M) on the actual IoU (no gradient through it): -> (N, M)."""
    actual = actual_iou(logits, targets)
    diff = pred_ious.float() - actual
    return diff.abs() if use_l1 else diff ** 2


def object_score_loss(obj_logits: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """Plain BCE (the example config's gamma=0, alpha=-1 focal) per object: (N, 1), (N,) -> (N,)."""
    return F.binary_cross_entropy_with_logits(obj_logits.float().view(-1), present.float(), reduction="none")


def step_loss(multimask_logits: torch.Tensor, pred_ious: torch.Tensor, obj_logits: torch.Tensor,
              targets: torch.Tensor, num_objects: float, weights: LossWeights | None = None,
              supervise_all_iou: bool = True, iou_use_l1: bool = True) -> dict[str, torch.Tensor]:
    """Losses of one interaction step, summed over objects / num_objects.

    multimask_logits (N, M, S, S) high-res logits; pred_ious (N, M); obj_logits (N, 1); targets (N, 1, S, S).
    """
    weights = weights or LossWeights()
    logits = multimask_logits.float()
    focal = focal_loss(logits, targets)  # (N, M)
    dice = dice_loss(logits, targets)
    ious = iou_loss(logits, targets, pred_ious, iou_use_l1)
    if logits.shape[1] > 1:  # supervise only the candidate the combined mask loss likes best
        best = (weights.mask * focal + weights.dice * dice).argmin(dim=1)  # (N,)
        rows = torch.arange(logits.shape[0], device=logits.device)
        focal, dice = focal[rows, best], dice[rows, best]
        ious = ious.mean(1) if supervise_all_iou else ious[rows, best]
    else:
        focal, dice, ious = focal[:, 0], dice[:, 0], ious[:, 0]
    present = targets.flatten(1).any(dim=1).float()  # (N,) no mask supervision for absent objects
    out = {
        "loss_mask": (focal * present).sum() / num_objects,
        "loss_dice": (dice * present).sum() / num_objects,
        "loss_iou": (ious * present).sum() / num_objects,
        "loss_class": object_score_loss(obj_logits, present).sum() / num_objects,
    }
    out["core_loss"] = (weights.mask * out["loss_mask"] + weights.dice * out["loss_dice"]
                        + weights.iou * out["loss_iou"] + weights.cls * out["loss_class"])
    return out


def multistep_loss(steps: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]], targets: torch.Tensor,
                   num_objects: float | None = None, weights: LossWeights | None = None,
                   supervise_all_iou: bool = True, iou_use_l1: bool = True) -> dict[str, torch.Tensor]:
    """Sum of `step_loss` over the interaction steps of one frame.

    steps: [(multimask_logits (N, M, S, S), pred_ious (N, M), obj_logits (N, 1))]; targets (N, 1, S, S) or (N, S, S).
    num_objects defaults to N (clamped >= 1), as the official loss does on one GPU.
    """
    if not steps:
        raise ValueError("multistep_loss needs at least one step")
    if targets.dim() == 3:
        targets = targets.unsqueeze(1)
    if targets.shape[-2:] != steps[0][0].shape[-2:]:
        raise ValueError(f"targets {tuple(targets.shape)} and predictions {tuple(steps[0][0].shape)} differ in size")
    n = max(float(num_objects if num_objects is not None else targets.shape[0]), 1.0)
    total: dict[str, torch.Tensor] = {}
    for logits, ious, obj in steps:
        for k, v in step_loss(logits, ious, obj, targets, n, weights, supervise_all_iou, iou_use_l1).items():
            total[k] = total[k] + v if k in total else v
    return total
