"""Prompt simulation: the documented mix of prompt kinds and frames, boxes, corrective clicks."""
from __future__ import annotations

import numpy as np
import pytest

from samstream.train.prompts import (
    PromptConfig,
    correction_click,
    initial_prompt,
    noisy_box,
    plan_clip,
)


def test_clip_prompt_mix():
    rng = np.random.default_rng(0)
    plans = [plan_clip(rng, 8) for _ in range(4000)]
    pts = [p for p in plans if p.use_points]
    assert abs(len(pts) / 4000 - 0.5) < 0.03  # prob_to_use_pt_input 0.5
    assert all(p.init_cond_frames[0] == 0 for p in plans)
    n_cond = np.array([len(p.init_cond_frames) for p in plans])
    assert set(n_cond) == {1, 2} and abs((n_cond == 2).mean() - 0.5) < 0.03
    # a box on each conditioning frame with prob 0.5 (0.25 of all initial prompts)
    cond_frames = sum(len(p.init_cond_frames) for p in pts)
    assert abs(sum(len(p.box_frames) for p in pts) / cond_frames - 0.5) < 0.03
    all_frames = sum(len(p.init_cond_frames) for p in plans)
    assert abs(sum(len(p.box_frames) for p in plans) / all_frames - 0.25) < 0.03
    # correction frames: the conditioning frames plus extra ones, up to 2 in all; none in mask mode
    for p in plans:
        if p.use_points:
            assert set(p.init_cond_frames) <= set(p.frames_to_correct) and len(p.frames_to_correct) <= 2
        else:
            assert p.frames_to_correct == [] and p.box_frames == []
    extra = [len(p.frames_to_correct) - len(p.init_cond_frames) for p in pts]
    one_cond = [e for p, e in zip(pts, extra) if len(p.init_cond_frames) == 1]
    assert abs(np.mean(one_cond) - 0.5) < 0.05  # uniform in [1, 2] frames to correct
    second = [p.init_cond_frames[1] for p in plans if len(p.init_cond_frames) == 2]
    assert set(second) == set(range(1, 8))  # drawn from all other frames


def test_images_always_get_points_and_one_corrected_frame():
    rng = np.random.default_rng(1)
    plans = [plan_clip(rng, 1) for _ in range(2000)]
    assert all(p.use_points and p.init_cond_frames == [0] and p.frames_to_correct == [0] for p in plans)
    assert abs(np.mean([bool(p.box_frames) for p in plans]) - 0.5) < 0.04


def test_initial_click_inside_mask_and_box_labels():
    rng = np.random.default_rng(2)
    mask = np.zeros((50, 60), bool)
    mask[10:20, 30:45] = True
    for _ in range(200):
        xy, lab = initial_prompt(rng, mask, use_box=False)
        assert lab.tolist() == [1] and mask[int(xy[0, 1]), int(xy[0, 0])]
    xy, lab = initial_prompt(rng, mask, use_box=True)
    assert xy.shape == (2, 2) and lab.tolist() == [2, 3]
    with pytest.raises(ValueError, match="empty mask"):
        initial_prompt(rng, np.zeros((5, 5), bool), use_box=False)


def test_box_noise_bounds():
    rng = np.random.default_rng(3)
    mask = np.zeros((400, 400), bool)
    mask[100:300, 150:170] = True  # box (150, 100, 170, 300): width 20 -> x noise <= 2; height 200 -> y noise <= 20
    boxes = np.stack([noisy_box(rng, mask) for _ in range(2000)])
    dev = np.abs(boxes - [150, 100, 170, 300]).max(0)
    assert dev[0] <= 2 and dev[2] <= 2 and dev[1] <= 20 and dev[3] <= 20
    assert dev[0] > 1.8 and dev[1] > 18  # the jitter really spans its range
    edge = np.zeros((100, 100), bool)
    edge[0:10, 90:100] = True
    b = np.stack([noisy_box(rng, edge) for _ in range(200)])
    assert b.min() >= 0 and b[:, [0, 2]].max() <= 100 and b[:, [1, 3]].max() <= 100


def test_correction_clicks_from_error_regions():
    rng = np.random.default_rng(4)
    gt = np.zeros((20, 20), bool)
    gt[:, :10] = True
    pred = np.zeros((20, 20), bool)
    pred[:, 5:13] = True  # FN: columns 0-4 (100 px); FP: columns 10-12 (60 px)
    labels = []
    for _ in range(4000):
        xy, lab = correction_click(rng, pred, gt, prob_from_gt=0.0)
        x, y = int(xy[0]), int(xy[1])
        assert (lab == 1 and gt[y, x] and not pred[y, x]) or (lab == 0 and pred[y, x] and not gt[y, x])
        labels.append(lab)
    assert abs(np.mean(labels) - 100 / 160) < 0.03  # uniform over all error pixels


def test_correction_click_from_gt_and_perfect_prediction():
    rng = np.random.default_rng(5)
    gt = np.zeros((20, 20), bool)
    gt[5:10, 5:10] = True
    # pred == gt: no error -> negative background click, unless sampled from GT (prob 0.1) -> positive inside
    labs = []
    for _ in range(3000):
        xy, lab = correction_click(rng, gt.copy(), gt, prob_from_gt=0.1)
        assert gt[int(xy[1]), int(xy[0])] == bool(lab)
        labs.append(lab)
    assert abs(np.mean(labs) - 0.1) < 0.02


def test_first_frame_only_plan():
    """init 1 / correct 1 (the default model's 'hard' stage): every clip is prompted on frame 0 alone and the
    other frames are tracked from memory only, as when a user clicks once and propagates."""
    cfg = PromptConfig(num_init_cond_frames=1, num_frames_to_correct=1)
    rng = np.random.default_rng(2)
    plans = [plan_clip(rng, 8, cfg) for _ in range(500)]
    assert all(p.init_cond_frames == [0] for p in plans)
    assert all(p.frames_to_correct == ([0] if p.use_points else []) for p in plans)
    assert any(p.use_points for p in plans) and not all(p.use_points for p in plans)


@pytest.mark.parametrize("frames, n_init", [(2, 2), (3, 3), (3, 5)])
def test_mask_prompted_clips_keep_a_frame_to_track(frames, n_init):
    """A mask prompt is its frame's output: a mask-mode plan never makes every frame a conditioning frame
    (nothing would be trained); point mode may."""
    rng = np.random.default_rng(0)
    plans = [plan_clip(rng, frames, PromptConfig(num_init_cond_frames=n_init)) for _ in range(400)]
    masks = [p for p in plans if not p.use_points]
    assert masks and all(len(p.init_cond_frames) < frames for p in masks)
    assert max(len(p.init_cond_frames) for p in masks) == frames - 1
    assert any(len(p.init_cond_frames) == frames for p in plans if p.use_points)
