"""ONNX Runtime tracker (samstream.runtime) against our PyTorch tracker: frames per second, same frames, same run.

    .venv/bin/python -m benchmarks.onnx                          # embedded default model, demo clip, 2 objects
    .venv/bin/python -m benchmarks.onnx --frames 60 --threads 2
    .venv/bin/python -m benchmarks.onnx --config sam2.1_hiera_tiny --image-size 512 --frames 8

Both sides track the same decoded frames from the same clicks (the demo clip's first-frame clicks), with the
same thread count, bfloat16 memory storage, every frame kept (history="all") and plain outputs; runs alternate
(PyTorch, ORT, PyTorch, ORT, ...) so that load on the machine hits both alike, and the median is reported.
Frames per second = tracked frames / propagation time (prompts and their frame's encoding excluded, as in
benchmarks/video.py). --config: that official architecture with random weights (the timing does not depend on
the weights). Results go to benchmarks/results/onnx-<date>.json.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "samstream" / "assets" / "demo.mp4"
RESULTS = ROOT / "benchmarks" / "results"


def load_frames(n: int) -> np.ndarray:
    import av

    with av.open(str(DEMO)) as c:
        frames = [f.to_ndarray(format="rgb24") for _, f in zip(range(n), c.decode(video=0))]
    return np.stack(frames)


def clicks() -> dict:
    d = json.loads((ROOT / "samstream" / "assets" / "demo.json").read_text())
    return {int(k): v for k, v in d["first_frame_clicks"].items()}


def track(vp, points: dict) -> tuple[int, float]:
    for obj, xy in points.items():
        vp.add_points(0, obj, [xy])
    t = time.perf_counter()
    n = sum(1 for _ in vp.propagate())
    return n, time.perf_counter() - t


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=30)
    ap.add_argument("--objects", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--config", default=None, help="an official architecture, random weights (default: embedded)")
    ap.add_argument("--image-size", type=int, default=None)
    args = ap.parse_args(argv)

    import torch

    import samstream
    from samstream.export import export_model
    from samstream.model import SAM2Model, official_config
    from samstream.postprocess import MaskPostprocess
    from samstream.runtime import OnnxModel
    from samstream.runtime import VideoPredictor as OrtVideoPredictor

    torch.set_num_threads(args.threads)
    torch.set_grad_enabled(False)
    if args.config:
        cfg = official_config(args.config)
        if args.image_size:
            cfg = dataclasses.replace(cfg, image_size=args.image_size)
        model = SAM2Model(cfg).eval()
    else:
        model = samstream.load_model()
    frames = load_frames(args.frames)
    points = dict(list(clicks().items())[: args.objects])
    with tempfile.TemporaryDirectory() as d:
        export_model(model, Path(d) / "x")
        onnx_model = OnnxModel(Path(d) / "x", threads=args.threads)
        runs = {"pytorch": [], "onnxruntime": []}
        for _ in range(args.repeat):
            vp = samstream.VideoPredictor(model, frames, postprocess=MaskPostprocess(), progress=False,
                                          history="all")
            runs["pytorch"].append(track(vp, points))
            runs["onnxruntime"].append(track(OrtVideoPredictor(onnx_model, frames), points))
    fps = {k: statistics.median(n / s for n, s in v) for k, v in runs.items()}
    result = {"model": model.cfg.name, "image_size": model.cfg.image_size, "frames": args.frames,
              "objects": len(points), "threads": args.threads, "repeat": args.repeat,
              "fps": fps, "ratio_ort_over_pytorch": fps["onnxruntime"] / fps["pytorch"],
              "torch": torch.__version__, "onnxruntime": __import__("onnxruntime").__version__,
              "date": time.strftime("%Y-%m-%d %H:%M:%S")}
    print(json.dumps(result, indent=1))
    from samstream.io.atomic import atomic_write_text

    RESULTS.mkdir(exist_ok=True)
    atomic_write_text(RESULTS / f"onnx-{time.strftime('%Y-%m-%d-%H%M%S')}.json", json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
