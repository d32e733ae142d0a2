"""`samstream batch track` on a local Ray against a plain loop of `samstream track` over the same videos.

    .venv/bin/python -m benchmarks.batch                       # 6 clips x 30 frames of the demo, 160x120
    .venv/bin/python -m benchmarks.batch --videos 8 --frames 60 --workers 1 2 4

The videos: the demo clip's first --frames frames at half size (160x120), --videos copies, each tracked from
the demo's first-frame click on object 1, PNG output. The loop runs `samstream track` once per video, as a
script gluing it to many videos would (one process each: Python, torch and the model start every time), with
one torch thread (OMP_NUM_THREADS=1), the thread count a 1-CPU worker gets. Each batch run starts its own
local Ray with N workers of one CPU each (one torch thread each). Reported: wall time and frames/s of each
(the batch's also without its startup: Ray, the workers and their models), and the scheduling overhead per
video (the driver's round trip to a worker less the worker's own time on the video). Results go to
benchmarks/results/batch-<date>.json.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
CLICK = "0:1:90,20"  # the demo's object 1 (179, 40) at half size


def make_clips(folder: Path, videos: int, frames: int) -> Path:
    """--videos frame folders of the demo's first frames at 160x120, and their manifest."""
    from PIL import Image

    from samstream.video.sources import open_source

    src = open_source(ROOT / "samstream" / "assets" / "demo.mp4")
    try:
        imgs = [src.read(i)[::2, ::2] for i in range(frames)]
    finally:
        src.close()
    lines = []
    for v in range(videos):
        d = folder / f"clip{v}"
        d.mkdir(parents=True)
        for i, f in enumerate(imgs):
            Image.fromarray(f).save(d / f"{i:05d}.png")
        lines.append(json.dumps({"video": str(d), "prompts": [CLICK]}))
    manifest = folder / "clips.jsonl"
    manifest.write_text("\n".join(lines) + "\n")
    return manifest


def loop(folder: Path, videos: int, frames: int) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    t = time.perf_counter()
    for v in range(videos):
        subprocess.run([sys.executable, "-m", "samstream", "track", str(folder / f"clip{v}"), "--prompt", CLICK,
                        "-o", str(folder / "loop" / f"clip{v}"), "--quiet"], check=True, env=env)
    wall = time.perf_counter() - t
    return {"wall_seconds": round(wall, 2), "frames_per_second": round(videos * frames / wall, 2)}


def batch(manifest: Path, out: Path, workers: int) -> dict:
    import samstream.batch

    t = time.perf_counter()
    s = samstream.batch.track(manifest, out, workers=workers, progress=False)
    wall = time.perf_counter() - t
    return {"workers": workers, "cpus_per_worker": 1, "wall_seconds": round(wall, 2),
            "frames_per_second": round(s["frames"] / wall, 2), "startup_seconds": s["startup_seconds"],
            "frames_per_second_after_startup": s["frames_per_second"],
            "overhead_seconds_per_video": s["overhead_seconds_per_video"]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--videos", type=int, default=6)
    p.add_argument("--frames", type=int, default=30)
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        manifest = make_clips(tmp, args.videos, args.frames)
        result = {"videos": args.videos, "frames_per_video": args.frames, "size": "160x120", "cpus": os.cpu_count(),
                  "loop_of_samstream_track": loop(tmp, args.videos, args.frames),
                  "batch": [batch(manifest, tmp / f"batch{w}", w) for w in args.workers]}
    print(json.dumps(result, indent=1))
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"batch-{time.strftime('%Y-%m-%d-%H%M%S')}.json"
    path.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
