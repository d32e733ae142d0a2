"""Cost of synthetic training clips rendered in memory (`SynthVideoRange`) against reading them from a written
folder (what the recipe's disk stages do), with the clip settings of the recipe's hard stages.

    .venv/bin/python -m benchmarks.synthetic_data --videos 40 --repeat 40

Also times rendering one video alone (`generate_video`, 24 frames of 320x240). Writes
benchmarks/results/synthetic-data-<date>.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks._common import ROOT, compare


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--videos", type=int, default=40, help="videos written to disk for the folder side")
    p.add_argument("--repeat", type=int, default=40, help="clips drawn per side")
    args = p.parse_args()
    import torch

    from samstream.io.atomic import atomic_write_text
    from samstream.train.data import ClipDataset, SynthVideoRange, davis_videos
    from samstream.train.synthetic import generate_video
    from samstream.train.synthetic_set import write_synthetic_set

    torch.set_num_threads(1)
    seeds = range(5_000_000, 5_000_000 + args.videos)  # outside training, held-out and validation seeds
    renders = []
    for s in seeds[:10]:
        t = time.perf_counter()
        generate_video(s)
        renders.append(time.perf_counter() - t)
    # the hard stages' clips: 8 frames, strides 1-3, 70 % hard windows, 320 px
    kw = dict(num_frames=8, max_objects=3, max_stride=3, hard_prob=0.7)
    with tempfile.TemporaryDirectory() as tmp:
        folder = write_synthetic_set(Path(tmp) / "synth", list(seeds), jobs=os.cpu_count() or 1)
        disk = ClipDataset(davis_videos(folder), 320, **kw)
        memory = ClipDataset(SynthVideoRange(seeds.start, seeds.stop), 320, **kw)
        rng_d, rng_m = np.random.default_rng(0), np.random.default_rng(0)
        t_disk, t_memory = compare(lambda: disk.sample(rng_d), lambda: memory.sample(rng_m), args.repeat)
    out = {"render_one_video_s": round(statistics.median(renders), 4), "clip_from_folder_s": round(t_disk, 4),
           "clip_in_memory_s": round(t_memory, 4), "ratio_in_memory_to_folder": round(t_memory / t_disk, 2),
           "videos": args.videos, "repeat": args.repeat, "cpus": os.cpu_count(), "torch": torch.__version__,
           "python": platform.python_version(), "date": time.strftime("%Y-%m-%d %H:%M:%S")}
    text = json.dumps(out, indent=1)
    print(text)
    res = ROOT / "benchmarks" / "results" / f"synthetic-data-{time.strftime('%Y-%m-%d')}.json"
    atomic_write_text(res, text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
