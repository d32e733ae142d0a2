"""The clip training forward of SAM 2 (`SAM2Train.forward_tracking` / `track_step`).

All T frames are encoded once. The initial conditioning frames are processed first, without memory
(mask prompts taken as the output in mask mode; a click or a noisy box, then correction clicks, in
point mode); then the other frames in time order, each attending to the memory bank that the tracker
would select (`samstream.memory.select_memory`, assembled by `samstream.video.tracker.memory_tokens`)
with the training differences of the official code:

* object pointers of ALL selected conditioning frames, also those later in the clip (eval keeps only
  the past ones);
* temporal stride 1 for the recent spatial memories (eval uses memory_temporal_stride_for_eval);
* memories encoded from the sigmoid of the final high-res logits, never binarised, no hole filling,
  stored in the model dtype (with their gradient).

Frames in the plan's `frames_to_correct` get correction clicks (the tracked prediction is the first
step) and become conditioning frames when `add_all_frames_to_correct_as_cond`. Every step of every frame
is supervised by `multistep_loss`, divided by the clip's number of objects, which run as one batch.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import torch

from samstream.memory import MemorySelection, select_cond_frames, select_memory
from samstream.model.sam2 import HeadOutput, SAM2Model
from samstream.video.state import FrameOutput
from samstream.video.tracker import memory_tokens

from .losses import LossWeights, multistep_loss
from .prompts import ClipPromptPlan, PromptConfig, correction_click, initial_prompt
from .step import frame_rows, interactive_frame


@dataclass
class ClipForward:
    """What the clip forward computed: summed losses and, per frame, the final step's output."""

    losses: dict[str, torch.Tensor]
    outputs: dict[int, HeadOutput] = field(default_factory=dict)  # frame -> final HeadOutput (O objects)
    prompts: dict[int, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)  # initial points used
    cond_frames: list[int] = field(default_factory=list)
    order: list[int] = field(default_factory=list)  # processing order
    kept_objects: torch.Tensor | None = None  # (O_clip,) bool: objects visible on frame 0 (the others dropped)


def select_training_memory(frame_idx: int, cond: dict, non_cond: dict, model_cfg,
                           num_frames: int) -> MemorySelection:
    """The memory of a non-initial frame in training (forward time order): the eval policy with
    stride 1, plus the pointers of every selected conditioning frame, past or future."""
    sel = select_memory(frame_idx, False, cond, non_cond, replace(model_cfg, memory_temporal_stride_for_eval=1),
                        num_frames)
    selected, _ = select_cond_frames(frame_idx, cond, model_cfg.max_cond_frames_in_attn)
    n_past = sum(1 for t in selected if t <= frame_idx)  # eval's conditioning pointers lead sel.pointers
    signed = model_cfg.use_signed_tpos_enc_to_obj_ptrs
    cond_ptrs = [(t, out, (frame_idx - t) if signed else abs(frame_idx - t)) for t, out in selected.items()]
    sel.pointers = cond_ptrs + sel.pointers[n_past:]
    return sel


def conditioning_points(rng: np.random.Generator, gt: torch.Tensor, use_box: bool,
                        cfg: PromptConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Initial prompt of a point-mode conditioning frame for each object: gt (O, S, S) bool ->
    coords (O, N, 2), labels (O, N). An object absent on the frame gets a negative click on the
    background (plus a padding point, label -1, in box mode so that all objects have N points)."""
    pts, labs = [], []
    for m in gt.cpu().numpy():
        if m.any():
            p, lab = initial_prompt(rng, m, use_box, cfg)
        else:
            xy, neg = correction_click(rng, m, m, 0.0)  # a perfect (empty) prediction -> background click
            p, lab = xy[None], np.array([neg], np.int32)
            if use_box:
                p, lab = np.concatenate([p, np.zeros((1, 2), np.float32)]), np.array([neg, -1], np.int32)
        pts.append(p.astype(np.float32))
        labs.append(lab.astype(np.int32))
    return torch.from_numpy(np.stack(pts)), torch.from_numpy(np.stack(labs))


def clip_forward(model: SAM2Model, images: torch.Tensor, masks: torch.Tensor, plan: ClipPromptPlan,
                 rng: np.random.Generator, pcfg: PromptConfig | None = None, weights: LossWeights | None = None,
                 frozen_encoder: bool = False, clip_of: torch.Tensor | None = None) -> ClipForward:
    """The training forward of one clip: images (T, 3, S, S) normalised, masks (T, O, S, S) bool; or of a
    batch of clips (`data.batch_clips`): images (B, T, 3, S, S), masks (T, O, S, S) of all their objects and
    clip_of (O,) the clip of each. The objects of all clips run as one batch under one prompt plan, as
    SAM 2's trainer does, and the losses are normalised by their total number.

    Objects not visible on frame 0 are dropped (they could not be prompted). Randomness (prompts,
    correction clicks) comes only from rng, consumed in processing order.
    """
    pcfg = pcfg or PromptConfig()
    dev, dtype = model.device, model.dtype
    t_len = masks.shape[0]
    gt_all = masks.to(dev).bool()
    keep = gt_all[0].flatten(1).any(1)
    if not keep.any():
        raise ValueError("no object is visible on the clip's first frame")
    gt_all = gt_all[:, keep]
    n_obj = gt_all.shape[1]
    clip_of = None if clip_of is None else clip_of.to(dev)[keep]
    with torch.set_grad_enabled(not frozen_encoder and torch.is_grad_enabled()):
        feats = model.encode_image(images.flatten(0, -4).to(dev, dtype))  # (B*T, ...): clip b's frame t at b*T + t

    init = list(plan.init_cond_frames)
    order = init + [t for t in range(t_len) if t not in init]
    res = ClipForward(losses={}, order=order, kept_objects=keep.cpu())
    cond: dict[int, FrameOutput] = {}
    non_cond: dict[int, FrameOutput] = {}
    maskmem_pos = None
    for t in order:
        gt = gt_all[t]  # (O, S, S)
        rows = t if clip_of is None else clip_of * t_len + t  # each object's frame t among the encoded frames
        embed = frame_rows(feats.embed, rows, n_obj)  # (O, C, E, E)
        high_res = [frame_rows(h, rows, n_obj) for h in feats.high_res]
        is_init = t in init
        corrected = t in plan.frames_to_correct
        if is_init and not plan.use_points:  # the GT mask is the output (use_mask_input_as_output_without_sam)
            out = model.mask_as_output(embed, high_res, gt[:, None].to(dtype))
            losses = multistep_loss([(out.high_res_masks, out.ious, out.object_score_logits)], gt, n_obj, weights)
        else:
            if is_init:
                pix = model.no_memory_embed(embed)
                coords, labels = conditioning_points(rng, gt, t in plan.box_frames, pcfg)
                res.prompts[t] = (coords, labels)
            else:
                sel = select_training_memory(t, cond, non_cond, model.cfg, t_len)
                mem, mem_pos, n_ptr = memory_tokens(model, sel, maskmem_pos, t_len)
                pix = model.attend_memory(embed, frame_rows(feats.pos, rows, n_obj), mem, mem_pos, n_ptr)
                coords = labels = None
            n_corr = pcfg.num_correction_clicks if corrected else 0
            losses, out = interactive_frame(model, pix, high_res, gt, coords, labels, rng, n_corr, pcfg, weights,
                                            n_obj)
        for k, v in losses.items():
            res.losses[k] = res.losses[k] + v if k in res.losses else v
        # the final step's prediction feeds the memory: soft (sigmoid) in training, with its gradient
        mem_feats, pos = model.encode_memory(embed, out.high_res_masks.to(dtype), out.object_score_logits, False)
        if maskmem_pos is None:
            maskmem_pos = pos[:1]
        stored = FrameOutput(pred_masks=out.low_res_masks, obj_ptr=out.obj_ptr, score=out.object_score_logits,
                             maskmem=mem_feats)
        if is_init or (corrected and pcfg.add_all_frames_to_correct_as_cond):
            cond[t] = stored
            res.cond_frames.append(t)
        else:
            non_cond[t] = stored
        res.outputs[t] = out
    return res


def video_step(trainer, clip, plan: ClipPromptPlan) -> dict[str, torch.Tensor]:
    """The Trainer's default clip step: `(trainer, clip, plan) -> losses` (clip: one clip or a batch)."""
    return clip_forward(trainer.model, clip.images, clip.masks, plan, trainer.rng, trainer.cfg.prompts,
                        trainer.cfg.loss_weights, trainer.encoder_frozen, clip.clip_of).losses
