"""Trainer: the loss falls when overfitting, resumed runs continue bit-for-bit, freezing works,
optimiser groups and schedule follow the official recipe."""
from __future__ import annotations

import json
import math

import pytest
import torch

from samstream.model import SAM2Model
from samstream.train.build import tiny_config
from samstream.train.data import ClipDataset, synthetic_videos
from samstream.train.optim import OptimConfig, lr_factor, lr_scale, param_groups
from samstream.train.prompts import PromptConfig
from samstream.train.synthetic import SynthConfig
from samstream.train.trainer import TrainConfig, Trainer, evaluate_loss


def _dataset(seeds=(0, 1), augment=None):
    vids = synthetic_videos(list(seeds), SynthConfig(height=96, width=96, num_frames=2, max_objects=2,
                                                     num_distractors=0))
    return ClipDataset(vids, 128, num_frames=1, max_objects=2, augment=augment)


def _cfg(steps, **kw):
    return TrainConfig(steps=steps, progress=False, prompts=PromptConfig(num_correction_clicks=1),
                       optim=OptimConfig(base_lr=1e-3, vision_lr=1e-3, grad_clip=1.0, warmup_steps=2), **kw)


def _model():
    torch.manual_seed(0)
    return SAM2Model(tiny_config())


def test_loss_falls_when_overfitting(tmp_path):
    model, ds = _model(), _dataset()
    pc = PromptConfig(num_correction_clicks=1)
    before = evaluate_loss(model, ds, num_clips=4, seed=5, pcfg=pc)
    trainer = Trainer(model, ds, _cfg(12), tmp_path)
    trainer.train()
    after = evaluate_loss(model, ds, num_clips=4, seed=5, pcfg=pc)
    assert after < 0.5 * before, (before, after)
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 12 and {"core_loss", "loss_mask", "lr", "grad_norm"} <= set(json.loads(lines[0]))
    assert (tmp_path / "loss_curves.png").stat().st_size > 1000
    assert (tmp_path / "checkpoint.pt").is_file()


def test_evaluate_loss_builds_no_graph_and_keeps_the_mode(monkeypatch):
    """evaluate_loss runs the losses without autograd and in eval mode, then restores the model's mode."""
    from samstream.train import trainer as trainer_mod

    seen, real = [], trainer_mod.image_losses

    def spy(model, *a, **kw):
        seen.append((torch.is_grad_enabled(), model.training))
        return real(model, *a, **kw)

    monkeypatch.setattr(trainer_mod, "image_losses", spy)
    model = _model()
    model.train()
    evaluate_loss(model, _dataset(), num_clips=2, seed=1)
    assert seen == [(False, False)] * 2 and model.training and torch.is_grad_enabled()


@pytest.mark.parametrize("batch_size", [1, 2])
def test_resume_is_bit_for_bit(tmp_path, batch_size):
    from samstream.train.augment import AugmentConfig

    aug = AugmentConfig()  # augmentation and prompts draw from the saved RNG too
    straight = _model()
    Trainer(straight, _dataset(augment=aug), _cfg(4, batch_size=batch_size)).train()

    first = _model()
    t1 = Trainer(first, _dataset(augment=aug), _cfg(4, batch_size=batch_size))
    t1.train(until=2)
    t1.save(tmp_path / "ck.pt")
    torch.manual_seed(999)  # the resumed run must not depend on the state the process is in
    resumed = SAM2Model(tiny_config())
    t2 = Trainer(resumed, _dataset(augment=aug), _cfg(4, batch_size=batch_size))
    t2.load(tmp_path / "ck.pt")
    assert t2.step == 2
    t2.train()
    assert any(not torch.equal(a, b) for a, b in zip(first.parameters(), resumed.parameters()))  # trained on
    for (n, a), (_, b) in zip(straight.named_parameters(), resumed.named_parameters()):
        assert torch.equal(a, b), n


def test_frozen_image_encoder_unchanged():
    model = _model()
    enc = {k: v.clone() for k, v in model.image_encoder.state_dict().items()}
    dec = {k: v.clone() for k, v in model.sam_mask_decoder.state_dict().items()}
    Trainer(model, _dataset(), _cfg(2, freeze_image_encoder=True)).train()
    assert all(torch.equal(v, model.image_encoder.state_dict()[k]) for k, v in enc.items())
    assert any(not torch.equal(v, model.sam_mask_decoder.state_dict()[k]) for k, v in dec.items())


def test_train_only_prefixes():
    model = _model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    head = ("sam_mask_decoder.iou_token", "sam_mask_decoder.iou_prediction_head")
    t = Trainer(model, _dataset(), _cfg(2, train_only=head))
    assert model.image_encoder in t.frozen_parts and model.sam_mask_decoder not in t.frozen_parts
    t.train()
    changed = {k for k, v in model.state_dict().items() if not torch.equal(v, before[k])}
    assert changed and all(k.startswith(head) for k in changed), changed
    assert {"sam_mask_decoder.iou_token.weight", "sam_mask_decoder.iou_prediction_head.layers.2.weight"} <= changed
    with pytest.raises(ValueError, match="no trainable parameters"):
        Trainer(_model(), _dataset(), _cfg(2, train_only=("no_such_module.",)))


def test_load_rejects_model_only_file(tmp_path):
    from samstream.checkpoint import save_model

    model = _model()
    save_model(model, tmp_path / "m.pt")
    with pytest.raises(ValueError, match="not a training checkpoint"):
        Trainer(model, _dataset(), _cfg(1)).load(tmp_path / "m.pt")


def test_param_groups_follow_recipe():
    model = _model()
    n = len(model.image_encoder.trunk.blocks)
    assert lr_scale("image_encoder.trunk.blocks.0.mlp.layers.0.weight", n, 0.9) == pytest.approx(0.9 ** n)
    assert lr_scale(f"image_encoder.trunk.blocks.{n - 1}.attn.qkv.weight", n, 0.9) == pytest.approx(0.9)
    assert lr_scale("image_encoder.trunk.patch_embed.proj.weight", n, 0.9) == pytest.approx(0.9 ** (n + 1))
    assert lr_scale("image_encoder.trunk.pos_embed", n, 0.9) == 1.0
    assert lr_scale("sam_mask_decoder.iou_prediction_head.layers.0.weight", n, 0.9) == 1.0
    cfg = OptimConfig(base_lr=1.0, vision_lr=0.5)
    lookup = {name: (g["lr"], g["weight_decay"]) for g in param_groups(model, cfg) for name in g["names"]}
    assert lookup["image_encoder.trunk.blocks.0.attn.qkv.bias"] == (pytest.approx(0.5 * 0.9 ** n), 0.0)
    assert lookup["image_encoder.trunk.blocks.0.norm1.weight"][1] == 0.0  # nn.LayerNorm
    assert lookup["image_encoder.neck.convs.0.conv.weight"] == (0.5, 0.1)
    assert lookup["sam_mask_decoder.transformer.layers.0.norm1.weight"] == (1.0, 0.0)
    assert lookup["no_mem_embed"] == (1.0, 0.1)
    assert len(lookup) == sum(1 for _ in model.parameters())


def test_schedule_warmup_then_cosine():
    assert lr_factor(0, 100, 10) == pytest.approx(0.1)
    assert lr_factor(9, 100, 10) == pytest.approx(1.0)
    assert lr_factor(10, 100, 10) == pytest.approx(1.0)
    assert lr_factor(55, 100, 10) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert lr_factor(100, 100, 10) == pytest.approx(0.1)


def test_video_clips_need_a_video_step():
    vids = synthetic_videos([0], SynthConfig(height=64, width=64, num_frames=3, num_distractors=0))
    t = Trainer(_model(), ClipDataset(vids, 128, num_frames=3, augment=None), _cfg(1))
    t.video_step = None  # the default is samstream.train.video_step (tests/test_train_video.py)
    with pytest.raises(NotImplementedError, match="video_step"):
        t.train()


def test_loss_curves_draw_a_running_median(tmp_path):
    import numpy as np

    from samstream.train.trainer import plot_losses, running_median

    y = np.array([1.0, 100.0, 2.0, 3.0, 1000.0, 4.0])
    np.testing.assert_array_equal(running_median(y, 3), [2.0, 3.0, 3.0, 4.0])  # one outlier per window is ignored
    np.testing.assert_array_equal(running_median(y, 1), y)
    # a long run (window > 1) plots without error and writes the figure
    pytest.importorskip("matplotlib")  # a test extra: present in CI
    recs = [{"step": i + 1, "core_loss": float(1 + (i % 7) * 10), "loss_mask": 0.0} for i in range(200)]
    metrics = tmp_path / "metrics.jsonl"
    metrics.write_text("\n".join(json.dumps(r) for r in recs) + "\n")
    out = plot_losses(metrics, tmp_path / "loss_curves.png")
    assert out is not None and out.is_file() and out.stat().st_size > 1000


def test_a_batch_of_single_frames_is_its_clips_side_by_side():
    """image_losses on batch_clips([a, b]) (one plan, no correction clicks): the losses of a and b alone, weighted
    by their objects, with the same click draws (one RNG stream: a's objects, then b's)."""
    import numpy as np

    from samstream.train.data import batch_clips
    from samstream.train.losses import LossWeights
    from samstream.train.prompts import ClipPromptPlan
    from samstream.train.trainer import image_losses

    model, ds = _model().eval(), _dataset()
    rng = np.random.default_rng(3)
    clips = [ds.sample(rng) for _ in range(2)]
    n = [int(c.masks[0].flatten(1).any(1).sum()) for c in clips]
    plan, pc, w = ClipPromptPlan(True, [0], [], []), PromptConfig(num_correction_clicks=0), LossWeights()
    with torch.no_grad():
        r = np.random.default_rng(0)
        alone = [image_losses(model, c, r, plan, pc, w, True) for c in clips]
        both = image_losses(model, batch_clips(clips), np.random.default_rng(0), plan, pc, w, True)
    for k, v in both.items():
        torch.testing.assert_close(v, sum(a[k] * m for a, m in zip(alone, n)) / sum(n), rtol=1e-4, atol=1e-6)


def test_batch_size_option():
    """batch_size clips per step: their objects are counted together; bad sizes and mixed lengths are refused."""
    from samstream.train.data import batch_clips

    t = Trainer(_model(), _dataset(), _cfg(2, batch_size=3))
    recs = t.train()
    assert len(recs) == 2 and all(r["objects"] >= 3 for r in recs)  # 3 clips, each with at least one object
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        Trainer(_model(), _dataset(), _cfg(2, batch_size=0))
    a = _dataset().sample(__import__("numpy").random.default_rng(0))
    b = ClipDataset(_dataset().videos, 128, num_frames=2).sample(__import__("numpy").random.default_rng(0))
    with pytest.raises(ValueError, match=r"same number of frames, got \[1, 2\]"):
        batch_clips([a, b])


def test_data_workers_draw_the_per_step_seeded_stream(tmp_path):
    """With data workers, step s's clips depend on (seed, s) only: 2 worker processes train exactly as drawing
    in-process (train_step without train()), and a resumed run continues bit-for-bit."""
    from samstream.train.augment import AugmentConfig

    aug = AugmentConfig()
    pooled = _model()
    Trainer(pooled, _dataset(augment=aug), _cfg(4, batch_size=2, data_workers=2)).train()
    inline = _model()
    t = Trainer(inline, _dataset(augment=aug), _cfg(4, batch_size=2, data_workers=2))
    for _ in range(4):
        t.train_step()
    for (n, a), (_, b) in zip(pooled.named_parameters(), inline.named_parameters()):
        assert torch.equal(a, b), n
    plain = _model()
    Trainer(plain, _dataset(augment=aug), _cfg(4, batch_size=2)).train()  # the one-stream draw differs
    assert any(not torch.equal(a, b) for a, b in zip(plain.parameters(), pooled.parameters()))
    first = _model()
    t1 = Trainer(first, _dataset(augment=aug), _cfg(4, batch_size=2, data_workers=1))
    t1.train(until=2)
    t1.save(tmp_path / "ck.pt")
    resumed = _model()
    t2 = Trainer(resumed, _dataset(augment=aug), _cfg(4, batch_size=2, data_workers=2))
    t2.load(tmp_path / "ck.pt")
    t2.train()
    for (n, a), (_, b) in zip(pooled.named_parameters(), resumed.named_parameters()):
        assert torch.equal(a, b), n
    with pytest.raises(ValueError, match="data_workers must be >= 0"):
        Trainer(_model(), _dataset(), _cfg(2, data_workers=-1))


def test_clip_loader_serves_steps_in_order():
    from samstream.train.loader import ClipLoader, draw_batch

    ds = _dataset()
    with ClipLoader(ds, seed=7, batch_size=2, workers=1, start=5, prefetch=2) as loader:
        got = loader.get(5)
        with pytest.raises(ValueError, match="asked for step 7, next is 6"):
            loader.get(7)
        assert loader.get(6).name == draw_batch(ds, 7, 6, 2).name
    want = draw_batch(ds, 7, 5, 2)
    assert got.name == want.name and torch.equal(got.images, want.images) and torch.equal(got.masks, want.masks)
    with pytest.raises(ValueError, match="at least 1 worker"):
        ClipLoader(ds, 0, 1, 0)


def test_a_clip_no_trainable_parameter_reaches_is_a_counted_skipped_step(tmp_path):
    """With only the memory encoder trainable, single frames give it no gradient: each step is logged as
    skipped (no crash), the step counter and schedule move on, and no weight changes."""
    model = _model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    t = Trainer(model, _dataset(), _cfg(3, train_only=("memory_encoder.",)), tmp_path)
    recs = t.train()
    assert [r["step"] for r in recs] == [1, 2, 3] and all(r["skipped"] and r["grad_norm"] == 0 for r in recs)
    assert recs[0]["lr"] < recs[1]["lr"]  # the warm-up schedule moved on
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    logged = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [(r["step"], r["skipped"]) for r in logged] == [(1, True), (2, True), (3, True)]
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=False)["step"] == 3


def test_a_failed_checkpoint_save_keeps_the_previous_one(tmp_path, monkeypatch):
    t = Trainer(_model(), _dataset(), _cfg(2), tmp_path)
    t.train(until=1)
    before = (tmp_path / "checkpoint.pt").read_bytes()
    real = torch.save

    def disk_full(obj, f, *a, **kw):
        real({"partial": torch.zeros(3)}, f)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(OSError, match="No space left"):
        t.save(tmp_path / "checkpoint.pt")
    monkeypatch.undo()
    assert (tmp_path / "checkpoint.pt").read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == [
        "checkpoint.pt", "loss_curves.png", "metrics.jsonl"]
    resumed = Trainer(_model(), _dataset(), _cfg(2))
    resumed.load(tmp_path / "checkpoint.pt")
    assert resumed.step == 1


def test_metrics_keep_each_step_up_to_the_checkpoint_once(tmp_path):
    from samstream.train.run_folder import truncate_metrics

    path = tmp_path / "metrics.jsonl"
    recs = [{"step": 1, "v": 1}, {"step": 2, "v": 1}, {"step": 3, "v": 1}, {"step": 2, "v": 2}, "not a record",
            {"v": 0}, {"step": 4, "v": 1}]
    path.write_text("".join(json.dumps(r) + "\n" for r in recs) + '{"step": 5, "v"')
    truncate_metrics(path, 3)
    assert [json.loads(line) for line in path.read_text().splitlines()] == [
        {"step": 1, "v": 1}, {"step": 2, "v": 2}, {"step": 3, "v": 1}]  # the latest record of a step wins
    truncate_metrics(path, 0)
    assert path.read_text() == ""
    truncate_metrics(tmp_path / "none.jsonl", 3)
    assert not (tmp_path / "none.jsonl").exists()
