"""One frame's interactive forward pass: initial prompt, then correction clicks sampled from the current
error, re-running the SAM heads with the previous low-res logits as mask prompt; a loss on every step.

Shared by the single-frame stage and (later) video-clip training, which passes memory-conditioned
features in `embed` instead of `no_memory_embed(...)`.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from samstream.model.sam2 import HeadOutput, SAM2Model

from .losses import LossWeights, multistep_loss
from .prompts import PromptConfig, correction_click, initial_prompt


def frame_rows(x: torch.Tensor, rows: int | torch.Tensor, n: int) -> torch.Tensor:
    """Encoded frames x (F, ...) -> (n, ...) for n objects: frame `rows` for all of them (an int: a view, no
    copy), or frame rows[i] for object i (a tensor (n,): objects of a batch of clips)."""
    if isinstance(rows, int):
        return x[rows: rows + 1].expand(n, *x.shape[1:])
    return x[rows]


def use_multimask(model: SAM2Model, num_points: int) -> bool:
    """SAM 2's rule: several candidate masks only while the prompt is ambiguous (few points)."""
    return model.cfg.multimask_min_pt_num <= num_points <= model.cfg.multimask_max_pt_num


def initial_points(rng: np.random.Generator, gt: torch.Tensor, use_box: bool,
                   cfg: PromptConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """gt (O, S, S) bool -> coords (O, N, 2) float, labels (O, N) int32 (N = 2 for boxes, 1 for a click)."""
    pts, labs = zip(*(initial_prompt(rng, m.cpu().numpy(), use_box, cfg) for m in gt))
    return torch.from_numpy(np.stack(pts)), torch.from_numpy(np.stack(labs))


def add_correction_clicks(rng: np.random.Generator, pred: torch.Tensor, gt: torch.Tensor,
                          coords: torch.Tensor | None, labels: torch.Tensor | None,
                          prob_from_gt: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Append one click per object sampled from its error region: pred, gt (O, S, S) bool.
    coords/labels None: the frame had no points yet (a tracked frame being corrected)."""
    p, g = pred.cpu().numpy(), gt.cpu().numpy()
    new = [correction_click(rng, p[o], g[o], prob_from_gt) for o in range(len(g))]
    xy = torch.from_numpy(np.stack([c for c, _ in new]))[:, None]  # (O, 1, 2)
    if coords is None:
        return xy.float(), torch.tensor([[lab] for _, lab in new], dtype=torch.int32)
    xy = xy.to(coords)
    lab = torch.tensor([[lb] for _, lb in new], dtype=labels.dtype, device=labels.device)  # (O, 1)
    return torch.cat([coords, xy], 1), torch.cat([labels, lab], 1)


def interactive_frame(model: SAM2Model, embed: torch.Tensor, high_res: list[torch.Tensor], gt: torch.Tensor,
                      coords: torch.Tensor | None, labels: torch.Tensor | None, rng: np.random.Generator,
                      num_corrections: int,
                      cfg: PromptConfig, weights: LossWeights | None = None,
                      num_objects: float | None = None) -> tuple[dict[str, torch.Tensor], HeadOutput]:
    """Run 1 + num_corrections SAM-head steps on one frame and sum their losses.

    embed (O, C, E, E) features (memory-conditioned or not), high_res per object, gt (O, S, S) bool,
    coords (O, N, 2) / labels (O, N) the initial prompt, or None for a frame tracked from memory alone
    (its first step has no points; correction clicks then start the frame's point set).
    Returns (losses, final step's output).
    """
    s = model.cfg.image_size
    target = gt[:, None].float()  # (O, 1, S, S)
    steps = []
    mask_in = None
    out = None
    for k in range(num_corrections + 1):
        if k > 0:  # a new click from the previous step's error, the previous logits as mask prompt
            coords, labels = add_correction_clicks(rng, out.high_res_masks[:, 0].detach() > 0, gt, coords, labels,
                                                   cfg.prob_click_from_gt)
            mask_in = out.low_res_masks
        pts = None if coords is None else (coords.to(embed.device), labels.to(embed.device))
        out = model.forward_sam_heads(embed, high_res, pts, mask_in,
                                      use_multimask(model, 0 if labels is None else labels.shape[1]))
        # the loss sees every candidate at full resolution
        high = F.interpolate(out.low_res_multimasks.float(), size=(s, s), mode="bilinear", align_corners=False)
        steps.append((high, out.ious, out.object_score_logits))
    return multistep_loss(steps, target, num_objects, weights), out
