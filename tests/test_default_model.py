"""The embedded default model: it loads with the recipe's config and tracks held-out synthetic videos.

Skipped only when samstream/weights/samstream-default.safetensors is missing. The videos come from
seeds never used in training (training: 0..11,999; these: HELDOUT_SEED_START + 10_000 + k), one click on
frame 0 for object 1 (its interior point farthest from the boundary, the `click1` protocol).
A model with broken, random or unloaded weights scores far below the threshold.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import samstream
from samstream.eval.clicks import first_click
from samstream.eval.metrics import jaccard
from samstream.load import DEFAULT_MODEL_PATH
from samstream.train.recipe import HELDOUT_SEED_START, default_model_config, release_config
from samstream.train.synthetic import SynthConfig, generate_video

DEMO = Path(__file__).resolve().parents[1] / "samstream" / "assets" / "demo.mp4"
pytestmark = pytest.mark.skipif(not DEFAULT_MODEL_PATH.is_file(),
                                reason=f"no embedded default model at {DEFAULT_MODEL_PATH}")

# In these three videos object 1 is fully occluded for a few frames (1010000), always visible (1010001), and
# leaves the frame and comes back (1010002): one of each case the README's figures cover.
SEEDS = [HELDOUT_SEED_START + 10_000 + k for k in range(3)]
MIN_MEAN_J = 0.3  # the shipped model: 0.69 (0.49 / 0.93 / 0.65); random or unloaded weights: about 0
MIN_VISIBLE_J = 0.75  # the always-visible object of seed 1010001: the shipped model 0.93
# the README demo's ellipse after its occlusion (its last 25 visible frames): 0.74 with the release settings'
# 4 object pointers, 0.17 with SAM 2's 16
MIN_DEMO_AFTER_OCCLUSION_J = 0.5
MIN_EDGE_REFINE_GAIN = 0.008  # the release's edge refinement on the always-visible object: +0.016 mean J
# held-out synth1000043: object 1 slips behind object 3; tracked with the others (as `eval vos` does), its J over
# the video with the release's non-overlapping memories is 0.86, 0.35 without them
MIN_COVERED_OBJECT_J = 0.5
MIN_GENERATOR_RECALL = 0.6  # objects found on frame 0 of 3 held-out videos: the shipped model 9 of 9; 0 at 0.8 / 0.95


@pytest.fixture(scope="module")
def model():
    return samstream.load_model()  # no argument: the embedded file


def test_loads_the_embedded_file_with_the_recipe_config(model):
    assert model.cfg == release_config(default_model_config()).with_postprocessing(True)
    assert not model.training
    params = dict(model.named_parameters())
    assert all(torch.isfinite(p).all() for p in params.values())


def track_object1(model, seed: int, **session) -> list[float]:
    """J per frame (frames 1..T-1; frame 0 holds the prompt) of object 1 tracked from one click on frame 0."""
    vid = generate_video(seed)
    gt = vid.labels == 1
    click = first_click(gt[0])
    with samstream.VideoPredictor(model, list(vid.frames), progress=False, **session) as vp:
        vp.add_points(0, 1, [[click.x, click.y]], [1])
        return [jaccard(gt[r.frame_idx], r.masks[0]) for r in vp.propagate(0, "forward") if r.frame_idx > 0]


def test_tracks_object_1_of_heldout_videos_from_one_click(model):
    per_video = {seed: float(np.mean(track_object1(model, seed))) for seed in SEEDS}
    mean_j = float(np.mean(list(per_video.values())))
    assert mean_j >= MIN_MEAN_J, f"mean J {mean_j:.3f} < {MIN_MEAN_J} (per seed: {per_video})"
    assert per_video[SEEDS[1]] >= MIN_VISIBLE_J, f"always-visible object: J {per_video[SEEDS[1]]:.3f} < {MIN_VISIBLE_J}"


def test_the_edge_refinement_is_an_inference_default_of_the_file():
    """The embedded file keeps its edge refinement as inference defaults beside the config, not in it."""
    import json

    from safetensors import safe_open

    from samstream.checkpoint import CONFIG_METADATA_KEY, INFERENCE_METADATA_KEY
    from samstream.train.recipe import RELEASE_INFERENCE_DEFAULTS

    with safe_open(str(DEFAULT_MODEL_PATH), framework="pt") as f:
        meta = f.metadata()
    assert not any(k.startswith("edge_refine") for k in json.loads(meta[CONFIG_METADATA_KEY]))
    stored = json.loads(meta[INFERENCE_METADATA_KEY])
    assert {k: stored[k] for k in RELEASE_INFERENCE_DEFAULTS} == RELEASE_INFERENCE_DEFAULTS


def test_edge_refinement_sharpens_the_masks(model):
    """The release's edge refinement (outputs only): the always-visible object of seed 1010001 with it against
    without it (edge_refine_radius=0), frame by frame. The shipped model: mean J 0.949 against 0.932, higher on
    all 23 frames."""
    assert model.inference_defaults.edge_refine_radius > 0
    refined, plain = track_object1(model, SEEDS[1]), track_object1(model, SEEDS[1], edge_refine_radius=0)
    gain = float(np.mean(refined) - np.mean(plain))
    assert gain >= MIN_EDGE_REFINE_GAIN, f"mean J {np.mean(refined):.3f} refined, {np.mean(plain):.3f} plain"
    assert sum(r < p for r, p in zip(refined, plain)) <= 2, (np.round(refined, 3), np.round(plain, 3))


def demo_object1_j(model) -> list[float]:
    """J on each frame where object 1 of the demo clip is visible, tracked from its first-frame click (demo.json)."""
    facts = json.loads(DEMO.with_suffix(".json").read_text())
    gt = generate_video(facts["seed"], SynthConfig(**facts["config"])).labels == 1  # (T, H, W)
    with samstream.VideoPredictor(model, str(DEMO), progress=False) as vp:
        vp.add_points(0, 1, [list(facts["first_frame_clicks"]["1"])], [1])
        return [round(jaccard(gt[r.frame_idx], r.masks[0]), 3) for r in vp.propagate(0, "forward")
                if gt[r.frame_idx].any()]


def test_finds_the_demo_object_again_after_its_occlusion(model):
    """The README's first command: the ellipse of samstream/assets/demo.mp4, clicked on frame 0, is hidden on
    frames 23-31; after it comes back the model must mark the whole of it, not only a part (with SAM 2's 16 object
    pointers these weights kept 4-38 % of it)."""
    js = demo_object1_j(model)  # visible frames
    after = float(np.mean(js[-25:]))
    assert after >= MIN_DEMO_AFTER_OCCLUSION_J, f"mean J {after:.3f} over the last 25 visible frames"


def test_non_overlapping_memories_keep_a_covered_object(model):
    """All objects of a held-out video, each from one click on frame 0: the object that slips behind another is
    found again, where with overlapping memories it stays lost (it remembers the coverer as itself)."""
    vid = generate_video(HELDOUT_SEED_START + 43)
    ids = [int(i) for i in np.unique(vid.labels[0]) if i != 0]
    with samstream.VideoPredictor(model, list(vid.frames), progress=False) as vp:
        for i in ids:
            click = first_click(vid.labels[0] == i)
            vp.add_points(0, i, [[click.x, click.y]], [1])
        j = [jaccard(vid.labels[r.frame_idx] == 1, r.label_map() == 1) for r in vp.propagate(0, "forward")
             if r.frame_idx > 0]
    assert model.cfg.non_overlap_masks_for_mem_enc
    assert float(np.mean(j)) >= MIN_COVERED_OBJECT_J, f"object 1: mean J {np.mean(j):.3f} (per frame {np.round(j, 2)})"


def test_generator_uses_the_models_calibrated_thresholds(model):
    """segment-all with the embedded model: its calibrated thresholds (MODEL_THRESHOLDS) find the objects of a
    held-out frame, where Meta's 0.8 / 0.95 keep too few masks to find them; explicit options still win."""
    from samstream.amg.generator import MODEL_THRESHOLDS, MaskGenerator, model_defaults

    assert model_defaults(model) == MODEL_THRESHOLDS["samstream-default"]
    assert MaskGenerator.for_model(model, pred_iou_thresh=0.9).pred_iou_thresh == 0.9
    vids = [generate_video(HELDOUT_SEED_START + 20_000 + k) for k in range(3)]

    def recall(gen):
        found = total = 0
        for vid in vids:
            masks = [r["segmentation"] for r in gen.generate(vid.frames[0])]
            for obj in vid.object_ids:
                gt = vid.labels[0] == obj
                total += 1
                found += any(jaccard(gt, m) >= 0.5 for m in masks)
        return found / total

    calibrated = recall(MaskGenerator.for_model(model, points_per_side=16))
    official = recall(MaskGenerator(model, points_per_side=16))
    assert calibrated >= MIN_GENERATOR_RECALL, calibrated
    assert official < calibrated, (official, calibrated)


def test_segment_all_command_uses_the_calibrated_thresholds(tmp_path):
    """`samstream segment-all` with no --model and no thresholds: the embedded model's own thresholds apply
    (at Meta's it keeps no mask on this frame), and its masks lie on the objects."""
    from PIL import Image

    from samstream.cli import main
    from samstream.io import decode_rle, read_coco_json

    vid = generate_video(HELDOUT_SEED_START + 20_000)
    Image.fromarray(vid.frames[0]).save(tmp_path / "frame.png")
    assert main(["segment-all", str(tmp_path / "frame.png"), "-o", str(tmp_path / "out"),
                 "--points-per-side", "16", "--quiet"]) == 0
    masks = [decode_rle(a["segmentation"]) for a in read_coco_json(tmp_path / "out" / "annotations.json").annotations]
    assert masks, "segment-all kept no mask"
    assert all(any(jaccard(vid.labels[0] == o, m) >= 0.5 for m in masks) for o in vid.object_ids)
