"""Diagnostics of a default-config model quoted in the README and issue notes; writes JSON to stdout or --out.

    .venv/bin/python tools/default_model_diagnostics.py --out results/default-model/diagnostics.json

* click1_first_frame: one click (the interior point farthest from the boundary) on frame 0 of held-out
  synthetic videos, three masks: mean IoU of the mask the model picks (highest predicted IoU), of the best
  of the three, and the mean predicted IoU of the picked one.
* test_videos_j: mean J per video of object 1 tracked from one click, on the videos of
  tests/test_default_model.py.
* demo_object1_j: per frame, J of object 1 of samstream/assets/demo.mp4 tracked from the README's click
  (179, 40); on frames where the object is hidden, "hidden" or "hidden, N px marked".
  demo_object1_on_object / demo_object1_covered: on the frames where it is visible, the share of the marked
  pixels that lie on it and the share of it that is marked (a low J with a high first share: a part of it).
* demo_entering_object: object 3 of the demo enters from the right at frame 5; on the key frames 5, 10 and 15
  of `samstream track-all --key-every 5` (decoded from demo.mp4 as the command decodes them), the IoU with it of
  the best mask the generator keeps (its defaults for the model, as track-all runs it) and, among all its
  candidates (no thresholds, no NMS), the best one's IoU, predicted IoU and stability (see
  tests/test_amg_track_all.py::test_track_all_demo_entering_object).
* generator_objects_found: objects of frame 0 of the held-out videos of
  tests/test_default_model.py::test_generator_uses_the_models_calibrated_thresholds that segment-all finds
  (a mask with IoU >= 0.5), with the model's calibrated thresholds and with Meta's 0.8 / 0.95.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from samstream.eval.metrics import jaccard

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "samstream" / "assets" / "demo.mp4"


def click1_first_frame(model, seeds) -> dict:
    from samstream.eval.clicks import first_click
    from samstream.predictor import ImagePredictor
    from samstream.train.synthetic import generate_video

    pred = ImagePredictor(model)
    picked, best, score = [], [], []
    for seed in seeds:
        vid = generate_video(seed)
        pred.set_image(vid.frames[0])
        for obj in vid.object_ids:
            gt = vid.labels[0] == obj
            if not gt.any():
                continue
            c = first_click(gt)
            masks, scores, _ = pred.predict(points=[[c.x, c.y]], labels=[1], multimask_output=True)
            ious = [jaccard(gt, m) for m in masks]
            picked.append(ious[int(np.argmax(scores))])
            best.append(max(ious))
            score.append(float(scores.max()))
    return {"seeds": [seeds[0], seeds[-1]], "objects": len(picked), "iou_picked": float(np.mean(picked)),
            "iou_best_of_3": float(np.mean(best)), "predicted_iou_picked": float(np.mean(score))}


def demo_truth() -> tuple[dict, np.ndarray]:
    """The demo clip's facts (demo.json) and its ground-truth labels (T, H, W), re-generated from its seed."""
    from samstream.train.synthetic import SynthConfig, generate_video

    facts = json.loads((DEMO.with_suffix(".json")).read_text())
    return facts, generate_video(facts["seed"], SynthConfig(**facts["config"])).labels


def demo_object1(model) -> dict:
    from samstream import VideoPredictor

    facts, labels = demo_truth()
    gt = labels == 1
    out = {"demo_object1_j": [], "demo_object1_on_object": [], "demo_object1_covered": []}
    with VideoPredictor(model, str(DEMO), progress=False) as vp:
        vp.add_points(0, 1, [list(facts["first_frame_clicks"]["1"])], [1])
        for r in vp.propagate(0, "forward"):
            g, m = gt[r.frame_idx], r.masks[0]
            if not g.any():
                hidden = "hidden" if not m.any() else f"hidden, {int(m.sum())} px marked"
                for v in out.values():
                    v.append(hidden)
                continue
            hit = int((g & m).sum())
            out["demo_object1_j"].append(round(jaccard(g, m), 3))
            out["demo_object1_on_object"].append(round(hit / m.sum(), 3) if m.any() else None)
            out["demo_object1_covered"].append(round(hit / g.sum(), 3))
    return out


def demo_entering_object(model, key_frames=(5, 10, 15), obj: int = 3) -> dict:
    from samstream.amg.generator import MaskGenerator
    from samstream.amg.video import VIDEO_GENERATOR_DEFAULTS
    from samstream.video.sources import VideoFileSource

    gt = demo_truth()[1] == obj  # (T, H, W)
    kept = MaskGenerator.for_model(model, **VIDEO_GENERATOR_DEFAULTS)
    every = MaskGenerator.for_model(model, **VIDEO_GENERATOR_DEFAULTS, pred_iou_thresh=0.0,
                                    stability_score_thresh=0.0, box_nms_thresh=1.0)
    src = VideoFileSource(DEMO)
    out = {}
    try:
        for t in key_frames:
            frame = src.read(t)
            best_kept = max((jaccard(gt[t], r["segmentation"]) for r in kept.generate(frame)), default=0.0)
            cands = every.generate(frame)
            ious = [jaccard(gt[t], r["segmentation"]) for r in cands]
            i = int(np.argmax(ious))
            out[str(t)] = {"best_kept_iou": round(best_kept, 3), "best_candidate_iou": round(ious[i], 3),
                           "its_predicted_iou": round(cands[i]["predicted_iou"], 3),
                           "its_stability": round(cands[i]["stability_score"], 3), "candidates": len(cands)}
    finally:
        src.close()
    return {"object": obj, "thresholds": {"pred_iou_thresh": kept.pred_iou_thresh,
                                          "stability_score_thresh": kept.stability_score_thresh}, "key_frames": out}


def generator_objects_found(model, seeds) -> dict:
    from samstream.amg.generator import MaskGenerator
    from samstream.train.synthetic import generate_video

    vids = [generate_video(s) for s in seeds]
    out = {"seeds": [seeds[0], seeds[-1]], "objects": sum(len(v.object_ids) for v in vids)}
    for name, gen in (("calibrated", MaskGenerator.for_model(model, points_per_side=16)),
                      ("official", MaskGenerator(model, points_per_side=16))):
        found = 0
        for v in vids:
            masks = [r["segmentation"] for r in gen.generate(v.frames[0])]
            found += sum(any(jaccard(v.labels[0] == o, m) >= 0.5 for m in masks) for o in v.object_ids)
        out[name] = found
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", default=None, help="default: the embedded model")
    p.add_argument("--out", default=None)
    args = p.parse_args()
    torch.set_num_threads(1)
    sys.path.insert(0, str(ROOT / "tests"))
    import samstream
    from samstream.train.recipe import HELDOUT_SEED_START
    from test_default_model import SEEDS, track_object1

    model = samstream.load_model(args.weights)
    out = {"weights": args.weights or "embedded",
           "click1_first_frame": click1_first_frame(model, list(range(HELDOUT_SEED_START, HELDOUT_SEED_START + 15))),
           "test_videos_j": {str(s): float(np.mean(track_object1(model, s))) for s in SEEDS},
           **demo_object1(model),
           "demo_entering_object": demo_entering_object(model),
           "generator_objects_found": generator_objects_found(
               model, [HELDOUT_SEED_START + 20_000 + k for k in range(3)])}
    text = json.dumps(out, indent=1)
    if args.out:
        from samstream.io.atomic import atomic_write_text

        atomic_write_text(args.out, text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
