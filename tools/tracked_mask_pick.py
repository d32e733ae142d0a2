"""How well the IoU head picks among the three masks on tracked frames, on held-out videos.

    samstream synth /tmp/heldout --seeds 1000000:1000060
    .venv/bin/python tools/tracked_mask_pick.py --data /tmp/heldout --videos 20 \
        > results/default-model/tracked-pick.json

Each object of the first --videos sequences is tracked alone from one click on frame 0 (the `click1`
protocol). On every later frame where the object is visible, the decoder's three candidate masks are
upsampled to the frame and scored against the ground truth: J of the mask the model keeps (highest
predicted IoU) against J of the best of the three. The gap is what a perfect IoU head would add per frame
(ignoring that a better mask also makes a better memory).
"""
from __future__ import annotations

import argparse
import json

import numpy as np
import torch
import torch.nn.functional as F


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="a DAVIS-layout folder, e.g. written by `samstream synth`")
    p.add_argument("--weights", default=None, help="default: the embedded model")
    p.add_argument("--videos", type=int, default=20, help="the first N sequences")
    args = p.parse_args()
    torch.set_num_threads(2)
    import samstream
    from samstream.eval.dataset import read_labels, resolve_mask_root
    from samstream.eval.metrics import jaccard
    from samstream.eval.vos_run import images_root, prompt_object
    from samstream.io.folders import list_subdirs

    model = samstream.load_model(args.weights)
    decode = model.forward_sam_heads
    tracked = []  # (candidate logits (1, 3, L, L), predicted IoUs (1, 3)) of each tracked frame, in order

    def recording(embed, high_res, points=None, mask_inputs=None, multimask_output=False):
        out = decode(embed, high_res, points, mask_inputs, multimask_output)
        if points is None and mask_inputs is None:  # a tracked frame: no prompt
            tracked.append((out.low_res_multimasks.float(), out.ious.float()))
        return out

    model.forward_sam_heads = recording
    ann, imgs = resolve_mask_root(args.data), images_root(args.data)
    seqs = list_subdirs(ann)[: args.videos]
    picked, best = [], []
    for seq in seqs:
        frames = sorted((imgs / seq).iterdir())
        gts = [read_labels(ann / seq / f"{f.stem}.png") for f in frames]
        for obj in (int(i) for i in np.unique(gts[0]) if i not in (0, 255)):
            tracked.clear()
            with samstream.VideoPredictor(model, [str(f) for f in frames], progress=False) as vp:
                prompt_object(vp, obj, gts[0] == obj, "click1")
                for _ in vp.propagate(0, "forward"):
                    pass
            for t, (masks, ious) in enumerate(tracked, start=1):
                gt = gts[t] == obj
                if not gt.any() or masks.shape[1] < 3:
                    continue
                up = F.interpolate(masks, size=gt.shape, mode="bilinear", align_corners=False)[0] > 0
                js = [jaccard(gt, m.numpy()) for m in up]
                picked.append(js[int(ious[0].argmax())])
                best.append(max(js))
    picked, best = np.array(picked), np.array(best)
    print(json.dumps({"weights": args.weights or "embedded", "sequences": len(seqs),
                      "tracked_visible_frames": len(picked), "j_picked": float(picked.mean()),
                      "j_best_of_3": float(best.mean()),
                      "frames_gap_over_0.1": float((best - picked > 0.1).mean())}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
