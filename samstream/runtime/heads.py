"""Choosing among the decoder's four mask tokens, as SAM2Model.forward_sam_heads and MaskDecoder do."""
from __future__ import annotations

import numpy as np

from .ops import stability_score

NO_OBJ_SCORE = -1024.0  # logit given to every pixel of an object judged absent


def pad_points(coords: np.ndarray | None, labels: np.ndarray | None, b: int = 1):
    """Prompt points (B, N, 2), labels (B, N) -> with the trailing "not a point" token the model was trained with;
    no points: the single padding point the decoder always sees in tracking."""
    if coords is None:
        coords, labels = np.zeros((b, 1, 2), np.float32), -np.ones((b, 1), np.int32)
    b = coords.shape[0]
    return (np.concatenate([coords.astype(np.float32), np.zeros((b, 1, 2), np.float32)], axis=1),
            np.concatenate([labels.astype(np.int32), -np.ones((b, 1), np.int32)], axis=1))


def select_masks(masks, iou, multimask: bool, cfg):
    """Decoder outputs (B, 4, L, L), (B, 4) -> the masks and scores MaskDecoder returns: the 3 multimask outputs,
    or the single-mask one (falling back to the best multimask output when unstable, as the config asks)."""
    if multimask:
        return masks[:, 1:], iou[:, 1:]
    if not cfg.dynamic_multimask_via_stability:
        return masks[:, 0:1], iou[:, 0:1]
    rows = np.arange(masks.shape[0])
    best = iou[:, 1:].argmax(axis=-1)
    best_masks, best_iou = masks[:, 1:][rows, best][:, None], iou[:, 1:][rows, best][:, None]
    single, single_iou = masks[:, 0:1], iou[:, 0:1]
    stable = stability_score(single, cfg.dynamic_multimask_stability_delta) >= cfg.dynamic_multimask_stability_thresh
    return np.where(stable[..., None, None], single, best_masks), np.where(stable, single_iou, best_iou)


def sam_heads(outputs, multimask: bool, cfg):
    """forward_sam_heads after the decoder: -> low-res masks (B, 1, L, L) (absent objects at NO_OBJ_SCORE),
    object pointers (B, C), object score logits (B, 1)."""
    masks, iou, obj_ptr, obj_logits = outputs
    out_masks, out_iou = select_masks(masks, iou, multimask, cfg)
    present = obj_logits > 0  # (B, 1)
    out_masks = np.where(present[:, :, None, None], out_masks, np.float32(NO_OBJ_SCORE)).astype(np.float32)
    rows = np.arange(masks.shape[0])
    if multimask:
        best = out_iou.argmax(axis=-1)
        low, ptr = out_masks[rows, best][:, None], obj_ptr[:, 1:][rows, best]
    else:
        low, ptr = out_masks, obj_ptr[:, 0]
    return low, ptr, obj_logits.astype(np.float32)
