"""A simulated annotator driving the annotation app's own HTTP API: image mode against video mode.

    .venv/bin/python -m benchmarks.annotation --data ../shared/data/davis2016 --videos 2
    samstream synth /tmp/heldout --seeds 1000000:1000005
    .venv/bin/python -m benchmarks.annotation --data /tmp/heldout

A real `samstream app` server process (`--model`, default the embedded model, CPU) on a temporary data folder
holding a copy of each video's frames. Every object of every video (`--data` in the DAVIS layout:
JPEGImages/480p/<seq>/ and Annotations/480p/<seq>/, indexed or binary PNGs) is annotated until its mask has
J >= --target (0.9) on every annotated frame, or no frame below it has clicks left (`--max-clicks` per frame),
twice, each time on a fresh video of the app holding only that object (so the seconds are that masklet's alone):

* image mode (the data engine's phase 1, SAM on every frame): on every frame, clicks and nothing else, no
  propagation; a frame where the object is absent needs no click.
* video mode (phase 3): clicks on the object's first frame, propagate, then repeatedly take the frame with the
  lowest J, click it until it reaches the target (or its budget) and re-propagate from it (forward; backward
  when it lies before the first prompted frame), until every frame is at the target or out of clicks.

Clicks are the click evaluation's (samstream/eval/clicks.py): the first at the object's interior point farthest
from its boundary, each next one at the centre of the largest error region, negative on a false positive. The
annotator reads the app's masks back after every action (GET masks/{t}) and scores them with samstream.eval
(J, boundary F). "Seconds" are the wall time of that masklet's API calls, i.e. the model and server time a real
annotator would wait for (no human time is modelled). The machine's load average is recorded (a shared machine:
seconds are measured under that load). Raw results: --json, default benchmarks/results/annotation-<date>.json.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from datetime import datetime
from pathlib import Path

import httpx
import numpy as np

from benchmarks.app_long_video import RESULTS, free_port, load, start_server
from samstream.eval.clicks import first_click, next_click
from samstream.eval.dataset import read_labels
from samstream.eval.metrics import f_measure, jaccard
from samstream.io.rle import decode_rle

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
POLL_S = 0.1


# ------------------------------------------------------------------------------------------ data
def find_videos(root: Path, names: list[str] | None = None) -> list[str]:
    """The sequences of a DAVIS-layout root that have both frames and annotations, sorted."""
    frames, annots = root / "JPEGImages" / "480p", root / "Annotations" / "480p"
    if not frames.is_dir() or not annots.is_dir():
        raise SystemExit(f"{root}: not a DAVIS-layout folder (no JPEGImages/480p and Annotations/480p)")
    seqs = sorted(p.name for p in frames.iterdir() if p.is_dir() and (annots / p.name).is_dir())
    if names:
        missing = sorted(set(names) - set(seqs))
        if missing:
            raise SystemExit(f"{root}: no sequence(s) {missing}")
        seqs = [s for s in seqs if s in names]
    return seqs


def load_sequence(root: Path, seq: str, max_frames: int | None, out: Path) -> tuple[dict[int, np.ndarray], list]:
    """Copies the sequence's first `max_frames` frames to out/seq/ -> ({object id: (T, H, W) bool ground truth},
    [frame t is annotated]).

    Frame t is the t-th image by name; a frame without an annotation PNG counts as not annotated (left out of J).
    """
    images = sorted(p for p in (root / "JPEGImages" / "480p" / seq).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    images = images[:max_frames] if max_frames else images
    (out / seq).mkdir(parents=True)
    labels = []
    for p in images:
        shutil.copy(p, out / seq / p.name)
        png = root / "Annotations" / "480p" / seq / f"{p.stem}.png"
        labels.append(read_labels(png) if png.exists() else None)
    shape = next(lab.shape for lab in labels if lab is not None)
    ids = sorted({int(i) for lab in labels if lab is not None for i in np.unique(lab) if i not in (0, 255)})
    gt = {k: np.stack([lab == k if lab is not None else np.zeros(shape, bool) for lab in labels]) for k in ids}
    return gt, [lab is not None for lab in labels]


# ------------------------------------------------------------------------------------------ the annotator
class Masklet:
    """One object on one fresh video of the app: its clicks, its masks as the app stores them, its timing."""

    def __init__(self, c: httpx.Client, project: int, path: str, gt: np.ndarray, annotated: list[bool],
                 target: float, max_clicks: int):
        self.c, self.gt, self.annotated, self.target, self.max_clicks = c, gt, annotated, target, max_clicks
        self.seconds = 0.0
        self.vid = self.call("POST", f"/api/projects/{project}/videos", {"path": path})["id"]
        self.obj = self.call("POST", f"/api/videos/{self.vid}/objects", {})["object"]["obj_id"]
        self.clicks = [0] * len(gt)  # per frame
        self.propagations = 0
        self.pred = np.zeros_like(gt)  # (T, H, W) bool: the app's masks, as last read

    def call(self, method: str, path: str, body=None):
        t0 = time.perf_counter()
        r = self.c.request(method, path, json=body)
        self.seconds += time.perf_counter() - t0
        if r.status_code >= 400:
            raise RuntimeError(f"{method} {path}: {r.status_code} {r.text[:300]}")
        return r.json()

    def read(self, t: int) -> np.ndarray:
        rec = self.call("GET", f"/api/videos/{self.vid}/masks/{t}")["objects"].get(str(self.obj))
        self.pred[t] = False if rec is None else decode_rle(rec["rle"])
        return self.pred[t]

    def j(self, t: int) -> float:
        return jaccard(self.gt[t], self.pred[t])

    def click_frame(self, t: int) -> None:
        """Clicks frame t until its J reaches the target or its budget is spent."""
        while self.clicks[t] < self.max_clicks and self.j(t) < self.target:
            k = first_click(self.gt[t]) if self.clicks[t] == 0 and not self.pred[t].any() else \
                next_click(self.gt[t], self.pred[t])
            if k is None:
                return
            self.call("POST", f"/api/videos/{self.vid}/click",
                      {"obj_id": self.obj, "frame": t, "x": float(k.x), "y": float(k.y), "positive": k.positive})
            self.clicks[t] += 1
            self.read(t)

    def propagate(self, t: int, direction: str) -> None:
        job = self.call("POST", f"/api/videos/{self.vid}/propagate", {"frame": t, "direction": direction})["job"]
        while job and job["state"] == "running":
            time.sleep(POLL_S)
            job = self.call("GET", f"/api/videos/{self.vid}/job")
        if job["state"] != "done":
            raise RuntimeError(f"propagation ended {job['state']}: {job.get('error')}")
        self.propagations += 1
        for s in range(len(self.gt)):
            self.read(s)

    def frames(self) -> list[int]:
        return [t for t in range(len(self.gt)) if self.annotated[t]]

    def image_mode(self) -> None:
        for t in self.frames():
            self.click_frame(t)

    def video_mode(self) -> None:
        first = next(t for t in self.frames() if self.gt[t].any())
        self.click_frame(first)
        self.propagate(first, "forward" if first == 0 else "both")
        while True:
            todo = [t for t in self.frames() if self.clicks[t] < self.max_clicks and self.j(t) < self.target]
            if not todo:
                return
            worst = min(todo, key=self.j)  # the first of the worst
            self.click_frame(worst)
            self.propagate(worst, "forward" if worst >= first else "backward")

    def result(self) -> dict:
        frames = self.frames()
        js = [jaccard(self.gt[t], self.pred[t]) for t in frames]
        fs = [f_measure(self.gt[t], self.pred[t]) for t in frames]
        return {"clicks": sum(self.clicks), "seconds": round(self.seconds, 2), "propagations": self.propagations,
                "frames": len(frames), "frames_clicked": sum(1 for n in self.clicks if n),
                "frames_below_target": sum(1 for v in js if v < self.target),
                "J": round(float(np.mean(js)), 4), "F": round(float(np.mean(fs)), 4)}


# ------------------------------------------------------------------------------------------ the run
def new_project(c: httpx.Client, name: str) -> int:
    return c.post("/api/projects", json={"name": name}).raise_for_status().json()["id"]


def annotate(c: httpx.Client, project: int, gts: dict, modes, target: float, max_clicks: int, quiet: bool = False,
             folder: str = "") -> list[dict]:
    """Every object of every sequence of `gts` ({seq: (ground truth per object, annotated frames)}, frames under
    the data root's `folder`/seq), once per mode, each masklet on a fresh video of `project` -> result rows."""
    rows = []
    for seq, (objects, annotated) in gts.items():
        for obj_id, gt in objects.items():
            for mode in modes:
                m = Masklet(c, project, f"{folder}/{seq}" if folder else seq, gt, annotated, target, max_clicks)
                getattr(m, f"{mode}_mode")()
                rows.append({"sequence": seq, "object": obj_id, "mode": mode, **m.result()})
                if not quiet:
                    print(json.dumps(rows[-1]), flush=True)
    return rows


def summarise(rows: list[dict]) -> dict:
    if not rows:
        return {}
    j, f = float(np.mean([r["J"] for r in rows])), float(np.mean([r["F"] for r in rows]))
    return {"masklets": len(rows), "clicks_per_masklet": round(float(np.mean([r["clicks"] for r in rows])), 2),
            "seconds_per_masklet": round(float(np.mean([r["seconds"] for r in rows])), 2),
            # medians too: a few masklets the model cannot bring to the target spend the whole budget in both modes
            "median_clicks": float(np.median([r["clicks"] for r in rows])),
            "median_seconds": round(float(np.median([r["seconds"] for r in rows])), 2),
            "J": round(j, 4), "F": round(f, 4), "J&F": round((j + f) / 2, 4),
            "masklets_at_target": sum(1 for r in rows if r["frames_below_target"] == 0)}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True,
                    help="a DAVIS-layout folder (JPEGImages/480p, Annotations/480p)")
    ap.add_argument("--model", default=None, help="official name or checkpoint path (default: the embedded model)")
    ap.add_argument("--max-clicks", type=int, default=10, help="clicks allowed on one frame of one object")
    ap.add_argument("--target", type=float, default=0.9, help="the J every annotated frame must reach")
    ap.add_argument("--videos", type=int, default=None, help="only the first K sequences (by name)")
    ap.add_argument("--sequences", nargs="+", default=None, help="only these sequences")
    ap.add_argument("--max-frames", type=int, default=None, help="only the first N frames of each sequence")
    ap.add_argument("--modes", nargs="+", choices=("image", "video"), default=["image", "video"])
    ap.add_argument("--json", type=Path, default=None,
                    help="where to write the results (default: benchmarks/results/annotation-<date>.json)")
    ap.add_argument("-q", "--quiet", action="store_true")
    args = ap.parse_args(argv)
    seqs = find_videos(args.data, args.sequences)[: args.videos]
    res = {"date": datetime.now().isoformat(timespec="seconds"), "cpus": os.cpu_count(), "load_before": load(),
           "data": str(args.data), "model": args.model or "built-in", "max_clicks": args.max_clicks,
           "target": args.target, "max_frames": args.max_frames, "sequences": seqs, "masklets": []}
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        gts = {seq: load_sequence(args.data, seq, args.max_frames, data) for seq in seqs}
        proc = start_server(data, port := free_port(), args.model)
        try:
            c = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=600)
            project = new_project(c, "annotation benchmark")
            res["masklets"] = annotate(c, project, gts, args.modes, args.target, args.max_clicks, args.quiet)
        finally:
            proc.kill()
            proc.wait()
    res["load_after"] = load()
    res["wall_s"] = round(time.perf_counter() - t_start, 1)
    res["summary"] = {mode: summarise([r for r in res["masklets"] if r["mode"] == mode]) for mode in args.modes}
    img, vid = res["summary"].get("image"), res["summary"].get("video")
    if img and vid:
        res["ratio_image_over_video"] = ratios(img, vid)
    print(report(res))
    out = args.json or RESULTS / f"annotation-{datetime.now():%Y-%m-%d-%H%M%S}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1) + "\n")
    return res


def ratios(img: dict, vid: dict) -> dict:
    """Image mode's cost over video mode's: of the means, and of the medians."""
    r = lambda a, b: round(a / max(b, 1e-9), 2)
    return {"clicks": r(img["clicks_per_masklet"], vid["clicks_per_masklet"]),
            "seconds": r(img["seconds_per_masklet"], vid["seconds_per_masklet"]),
            "median_clicks": r(img["median_clicks"], vid["median_clicks"]),
            "median_seconds": r(img["median_seconds"], vid["median_seconds"])}


def report(res: dict) -> str:
    """The summary as a small table."""
    lines = [f"{len(res['sequences'])} videos, {len(res['masklets']) // max(1, len(res['summary']))} objects, "
             f"target J >= {res['target']}, <= {res['max_clicks']} clicks a frame, load {res['load_before']}",
             f"{'mode':6} {'masklets':>8} {'clicks/masklet':>15} {'s/masklet':>10} {'J&F':>6} {'J':>6} {'F':>6} "
             f"{'at target':>9}"]
    for mode, s in res["summary"].items():
        if s:
            lines.append(f"{mode:6} {s['masklets']:8d} {s['clicks_per_masklet']:15.2f} "
                         f"{s['seconds_per_masklet']:10.2f} {100 * s['J&F']:6.1f} {100 * s['J']:6.1f} "
                         f"{100 * s['F']:6.1f} {s['masklets_at_target']:9d}")
    if "ratio_image_over_video" in res:
        r = res["ratio_image_over_video"]
        lines.append(f"image / video: {r['clicks']:.2f}x clicks, {r['seconds']:.2f}x seconds (medians: "
                     f"{r['median_clicks']:.2f}x, {r['median_seconds']:.2f}x; Meta: 8.4x in time)")
    return "\n".join(lines)


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    main()
