"""`samstream track VIDEO --model DIR` on a `samstream export` folder (ONNX Runtime) against `samstream track` with
the same weights in PyTorch: the same PNG masks, the same writers, and a one-line refusal of what the runtime lacks.

Model: the official SAM 2.1 tiny architecture at 128 px with perturbed random weights (as in test_export_parity.py),
saved as a checkpoint, exported with `samstream export`; two objects (a click on frame 0, a box on frame 2).
"""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from samstream import save_model
from samstream.cli import main
from samstream.io.png import read_label_png
from tests.helpers import random_official, synthetic_frames, torch_threads

N, H, W = 6, 96, 128
PROMPTS = ["--prompt", "0:1:40,30", "--box", "2:2:5,5,60,50"]
MIN_AGREE = 0.999


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """(checkpoint, export folder) of the same weights."""
    root = tmp_path_factory.mktemp("models")
    with torch_threads(1):
        ckpt = save_model(random_official(), root / "tiny.safetensors")
        assert main(["export", str(ckpt), "-o", str(root / "onnx")]) == 0
    return str(ckpt), str(root / "onnx")


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clip") / "frames"
    folder.mkdir()
    for i, f in enumerate(synthetic_frames(N, H, W)):
        Image.fromarray(f).save(folder / f"{i:05d}.png")
    return folder


def track(video, model, out, *extra) -> int:
    with torch_threads(1):
        return main(["track", str(video), *PROMPTS, "--model", model, "-o", str(out), "--quiet", *extra])


def labels(out) -> list[np.ndarray]:
    return [read_label_png(out / f"{i:05d}.png")[0] for i in range(N)]


def test_export_folder_tracks_as_pytorch_does(models, frames, tmp_path):
    ckpt, onnx = models
    assert track(frames, ckpt, tmp_path / "torch", "--format", "png,json") == 0
    assert track(frames, onnx, tmp_path / "onnx", "--format", "png,json") == 0
    ref, got = labels(tmp_path / "torch"), labels(tmp_path / "onnx")
    agree = np.mean([(a == b).mean() for a, b in zip(ref, got)])
    assert agree >= MIN_AGREE, agree
    # both objects and the background cover real parts of the frames: the comparison can see a difference
    shares = [np.mean([(a == v).mean() for a in ref]) for v in (0, 1, 2)]
    assert min(shares) > 0.01, shares
    a, b = (json.loads((tmp_path / d / "masks.json").read_text()) for d in ("torch", "onnx"))
    for key in ("masklet_id", "masklet_frame_idx", "video_height", "video_width", "video_frame_count"):
        assert a[key] == b[key], key


def test_video_file_both_directions_and_overlay(models, frames, tmp_path):
    """A video file decoded by samstream's frame source, a backward pass, the overlay writer (which reads frames)."""
    av = pytest.importorskip("av")
    ckpt, onnx = models
    video = tmp_path / "clip.mp4"
    with av.open(str(video), "w") as c:
        s = c.add_stream("libx264", rate=10)
        s.width, s.height, s.pix_fmt = W, H, "yuv420p"
        for i in range(N):
            rgb = np.asarray(Image.open(frames / f"{i:05d}.png").convert("RGB"))
            for pk in s.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                c.mux(pk)
        for pk in s.encode():
            c.mux(pk)
    prompts = ["--direction", "both", "--format", "png,mp4"]
    assert track(video, ckpt, tmp_path / "torch", *prompts) == 0
    assert track(video, onnx, tmp_path / "onnx", *prompts) == 0
    agree = np.mean([(a == b).mean() for a, b in zip(labels(tmp_path / "torch"), labels(tmp_path / "onnx"))])
    assert agree >= MIN_AGREE, agree
    with av.open(str(tmp_path / "onnx" / "overlay.mp4")) as c:
        assert sum(1 for _ in c.decode(video=0)) == N


@pytest.mark.parametrize("option", [["--mirror"], ["--edge-refine", "2"], ["--precision", "bf16"],
                                    ["--non-overlap"], ["--min-region-area", "5"], ["--no-postprocessing"]])
def test_options_the_runtime_lacks_are_refused_in_one_line(models, frames, tmp_path, capsys, option):
    _, onnx = models
    assert track(frames, onnx, tmp_path / "o", *option) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {option[0]}") and "not available with an ONNX export folder" in err, err
    assert "\n" not in err and not (tmp_path / "o").exists()
