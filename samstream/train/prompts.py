"""Prompt simulation for training (SAM2Train.prepare_prompt_inputs / corrective sampling).

All randomness comes from the numpy Generator passed in. Coordinates are (x, y) in model-input pixels;
labels follow SAM: 1 positive click, 0 negative click, 2/3 box corners.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import PromptConfig


@dataclass
class ClipPromptPlan:
    use_points: bool
    init_cond_frames: list[int]  # first is always 0
    frames_to_correct: list[int]  # empty in mask mode
    box_frames: list[int]  # conditioning frames that get a box (point mode)


def plan_clip(rng: np.random.Generator, num_frames: int, cfg: PromptConfig | None = None) -> ClipPromptPlan:
    """Which frames are prompted and how. Images (num_frames == 1) always get point input on frame 0."""
    cfg = cfg or PromptConfig()
    if num_frames < 1:
        raise ValueError(f"a clip needs at least one frame, got {num_frames}")
    if num_frames == 1:
        box = [0] if rng.random() < cfg.prob_box_input else []
        return ClipPromptPlan(True, [0], [0], box)
    use_points = bool(rng.random() < cfg.prob_point_input)
    n_cond = int(rng.integers(1, cfg.num_init_cond_frames + 1)) if cfg.rand_init_cond_frames \
        else cfg.num_init_cond_frames
    # A mask prompt is taken as its frame's output (no prediction to train): keep at least one frame to track
    # from it, else a clip of all mask-prompted frames has no gradient (e.g. 2 frames, 2 conditioning frames).
    # SAM 2 never meets this with its 8-frame clips; only draws that could not train change.
    n_cond = min(n_cond, num_frames if use_points else num_frames - 1)
    cond = [0] + sorted(int(t) for t in rng.choice(np.arange(1, num_frames), n_cond - 1, replace=False))
    if not use_points:
        return ClipPromptPlan(False, cond, [], [])
    box = [t for t in cond if rng.random() < cfg.prob_box_input]
    n_corr = int(rng.integers(n_cond, max(n_cond, cfg.num_frames_to_correct) + 1)) if cfg.rand_frames_to_correct \
        else max(n_cond, cfg.num_frames_to_correct)
    rest = [t for t in range(num_frames) if t not in cond]
    extra = sorted(int(t) for t in rng.choice(rest, min(n_corr - n_cond, len(rest)), replace=False)) if rest else []
    return ClipPromptPlan(True, cond, sorted(cond + extra), box)


def noisy_box(rng: np.random.Generator, mask: np.ndarray, cfg: PromptConfig | None = None) -> np.ndarray:
    """Box (x0, y0, x1, y1) of mask (H, W), each coordinate jittered by U(-1,1) * min(0.1 * side, 20 px),
    clamped to the image."""
    cfg = cfg or PromptConfig()
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        raise ValueError("cannot make a box prompt from an empty mask")
    h, w = mask.shape
    box = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32)
    bw, bh = box[2] - box[0], box[3] - box[1]
    noise = np.minimum(np.array([bw, bh, bw, bh]) * cfg.box_noise, cfg.box_noise_max_px)
    box = box + rng.uniform(-1, 1, 4) * noise
    return np.clip(box, 0, [w, h, w, h]).astype(np.float32)


def _uniform_pixel(rng: np.random.Generator, region: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(region)
    i = int(rng.integers(len(xs)))
    return np.array([xs[i] + 0.5, ys[i] + 0.5], np.float32)  # pixel centre


def initial_prompt(rng: np.random.Generator, mask: np.ndarray, use_box: bool,
                   cfg: PromptConfig | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Points (N, 2) and labels (N,) for a conditioning frame: a noisy box (2 corners, labels 2/3) or
    one positive click uniformly inside the mask."""
    if use_box:
        return noisy_box(rng, mask, cfg).reshape(2, 2), np.array([2, 3], np.int32)
    if not mask.any():
        raise ValueError("cannot click inside an empty mask")
    return _uniform_pixel(rng, mask)[None], np.array([1], np.int32)


def correction_click(rng: np.random.Generator, pred: np.ndarray, gt: np.ndarray,
                     prob_from_gt: float = 0.1) -> tuple[np.ndarray, int]:
    """One click (x, y), label from the error of pred (H, W) bool against gt (H, W) bool.

    Uniform over all error pixels: a false negative gives a positive click, a false positive a negative one.
    With prob_from_gt the prediction is treated as empty (the click comes from the GT). A perfect
    prediction gets a negative click on the background.
    """
    if rng.random() < prob_from_gt:
        pred = np.zeros_like(pred)
    fn, fp = gt & ~pred, pred & ~gt
    err = fn | fp
    if not err.any():
        bg = ~gt
        if not bg.any():  # the object fills the frame: nothing to contradict, click inside it
            return _uniform_pixel(rng, gt), 1
        return _uniform_pixel(rng, bg), 0
    xy = _uniform_pixel(rng, err)
    return xy, int(fn[int(xy[1]), int(xy[0])])
