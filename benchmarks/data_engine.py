"""The data engine's loop, measured: annotate videos of one domain in the app, fine-tune on them, switch the app to
the fine-tuned model, and count the clicks a masklet of *other* videos of that domain needs, before and after.

    samstream synth /tmp/de-annotate --generator cutout --seeds 500000:500030
    samstream synth /tmp/de-test --generator cutout --seeds 1000000:1000012
    .venv/bin/python -m benchmarks.data_engine --annotate /tmp/de-annotate --test /tmp/de-test --steps 600

One real `samstream app` server process (`--model`, default the embedded model) on a data folder under --work
holding the frames of both sets (the ground truth stays with this script: the annotator is simulated, as in
benchmarks/annotation.py, whose video mode it runs: click the first frame, propagate, click the worst frame,
re-propagate, until every frame has J >= --target or its click budget is spent):

1. before: every object of the --test videos, with the starting model;
2. annotate: every object of the --annotate videos, in a project of its own (the masks the annotator accepted,
   which are the simulated annotator's, not the ground truth);
3. export that project as a training set (`samstream app export --format training`);
4. fine-tune the starting model on it (`samstream train`, 8-frame clips with memory, the embedded recipe's clip
   settings), into a folder below the app's data root;
5. switch the running app to the fine-tuned weights (POST /api/model, as the model picker does);
6. after: the --test videos again, in a fresh project.

The --test videos are never trained on, and nothing is chosen by their score. Raw results: --json, default
benchmarks/results/data-engine-<date>.json; --work keeps the library, the training set and the run.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import httpx

from benchmarks.annotation import annotate, find_videos, load_sequence, new_project, summarise
from benchmarks.app_long_video import RESULTS, ROOT, free_port, load, start_server

EMBEDDED = ROOT / "samstream" / "weights" / "samstream-default.safetensors"
# the embedded recipe's hard clips (8 frames with memory, strided, prompted on frame 0), with correction clicks on
# two tracked frames as well: in video mode the annotator corrects frames the model tracked, and a model trained
# to be corrected on its prompted frame only barely responds to clicks there
TRAIN_ARGS = ["--frames", "8", "--max-stride", "3", "--hard-clip-prob", "0.7", "--init-cond-frames", "1",
              "--frames-to-correct", "3", "--corrections", "3", "--max-objects", "3"]


def run(cmd: list[str], log: Path) -> None:
    """A samstream command in a subprocess, its output kept in `log`; a failure ends the benchmark with its tail."""
    with log.open("w") as f:
        rc = subprocess.call([sys.executable, "-m", "samstream", *cmd], cwd=ROOT, stdout=f, stderr=subprocess.STDOUT)
    if rc:
        raise SystemExit(f"samstream {' '.join(cmd[:2])} failed ({rc}):\n{log.read_text()[-2000:]}")


def switch_model(c: httpx.Client, name: str, timeout: float = 600) -> dict:
    job = c.post("/api/model", json={"name": name}).raise_for_status().json()
    deadline = time.monotonic() + timeout
    while job["state"] in ("downloading", "loading") and time.monotonic() < deadline:
        time.sleep(0.2)
        job = c.get("/api/model/job").raise_for_status().json()
    if job["state"] != "done":
        raise SystemExit(f"switching the app to {name} ended {job['state']}: {job.get('error')}")
    return job


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--annotate", type=Path, required=True, help="DAVIS-layout folder: the videos annotated and "
                                                                 "trained on")
    ap.add_argument("--test", type=Path, required=True, help="DAVIS-layout folder: other videos of the same domain")
    ap.add_argument("--model", default=None, help="starting checkpoint (default: the embedded model)")
    ap.add_argument("--steps", type=int, default=600, help="fine-tuning steps")
    ap.add_argument("--lr", type=float, default=5e-5, help="fine-tuning peak lr (all parameters)")
    ap.add_argument("--max-clicks", type=int, default=10, help="clicks allowed on one frame of one object")
    ap.add_argument("--target", type=float, default=0.9, help="the J every frame must reach")
    ap.add_argument("--seed", type=int, default=0, help="the fine-tune's seed")
    ap.add_argument("--work", type=Path, default=None, help="working folder (default: a new one under /tmp); "
                                                            "it keeps the app's data, the training set and the run")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("-q", "--quiet", action="store_true")
    args = ap.parse_args(argv)
    if args.annotate.resolve() == args.test.resolve():
        raise SystemExit("--annotate and --test must be different videos")
    work = args.work or Path(f"/tmp/data-engine-{datetime.now():%Y%m%d-%H%M%S}")
    work.mkdir(parents=True, exist_ok=True)
    library = work / "library"
    if library.exists():
        shutil.rmtree(library)
    sets = {}
    for name, root in (("annotate", args.annotate), ("test", args.test)):
        (library / name).mkdir(parents=True)
        sets[name] = {seq: load_sequence(root, seq, None, library / name) for seq in find_videos(root)}
    overlap = set(sets["annotate"]) & set(sets["test"])
    if overlap:
        raise SystemExit(f"sequences in both sets: {sorted(overlap)[:5]}")
    res = {"date": datetime.now().isoformat(timespec="seconds"), "cpus": os.cpu_count(), "load_before": load(),
           "annotate": str(args.annotate), "test": str(args.test), "model": args.model or "built-in",
           "steps": args.steps, "lr": args.lr, "train_args": TRAIN_ARGS, "max_clicks": args.max_clicks,
           "target": args.target, "sequences": {k: sorted(v) for k, v in sets.items()}}
    t0 = time.perf_counter()
    say = (lambda *a: None) if args.quiet else (lambda *a: print(*a, file=sys.stderr, flush=True))
    proc = start_server(library, port := free_port(), args.model)
    try:
        c = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=600)
        video = lambda project, name: annotate(c, project, sets[name], ["video"], args.target, args.max_clicks,
                                               args.quiet, folder=name)
        say("1/6 the test videos with the starting model")
        res["before"] = video(new_project(c, "test, before"), "test")
        say("2/6 annotating the videos to train on")
        engine = new_project(c, "data engine")
        res["annotated"] = video(engine, "annotate")
        say("3/6 exporting them as a training set")
        trainset = work / "trainset"
        shutil.rmtree(trainset, ignore_errors=True)
        run(["app", "export", "--data", str(library), "--project", str(engine), "-o", str(trainset)],
            work / "export.log")
        res["trainset_frames"] = sum(1 for _ in (trainset / "Annotations" / "480p").rglob("*.png"))
        say(f"4/6 fine-tuning for {args.steps} steps on {res['trainset_frames']} frames")
        run_dir = library / "models" / "data-engine"
        shutil.rmtree(run_dir, ignore_errors=True)
        t_train = time.perf_counter()
        run(["train", "--data", str(trainset), "--init", str(args.model or EMBEDDED), "--steps", str(args.steps),
             "--lr", str(args.lr), "--vision-lr", str(args.lr), "--warmup", str(max(1, args.steps // 20)),
             "--seed", str(args.seed), "--out", str(run_dir), "--quiet", *TRAIN_ARGS], work / "train.log")
        res["train_s"] = round(time.perf_counter() - t_train, 1)
        say("5/6 switching the app to the fine-tuned model")
        res["switched_to"] = switch_model(c, "models/data-engine/model.safetensors")["name"]
        say("6/6 the test videos with the fine-tuned model")
        res["after"] = video(new_project(c, "test, after"), "test")
    finally:
        proc.kill()
        proc.wait()
    res["load_after"] = load()
    res["wall_s"] = round(time.perf_counter() - t0, 1)
    res["summary"] = {k: summarise(res[k]) for k in ("before", "annotated", "after")}
    b, a = res["summary"]["before"], res["summary"]["after"]
    res["clicks_before_over_after"] = round(b["clicks_per_masklet"] / max(a["clicks_per_masklet"], 1e-9), 2)
    print(report(res))
    out = args.json or RESULTS / f"data-engine-{datetime.now():%Y-%m-%d-%H%M%S}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1) + "\n")
    return res


def report(res: dict) -> str:
    s = res["summary"]
    lines = [f"{len(res['sequences']['annotate'])} videos annotated and trained on ({res['trainset_frames']} frames, "
             f"{res['steps']} steps, {res['train_s']} s), {len(res['sequences']['test'])} test videos; target J >= "
             f"{res['target']}, <= {res['max_clicks']} clicks a frame",
             f"{'':22} {'masklets':>8} {'clicks/masklet':>15} {'median':>7} {'s/masklet':>10} {'J&F':>6} "
             f"{'at target':>9}"]
    for key, label in (("before", "test, starting model"), ("annotated", "annotated set"),
                       ("after", "test, fine-tuned")):
        r = s[key]
        lines.append(f"{label:22} {r['masklets']:8d} {r['clicks_per_masklet']:15.2f} {r['median_clicks']:7.1f} "
                     f"{r['seconds_per_masklet']:10.2f} {100 * r['J&F']:6.1f} {r['masklets_at_target']:9d}")
    lines.append(f"clicks per test masklet, before / after: {res['clicks_before_over_after']:.2f}x")
    return "\n".join(lines)


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    main()
