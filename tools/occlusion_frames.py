"""Per-frame view of the held-out objects of one event subset, tracked from one click on frame 0.

    samstream synth /tmp/heldout --seeds 1000000:1000060
    .venv/bin/python tools/occlusion_frames.py --data /tmp/heldout > results/default-model/occlusion-frames.txt

One line per object: its mean J over the frames `eval vos` scores (first and last skipped), then per frame
either J (object visible) or "H<pixels marked>" (object hidden), each followed by the sign of the object
score (+ visible, - not). It shows where tracking fails: following the occluder, marking pixels while the
object is hidden, not finding it again.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="a folder written by `samstream synth` (with events.json)")
    p.add_argument("--weights", default=None, help="default: the embedded model")
    p.add_argument("--subset", default="occlusion", choices=("occlusion", "leave_return"))
    args = p.parse_args()
    torch.set_num_threads(2)
    import samstream
    from samstream.eval.dataset import resolve_mask_root
    from samstream.eval.metrics import jaccard
    from samstream.eval.vos_run import images_root, prompt_object
    from samstream.io import read_label_png

    root = Path(args.data)
    events = json.loads((root / "events.json").read_text())
    imgs, anns = images_root(root), resolve_mask_root(root)
    model = samstream.load_model(args.weights)
    means = []
    for seq, ev in events.items():
        for obj in ev[args.subset]:
            frames = sorted((imgs / seq).glob("*.jpg"))
            gts = [read_label_png(anns / seq / (f.stem + ".png"))[0] == obj for f in frames]
            row, js = [], []
            with samstream.VideoPredictor(model, [str(f) for f in frames], progress=False) as vp:
                prompt_object(vp, obj, gts[0], "click1")
                for r in vp.propagate(0, "forward"):
                    m, g, s = r.logits[0] > 0, gts[r.frame_idx], "+" if r.scores[0] > 0 else "-"
                    js.append(jaccard(g, m))
                    row.append(f"{js[-1]:.2f}{s}" if g.any() else f"H{int(m.sum())}{s}")
            means.append(float(np.mean(js[1:-1])))
            print(f"{seq} object {obj} mean J {means[-1]:.2f}: {' '.join(row)}", flush=True)
    print(f"mean J over {len(means)} objects: {np.mean(means):.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
