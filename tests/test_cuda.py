"""The CUDA path: the same masks on a GPU as on the CPU, and training steps under bf16 autocast.

The GPU tests run only where torch sees a CUDA device (tools/device_check.sh runs them on a lent GPU); CI has
none and skips them. The bf16 autocast test runs everywhere: CPU autocast exercises the dtype paths that
training on CUDA takes (`TrainConfig.amp`), so a dtype mismatch shows up before a GPU is at hand.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

import samstream
from samstream.eval.clicks import first_click
from samstream.eval.metrics import jaccard
from samstream.model import SAM2Model
from samstream.train.config import OptimConfig, TrainConfig
from samstream.train.data import SynthVideoRange
from samstream.train.synthetic import SynthConfig, generate_video
from samstream.train.trainer import Trainer, build_trainer
from tests.helpers import small_config

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
SEED = 1_010_001  # a held-out synthetic video whose object 1 stays in view (test_default_model)


def _train_two_steps(model, frames: int, data_workers: int = 0):
    synth = SynthConfig(height=96, width=128, num_frames=10)
    cfg = TrainConfig(steps=2, frames=frames, max_stride=2, hard_prob=0.5, batch_size=2, data_workers=data_workers,
                      progress=False, optim=OptimConfig(base_lr=1e-4, vision_lr=1e-4))
    trainer = build_trainer(model, SynthVideoRange(0, 20, synth), cfg)
    before = [p.detach().clone() for p in model.parameters()]
    records = trainer.train()
    assert len(records) == 2
    for rec in records:
        assert np.isfinite(rec["core_loss"]) and rec["core_loss"] > 0, rec
    changed = sum(not torch.equal(b, p.detach()) for b, p in zip(before, model.parameters()))
    assert changed > len(before) // 2, f"only {changed} of {len(before)} parameter tensors changed"
    assert all(p.dtype == torch.float32 for p in model.parameters())  # autocast leaves the weights in fp32
    return records


@pytest.mark.parametrize("frames", [1, 4])
def test_training_steps_under_bf16_autocast_on_cpu(monkeypatch, frames):
    entered = []

    def cpu_autocast(self):
        entered.append(True)
        return torch.autocast("cpu", dtype=torch.bfloat16)

    monkeypatch.setattr(Trainer, "_autocast", cpu_autocast)
    torch.manual_seed(0)
    _train_two_steps(SAM2Model(small_config()), frames)
    assert len(entered) == 2


@cuda
def test_image_predictor_on_cuda_matches_cpu():
    vid = generate_video(SEED)
    click = first_click(vid.labels[0] == 1)
    outs = []
    for device in ("cpu", "cuda"):
        p = samstream.ImagePredictor(samstream.load_model(device=device))
        p.set_image(vid.frames[0])
        outs.append(p.predict([[click.x, click.y]], [1]))
    (m_cpu, s_cpu, low_cpu), (m_gpu, s_gpu, low_gpu) = outs
    assert np.allclose(s_cpu, s_gpu, atol=2e-2), (s_cpu, s_gpu)
    assert np.abs(low_cpu - low_gpu).mean() < 0.05
    for a, b in zip(m_cpu, m_gpu):
        assert jaccard(a, b) > 0.98


@cuda
def test_video_predictor_on_cuda_matches_cpu():
    vid = generate_video(SEED)
    click = first_click(vid.labels[0] == 1)
    masks = {}
    for device in ("cpu", "cuda"):
        with samstream.VideoPredictor(samstream.load_model(device=device), list(vid.frames[:10]),
                                      progress=False) as vp:
            vp.add_points(0, 1, [[click.x, click.y]], [1])
            masks[device] = [r.masks[0] for r in vp.propagate(0, "forward")]
    assert len(masks["cuda"]) == 10
    ious = [jaccard(a, b) if a.any() or b.any() else 1.0 for a, b in zip(masks["cpu"], masks["cuda"])]
    assert min(ious) > 0.95, ious
    gt = vid.labels[:10] == 1
    assert np.mean([jaccard(g, m) for g, m in zip(gt, masks["cuda"])]) > 0.75  # it tracks, on the GPU too


@cuda
@pytest.mark.parametrize("frames", [1, 4])
def test_training_steps_on_cuda_with_amp(frames):
    torch.manual_seed(0)
    _train_two_steps(SAM2Model(small_config()).cuda(), frames)


@cuda
def test_training_on_cuda_with_data_workers():
    torch.manual_seed(0)
    _train_two_steps(SAM2Model(small_config()).cuda(), 4, data_workers=2)
