"""Calibrate the automatic mask generator's thresholds for a model trained here (the embedded default model).

    .venv/bin/python tools/calibrate_generator.py --out results/default-model/generator-calibration.json

Meta's thresholds (predicted IoU > 0.8, stability >= 0.95) suit Meta's models; a model with a differently
calibrated IoU head or softer mask edges keeps almost nothing at them. This runs the generator on frame 0 of
synthetic videos never used in training (seeds 3,000,000 on, not the evaluation seeds), with every pair of
thresholds on a grid, and measures the recall of the annotated objects (a mask with IoU >= 0.5) and the
masks kept per frame. It picks the strictest pair (highest IoU threshold, then stability) whose recall is
within 5 % of the recall with no thresholds at all: the model's unsure masks go, the objects stay.
"""
from __future__ import annotations

import argparse
import json
import sys

import torch

IOU_GRID = (0.0, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
STABILITY_GRID = (0.0, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", default=None, help="default: the embedded model")
    p.add_argument("--videos", type=int, default=20)
    p.add_argument("--points-per-side", type=int, default=16)
    p.add_argument("--out", default=None)
    args = p.parse_args()
    torch.set_num_threads(2)
    import samstream
    from samstream.amg.generator import MaskGenerator
    from samstream.eval.metrics import jaccard
    from samstream.train.synthetic import generate_video

    model = samstream.load_model(args.weights)
    frames = []
    for seed in range(3_000_000, 3_000_000 + args.videos):
        vid = generate_video(seed)
        gts = [vid.labels[0] == o for o in vid.object_ids if (vid.labels[0] == o).any()]
        frames.append((vid.frames[0], gts))
    table = []
    for t_iou in IOU_GRID:
        for t_stab in STABILITY_GRID:
            gen = MaskGenerator(model, points_per_side=args.points_per_side, pred_iou_thresh=t_iou,
                                stability_score_thresh=t_stab)
            found = total = kept = 0
            for image, gts in frames:
                masks = [r["segmentation"] for r in gen.generate(image)]
                kept += len(masks)
                for gt in gts:
                    total += 1
                    found += any(jaccard(gt, m) >= 0.5 for m in masks)
            table.append({"pred_iou_thresh": t_iou, "stability_score_thresh": t_stab, "recall": found / total,
                          "masks_per_frame": kept / len(frames)})
            print(json.dumps(table[-1]), file=sys.stderr, flush=True)
    base = max(r["recall"] for r in table if r["pred_iou_thresh"] == 0 and r["stability_score_thresh"] == 0)
    ok = [r for r in table if r["recall"] >= 0.95 * base]
    pick = max(ok, key=lambda r: (r["pred_iou_thresh"], r["stability_score_thresh"]))
    out = {"weights": args.weights or "embedded", "videos": [3_000_000, 3_000_000 + args.videos - 1],
           "points_per_side": args.points_per_side, "recall_without_thresholds": base, "picked": pick,
           "grid": table}
    text = json.dumps(out, indent=1)
    if args.out:
        from samstream.io.atomic import atomic_write_text

        atomic_write_text(args.out, text + "\n")
    print(json.dumps(pick))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
