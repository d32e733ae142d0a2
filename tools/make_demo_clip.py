"""Make the shipped demo clip samstream/assets/demo.mp4 (and demo.json) from a held-out synthetic video.

    .venv/bin/python tools/make_demo_clip.py            # rewrites samstream/assets/demo.mp4 and demo.json
    .venv/bin/python tools/make_demo_clip.py --out /tmp/demo --gt   # elsewhere, plus the ground-truth PNGs

The video is `samstream.train.synthetic.generate_video(SEED, CONFIG)`: the generator's defaults except a
longer clip (60 frames) and a scripted full occlusion of object 1 (p_occlusion=1, p_leave=0). SEED is outside
the training seeds (below 1,000,000) and the held-out evaluation seeds (1,000,000-1,000,059). In this clip
object 1 (a striped ellipse, top centre) is fully hidden by object 3 (a striped square that enters from
the right at frame 5) for frames 23-31 and comes back; object 2 is visible throughout.
The frames are deterministic; the encoded bytes may differ between x264 builds.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from fractions import Fraction
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]  # for the default --out; samstream is the installed package

SEED = 2_000_000
FPS = 24
CRF = 18  # x264 quality: small enough to ship (< 300 KB), sharp enough that the masks still fit


def demo_config():
    from samstream.train.synthetic import SynthConfig

    return SynthConfig(num_frames=60, min_objects=2, max_objects=3, p_leave=0.0, p_occlusion=1.0)


def encode_mp4(frames: np.ndarray, path: Path, fps: int = FPS, crf: int = CRF) -> Path:
    """H.264 (yuv420p) mp4 of (T, H, W, 3) uint8 frames, written to a temporary name then moved into place."""
    import av

    tmp = path.with_name(f".{path.name}.tmp")
    with av.open(str(tmp), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps))
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(crf), "preset": "slow"}
        stream.codec_context.thread_count = 1  # one thread: the same bytes on every run of one build
        for f in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():  # flush
            container.mux(packet)
    tmp.replace(path)
    return path


def clicks_on_first_frame(labels0: np.ndarray) -> dict[str, list[int]]:
    """{object id: [x, y]}: each object's interior point farthest from its boundary (the eval's first click)."""
    from samstream.eval.clicks import first_click

    out = {}
    for obj in sorted(int(v) for v in np.unique(labels0) if v != 0):
        c = first_click(labels0 == obj)
        out[str(obj)] = [c.x, c.y]
    return out


def decoded_error(path: Path, frames: np.ndarray) -> float:
    """Mean absolute difference (0-255) between the decoded mp4 and the rendered frames."""
    from samstream.video.sources import open_source

    src = open_source(str(path))
    try:
        n = src.num_frames
        if n != len(frames):
            raise RuntimeError(f"{path} decodes to {n} frames, expected {len(frames)}")
        return float(np.mean([np.abs(src.read(t).astype(np.int16) - frames[t]).mean() for t in range(n)]))
    finally:
        src.close()


def main(argv=None) -> int:
    from samstream.train.synthetic import generate_video

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=str(ROOT / "samstream" / "assets"), help="folder for demo.mp4 and demo.json")
    p.add_argument("--gt", action="store_true", help="also write the ground-truth label PNGs to OUT/demo_gt/")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    cfg = demo_config()
    vid = generate_video(SEED, cfg, name="demo")
    mp4 = encode_mp4(vid.frames, out / "demo.mp4")
    visible = {str(k): [int(t) for t in range(len(vid.labels)) if (vid.labels[t] == k).any()] for k in vid.object_ids}
    meta = {
        "seed": SEED, "config": asdict(cfg), "fps": FPS, "codec": "libx264", "crf": CRF,
        "frames": len(vid.frames), "size": [cfg.width, cfg.height],
        "first_frame_clicks": clicks_on_first_frame(vid.labels[0]),  # {obj: [x, y]}
        "events": vid.events,
        "first_visible": {k: v[0] for k, v in visible.items()},
        "hidden_frames": {k: [t for t in range(v[0], v[-1] + 1) if t not in set(v)] for k, v in visible.items()},
    }
    (out / "demo.json").write_text(json.dumps(meta, indent=1) + "\n")
    if args.gt:
        from samstream.io import write_label_png

        for t, lab in enumerate(vid.labels):
            write_label_png(out / "demo_gt" / f"{t:05d}.png", lab)
    err = decoded_error(mp4, vid.frames)
    print(f"{mp4}: {mp4.stat().st_size / 1024:.0f} KB, {len(vid.frames)} frames {cfg.width}x{cfg.height}, "
          f"mean abs decode error {err:.1f}/255")
    print(json.dumps({k: meta[k] for k in ("first_frame_clicks", "events", "first_visible", "hidden_frames")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
