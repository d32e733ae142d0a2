"""`samstream eval vos` of one model under inference options that need no retraining, side by side.

    samstream synth /tmp/val --seeds 2000000:2000060
    .venv/bin/python tools/eval_options.py --data /tmp/val --work /tmp/eval-options \
        --out results/default-model/inference-options.json

Each option is a set of SAM2Config overrides applied to the loaded model (the object pointers a frame reads,
the memory stride of SAM 2's evaluation, tracking with the single-mask output, another input size, the edge
refinement of the outputs), Meta's builder post-processing, or a VideoPredictor setting (mirror test-time
augmentation, output clean-up).
The model tracks every object of --data from one click on frame 0 (`click1`), as `eval vos` does, and is
scored with the event subsets. Masks go to WORK/<option>/, with its results.json (per object, for
`tools/compare_runs.py`); an option whose folder is complete (a `done` file) is only scored again, so an
interrupted run resumes. An existing --out file of the same data and weights keeps the options that are not run
again (--only adds to it).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# name -> (SAM2Config overrides, Meta's post-processing on, VideoPredictor keyword arguments)
OPTIONS = {
    "as shipped": ({}, False, {}),
    # the release's 4 object pointers (recipe.RELEASE_SETTINGS) against SAM 2's 16 and others
    "object pointers 16 (SAM 2's)": ({"max_obj_ptrs_in_encoder": 16}, False, {}),
    "object pointers 8": ({"max_obj_ptrs_in_encoder": 8}, False, {}),
    "object pointers 2": ({"max_obj_ptrs_in_encoder": 2}, False, {}),
    # each object's mask regions of fewer than N pixels (video resolution) dropped from the outputs
    "regions < 10 px dropped": ({}, False, {"min_region_area": 10}),
    "regions < 21 px dropped": ({}, False, {"min_region_area": 21}),
    "regions < 50 px dropped": ({}, False, {"min_region_area": 50}),
    # the same after the non-overlap constraint: also the slivers of an object that another one covers
    "regions < 21 px dropped, non-overlap": ({}, False, {"min_region_area": 21, "non_overlap_masks": True}),
    # SAM 2's option: each frame's objects' masks made disjoint before they are encoded into memory
    "non-overlapping memories": ({"non_overlap_masks_for_mem_enc": True}, False, {}),
    # output masks snapped to the frame's edges by a guided filter (radius in low-res mask pixels, eps); the
    # release's is 0.75, so "no edge refinement" is the release before it
    "no edge refinement": ({"edge_refine_radius": 0.0}, False, {}),
    "edge refine 0.5": ({"edge_refine_radius": 0.5, "edge_refine_eps": 1e-3}, False, {}),
    "edge refine 0.75": ({"edge_refine_radius": 0.75, "edge_refine_eps": 1e-3}, False, {}),
    "edge refine 1": ({"edge_refine_radius": 1.0, "edge_refine_eps": 1e-3}, False, {}),
    "memory stride 2": ({"memory_temporal_stride_for_eval": 2}, False, {}),
    "memory stride 3": ({"memory_temporal_stride_for_eval": 3}, False, {}),
    "post-processing (Meta's builders)": ({}, True, {}),
    "single mask on tracked frames": ({"multimask_min_pt_num": 1}, False, {}),
    "input 384 px": ({"image_size": 384}, False, {}),
    "mirror (test-time augmentation)": ({}, False, {"mirror": True}),
}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="a folder written by `samstream synth` (with events.json)")
    p.add_argument("--weights", default=None, help="default: the embedded model")
    p.add_argument("--work", required=True, help="folder for the masks of each option")
    p.add_argument("--only", nargs="+", choices=list(OPTIONS), help="these options only")
    p.add_argument("--out", help="JSON file (default: stdout)")
    args = p.parse_args()

    from samstream.checkpoint import load_model
    from samstream.eval.events import add_subsets
    from samstream.eval.report import write_json
    from samstream.eval.vos import evaluate_vos
    from samstream.eval.vos_run import run_vos
    from samstream.io.atomic import atomic_write_text

    report = {"what": "tools/eval_options.py: eval vos --prompt click1 of one model under inference options",
              "data": args.data, "weights": args.weights or "embedded default model", "options": {}}
    if args.out and Path(args.out).is_file():
        old = json.loads(Path(args.out).read_text())
        if (old.get("data"), old.get("weights")) == (report["data"], report["weights"]):
            report["options"] = old["options"]
    for name in args.only or OPTIONS:
        overrides, post, session = OPTIONS[name]
        base = load_model(args.weights).cfg
        model = load_model(args.weights, postprocessing=post, config=dataclasses.replace(base, **overrides))
        masks = Path(args.work) / name.replace(" ", "_").replace("'", "")
        if not (masks / "done").is_file():
            run_vos(model, args.data, masks, prompt="click1", progress=True, **session)
            (masks / "done").touch()
        res = add_subsets(evaluate_vos(args.data, masks, progress=False), Path(args.data) / "events.json")
        d = res.to_dict(per_frame=False)
        write_json(res, masks / "results.json", per_frame=False)
        row = {"overrides": overrides, "postprocessing": post, **session, "J&F": round(d["J&F"], 4)}
        row.update({k: round(v["J&F"], 4) for k, v in d["subsets"].items()})
        report["options"][name] = row
        print(name, row, file=sys.stderr, flush=True)
    text = json.dumps(report, indent=1) + "\n"
    if args.out:
        atomic_write_text(args.out, text)
    else:
        print(text, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
