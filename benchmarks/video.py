"""Video tracking benchmark: samstream vs Meta's SAM2VideoPredictor, same weights, same run.

    .venv/bin/python -m benchmarks.video                  # tiny, 1024px, 8 frames, 1 and 4 objects, CPU
    .venv/bin/python -m benchmarks.video --device cuda --frames 30
    .venv/bin/python -m benchmarks.video --long 5000      # + resident memory of a long live stream
    .venv/bin/python -m benchmarks.video --default-model  # the embedded default model on the demo clip, 1 and 4 objects
    .venv/bin/python -m benchmarks.video --precision bf16 # both implementations under torch.autocast(bfloat16)

(from the repository root, as modules: they import the oracle helpers as `tests.oracle`)

Each (implementation, object count) runs in a fresh process, so its peak memory is its own: peak RSS
on CPU, peak allocated GPU memory on CUDA. Frames per second = tracked frames / propagation time
(prompts and the first frame's encoding excluded, as in Meta's benchmark). Weights: the reference's
random initialisation, perturbed (tests/oracle.py), loaded into both. fp32 and bf16 memory storage on
both sides. The long-stream part uses a small custom config (the reference cannot take live input).

--default-model times the embedded default model (samstream.load_model(), 320 px) alone, with the same
frames/s definition, on the shipped clip samstream/assets/demo.mp4 (60 frames, 320x240, decoded as it
goes) from one click per object on frame 0; the raw results go to benchmarks/results/ as JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._common import peak_rss_mb
from samstream.precision import PRECISIONS

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
CLIP = DATA / "davis2016" / "JPEGImages" / "480p" / "blackswan"
NAME = "sam2.1_hiera_tiny"
DEMO_CLIP = ROOT / "samstream" / "assets" / "demo.mp4"
RESULTS = ROOT / "benchmarks" / "results"
# Clicks beyond the demo's annotated objects (demo.json) when more objects are asked for: any point
# tracks at the same cost, so these only need to be inside the 320x240 frame and apart.
EXTRA_CLICKS = [(270, 200), (60, 60), (250, 120), (160, 215), (300, 30), (30, 210)]
CLICKS = [(430, 230), (300, 300), (600, 200), (200, 150), (700, 400), (100, 400), (500, 100), (800, 100)]


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


# ------------------------------------------------------------------------------------------ workers
def worker(args) -> dict:
    import torch

    torch.set_grad_enabled(False)
    if args.threads:
        torch.set_num_threads(args.threads)
    sd = torch.load(args.weights, map_location="cpu", weights_only=True)
    dev = torch.device(args.device)
    if args.impl == "ref":
        import sam2.modeling.memory_attention as ma
        from sam2.build_sam import build_sam2_video_predictor

        from tests.oracle import YAML

        orig = ma.MemoryAttention.forward

        def forward(self, curr, memory, curr_pos=None, memory_pos=None, num_obj_ptr_tokens=0):
            # bf16 memories without autocast (ORACLE.md): upcast, as CUDA autocast would compute them
            return orig(self, curr, memory.float(), curr_pos, memory_pos.float(), num_obj_ptr_tokens)

        ma.MemoryAttention.forward = forward
        over = [] if args.size == 1024 else [f"++model.image_size={args.size}"]
        pred = build_sam2_video_predictor(YAML[NAME], None, device=str(dev), hydra_overrides_extra=over)
        pred.load_state_dict(sd)
        pred.eval()
    else:
        import dataclasses

        from samstream.checkpoint import load_into
        from samstream.model import SAM2Model, official_config
        from samstream.video.compat import SAM2VideoPredictor

        cfg = dataclasses.replace(official_config(NAME), image_size=args.size)
        model = SAM2Model(cfg)
        load_into(model, sd)
        pred = SAM2VideoPredictor(model.to(dev).eval())
    if dev.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    from samstream.precision import autocast

    base = rss_mb()
    with autocast(args.precision, dev):  # the same autocast around both implementations (nothing for fp32)
        t0 = time.perf_counter()
        state = pred.init_state(args.clip)
        for k in range(args.objects):
            pred.add_new_points_or_box(state, 0, k + 1, points=[CLICKS[k % len(CLICKS)]], labels=[1])
        t1 = time.perf_counter()
        n = 0
        for _ in pred.propagate_in_video(state):
            n += 1
        if dev.type == "cuda":
            torch.cuda.synchronize()
        t2 = time.perf_counter()
    out = {"impl": args.impl, "objects": args.objects, "frames": n, "setup_s": t1 - t0, "propagate_s": t2 - t1,
           "fps": n / (t2 - t1), "peak_rss_mb": peak_rss_mb(), "rss_before_mb": base, "precision": args.precision}
    if dev.type == "cuda":
        out["peak_gpu_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return out


def long_stream(frames: int, threads: int | None, device: str) -> dict:
    """RSS of a live stream (small config, 2 objects) at frame 100 and at the last frame."""
    import numpy as np
    import torch

    from samstream.model import HieraConfig, SAM2Config, SAM2Model
    from samstream.video import VideoPredictor

    torch.set_grad_enabled(False)
    torch.set_num_threads(threads or 1)
    torch.manual_seed(0)
    trunk = HieraConfig(embed_dim=16, num_heads=1, stages=(1, 1, 2, 1), global_att_blocks=(3, 4),
                        window_spec=(8, 4, 4, 4), window_pos_embed_bkg_spatial_size=(4, 4))
    cfg = SAM2Config(name="bench-small", trunk=trunk, image_size=128, hidden_dim=64, mem_dim=16, mem_attn_layers=2,
                     mem_attn_ffn_dim=128, decoder_mlp_dim=128, decoder_heads=2)
    model = SAM2Model(cfg).eval().to(device)
    with torch.no_grad():
        model.sam_mask_decoder.pred_obj_score_head.layers[-1].bias.fill_(1.0)
    rng = np.random.default_rng(0)
    bg = rng.integers(0, 200, (270, 480, 3), dtype=np.uint8)
    vp = VideoPredictor(model, progress=False)
    marks = {}
    t0 = time.perf_counter()
    for i in range(frames):
        frame = np.roll(bg, 3 * i, axis=1)
        vp.step(frame)
        if i == 0:
            vp.add_points(0, 1, [[100, 100]])
            vp.add_points(0, 2, [[300, 150]])
        if i + 1 in (100, frames) or (i + 1) % 1000 == 0:
            marks[i + 1] = {"rss_mb": rss_mb(), **vp.memory_stats()}
    dt = time.perf_counter() - t0
    first, last = marks[100], marks[frames]
    return {"frames": frames, "fps": frames / dt, "rss_at_100_mb": first["rss_mb"],
            f"rss_at_{frames}_mb": last["rss_mb"],
            "rss_growth_pct": 100 * (last["rss_mb"] - first["rss_mb"]) / first["rss_mb"],
            "stored_frames_at_100": first["non_cond_frames"] + first["cond_frames"],
            f"stored_frames_at_{frames}": last["non_cond_frames"] + last["cond_frames"],
            "tensors_at_100": first["tensors"], f"tensors_at_{frames}": last["tensors"],
            "marks": {k: round(v["rss_mb"], 1) for k, v in marks.items()}}


def demo_clicks(clip: Path, k: int) -> list[tuple[float, float]]:
    """k frame-0 clicks: the annotated objects' ground-truth clicks from demo.json beside the clip, then
    EXTRA_CLICKS."""
    meta = clip.with_suffix(".json")
    clicks = [tuple(v) for v in json.loads(meta.read_text())["first_frame_clicks"].values()] if meta.is_file() else []
    clicks += EXTRA_CLICKS
    if k > len(clicks):
        raise ValueError(f"at most {len(clicks)} objects on {clip}")
    return clicks[:k]


def worker_default(args) -> dict:
    """Track k objects through the clip with the embedded default model (or --weights), in this process."""
    import hashlib

    import torch

    import samstream
    from samstream.load import DEFAULT_MODEL_PATH

    torch.set_grad_enabled(False)
    torch.set_num_threads(args.threads or 1)
    weights = Path(args.weights) if args.weights else DEFAULT_MODEL_PATH
    model = samstream.load_model(weights, device=args.device).eval()
    dev = torch.device(args.device)
    clip = Path(args.clip)
    base = rss_mb()
    t0 = time.perf_counter()
    vp = samstream.VideoPredictor(model, str(clip), progress=False, mirror=args.mirror,
                                  edge_refine_radius=args.edge_refine, precision=args.precision)
    for obj, (x, y) in enumerate(demo_clicks(clip, args.objects), start=1):
        vp.add_points(0, obj, [[x, y]], [1])
    t1 = time.perf_counter()
    n = sum(1 for _ in vp.propagate(0, "forward"))
    if dev.type == "cuda":
        torch.cuda.synchronize()
    t2 = time.perf_counter()
    vp.close()
    gpu = {"peak_gpu_mb": torch.cuda.max_memory_allocated(dev) / 2**20} if dev.type == "cuda" else {}
    return {"impl": "default", "objects": args.objects, "frames": n, "setup_s": t1 - t0, "propagate_s": t2 - t1,
            "fps": n / (t2 - t1), "peak_rss_mb": peak_rss_mb(), "rss_before_mb": base, **gpu,
            "threads": torch.get_num_threads(), "model": model.cfg.name, "image_size": model.cfg.image_size,
            "weights": str(weights), "weights_sha256": hashlib.sha256(weights.read_bytes()).hexdigest()[:16],
            "mirror": args.mirror, "edge_refine_radius": vp.postprocess.edge_refine_radius, "precision": args.precision,
            "load_avg_after": os.getloadavg()[0]}


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def run_default(args) -> dict:
    """--default-model: each object count in a fresh process, `repeat` times, median reported."""
    import platform

    import torch

    results = {"mode": "default-model", "clip": str(args.clip), "device": args.device, "threads": args.threads or 1,
               "precision": args.precision,
               "cpu": _cpu_name(), "cpus": os.cpu_count(), "torch": torch.__version__,
               "python": platform.python_version(),
               "date": time.strftime("%Y-%m-%d %H:%M:%S"), "load_avg_before": os.getloadavg()[0], "runs": []}
    for k in [int(v) for v in args.objects.split(",")]:
        cmd = ["--objects", str(k), "--clip", str(args.clip), "--device", args.device,
               "--threads", str(args.threads or 1)] + (["--weights", args.weights] if args.weights else []) + (
            ["--mirror"] if args.mirror else []) + (
            ["--edge-refine", str(args.edge_refine)] if args.edge_refine is not None else []) + [
            "--precision", args.precision]
        runs = [run_worker(cmd, "worker-default") for _ in range(args.repeat)]
        rs = sorted(runs, key=lambda r: r["fps"])
        r = dict(rs[len(rs) // 2], fps_all=[round(x["fps"], 3) for x in runs])
        results["runs"].append(r)
        print(f"default model, {k} object(s): {r['fps']:.1f} frames/s (median of {len(rs)}; {r['frames']} frames in "
              f"{r['propagate_s']:.2f} s, {r['threads']} thread(s)), peak RSS {r['peak_rss_mb']:.0f} MB", flush=True)
    return results


# ------------------------------------------------------------------------------------------ driver
def run_worker(cmd_args: list[str], kind: str = "worker") -> dict:
    proc = subprocess.run([sys.executable, "-m", "benchmarks.video", kind, *cmd_args], capture_output=True,
                          text=True, cwd=ROOT)
    if proc.returncode != 0:
        raise RuntimeError(f"worker {cmd_args} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd")
    w = sub.add_parser("worker")
    for a, kw in (("--impl", dict(choices=["ref", "ours"])), ("--objects", dict(type=int)), ("--weights", {}),
                  ("--clip", {}), ("--size", dict(type=int)), ("--device", {}), ("--threads", dict(type=int)),
                  ("--precision", dict(choices=PRECISIONS, default="fp32"))):
        w.add_argument(a, **kw)
    wd = sub.add_parser("worker-default")
    for a, kw in (("--objects", {"type": int}), ("--weights", {}), ("--clip", {}), ("--device", {}),
                  ("--threads", {"type": int})):
        wd.add_argument(a, **kw)
    wd.add_argument("--mirror", action="store_true")
    wd.add_argument("--edge-refine", type=float, default=None)
    wd.add_argument("--precision", choices=PRECISIONS, default="fp32")
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--objects", default="1,4")
    p.add_argument("--size", type=int, default=1024, help="model input size (1024 = official)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--precision", choices=PRECISIONS, default="fp32",
                   help="mixed precision: ours through samstream.precision, the reference under the same "
                        "torch.autocast (--default-model: VideoPredictor(precision=...))")
    p.add_argument("--repeat", type=int, default=1, help="runs per implementation (median reported)")
    p.add_argument("--long", type=int, default=0, help="frames of the long-stream memory test (0 = skip)")
    p.add_argument("--skip-compare", action="store_true", help="only the long-stream test")
    p.add_argument("--json", default=None, help="also write the results here")
    p.add_argument("--default-model", action="store_true",
                   help="time the embedded default model alone on the demo clip (writes benchmarks/results/*.json)")
    p.add_argument("--clip", default=str(DEMO_CLIP), help="--default-model: the video (default: the demo clip)")
    p.add_argument("--weights", default=None, help="--default-model: another checkpoint of the default config")
    p.add_argument("--mirror", action="store_true", help="--default-model: with mirror test-time augmentation")
    p.add_argument("--edge-refine", type=float, default=None, metavar="RADIUS",
                   help="--default-model: this edge refinement radius (default: the model's; 0: off)")
    args = p.parse_args()
    if args.cmd == "worker":
        print(json.dumps(worker(args)))
        return 0
    if args.cmd == "worker-default":
        print(json.dumps(worker_default(args)))
        return 0
    if args.default_model:
        from samstream.io.atomic import atomic_write_text

        results = run_default(args)
        path = Path(args.json) if args.json else RESULTS / f"video-default-{time.strftime('%Y-%m-%d-%H%M%S')}.json"
        atomic_write_text(path, json.dumps(results, indent=2) + "\n")
        print(f"wrote {path}", flush=True)
        return 0

    results: dict = {"device": args.device, "size": args.size, "frames": args.frames, "precision": args.precision,
                     "runs": []}
    if not args.skip_compare:
        import torch

        from tests.oracle import reference_state_dict

        tmp = Path(tempfile.mkdtemp(prefix="samstream-bench-"))
        try:
            clip = tmp / "clip"
            clip.mkdir()
            for f in sorted(CLIP.glob("*.jpg"))[: args.frames]:
                shutil.copy(f, clip / f.name)
            weights = tmp / "weights.pt"
            torch.save(reference_state_dict(NAME), weights)
            for k in [int(v) for v in args.objects.split(",")]:
                runs: dict[str, list[dict]] = {"ref": [], "ours": []}
                for rep in range(args.repeat):
                    # alternate the order (ABBA) so that changing load on the machine hits both alike
                    for impl in (("ref", "ours") if rep % 2 == 0 else ("ours", "ref")):
                        cmd = ["--impl", impl, "--objects", str(k), "--weights", str(weights), "--clip", str(clip),
                               "--size", str(args.size), "--device", args.device, "--precision", args.precision]
                        if args.threads:
                            cmd += ["--threads", str(args.threads)]
                        runs[impl].append(run_worker(cmd))
                for impl in ("ref", "ours"):
                    rs = sorted(runs[impl], key=lambda r: r["fps"])
                    r = dict(rs[len(rs) // 2], fps_all=[round(x["fps"], 4) for x in runs[impl]])
                    results["runs"].append(r)
                    mem = f"peak GPU {r['peak_gpu_mb']:.0f} MB" if "peak_gpu_mb" in r else \
                        f"peak RSS {r['peak_rss_mb']:.0f} MB"
                    print(f"{impl:4s} {k} object(s): {r['fps']:.3f} frames/s (median of {len(rs)}; {r['frames']} "
                          f"frames in {r['propagate_s']:.1f} s), {mem}", flush=True)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    if args.long:
        r = long_stream(args.long, args.threads, args.device)
        results["long_stream"] = r
        print(f"long stream ({args.long} frames, small config, 2 objects): RSS {r['rss_at_100_mb']:.1f} MB at frame "
              f"100, {r[f'rss_at_{args.long}_mb']:.1f} MB at frame {args.long} ({r['rss_growth_pct']:+.2f}%); "
              f"stored frames {r['stored_frames_at_100']} -> {r[f'stored_frames_at_{args.long}']}; "
              f"{r['fps']:.0f} frames/s", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TQDM_DISABLE", "1")
    sys.exit(main())
