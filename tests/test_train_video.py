"""Video-clip training (section 5.2): gradients reach the memory path, the loss falls when overfitting
a clip, the training forward tracks like VideoPredictor, resumed clip training is bit-for-bit."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from samstream.model import SAM2Model
from samstream.train.build import tiny_config
from samstream.train.data import Clip, ClipDataset, batch_clips, synthetic_videos
from samstream.train.optim import OptimConfig
from samstream.train.prompts import ClipPromptPlan, PromptConfig
from samstream.train.synthetic import SynthConfig, generate_video
from samstream.train.trainer import TrainConfig, Trainer
from samstream.train.video_step import clip_forward, select_training_memory
from samstream.transforms import preprocess_frame
from samstream.video import VideoPredictor
from tests.helpers import small_config


def _clip_from_video(vid, image_size: int, num_frames: int, objs: int = 2) -> Clip:
    frames = vid.frames[:num_frames]
    images = torch.stack([preprocess_frame(f, image_size) for f in frames])  # what the predictor computes
    ids = [o for o in vid.object_ids if vid.masks(o)[0].any()][:objs]
    masks = torch.from_numpy(np.stack([vid.masks(o)[:num_frames] for o in ids], 1))  # (T, O, H, W)
    return Clip(vid.name, images, masks, ids, list(range(num_frames)))


def _visible(model: SAM2Model) -> SAM2Model:
    """Random weights judge objects absent half the time, which would blank every mask: bias the
    object-score head towards "present" so that the masks depend on the memory."""
    with torch.no_grad():
        model.sam_mask_decoder.pred_obj_score_head.layers[-1].bias.fill_(8.0)
        model.maskmem_tpos_enc.normal_(0.0, 1.0)  # and make the temporal slots matter (init std is 0.02)
    return model


def _dataset(num_frames, seeds=(0, 1), augment=None):
    vids = synthetic_videos(list(seeds), SynthConfig(height=96, width=96, num_frames=6, max_objects=2,
                                                     num_distractors=0))
    return ClipDataset(vids, 128, num_frames=num_frames, max_objects=2, augment=augment)


def _cfg(steps, corrections=1, **kw):
    return TrainConfig(steps=steps, progress=False, prompts=PromptConfig(num_correction_clicks=corrections),
                       optim=OptimConfig(base_lr=1e-3, vision_lr=1e-3, grad_clip=1.0, warmup_steps=2), **kw)


def test_gradients_reach_memory_path():
    torch.manual_seed(0)
    model = _visible(SAM2Model(small_config())).train()
    vid = generate_video(3, SynthConfig(height=256, width=256, num_frames=3, max_objects=2, num_distractors=0))
    clip = _clip_from_video(vid, 256, 3)
    plan = ClipPromptPlan(True, [0], [0, 2], [])  # a click on frame 0; frame 2 tracked then corrected
    res = clip_forward(model, clip.images, clip.masks, plan, np.random.default_rng(0),
                       PromptConfig(num_correction_clicks=1))
    assert res.order == [0, 1, 2] and res.cond_frames == [0, 2]
    res.losses["core_loss"].backward()
    for prefix in ("memory_attention.", "memory_encoder.", "obj_ptr_proj.", "maskmem_tpos_enc"):
        grads = [p.grad for n, p in model.named_parameters() if n.startswith(prefix)]
        assert grads and any(g is not None and g.abs().sum() > 0 for g in grads), prefix


def test_training_memory_policy():
    """Training keeps the pointers of every conditioning frame, later ones included, with stride 1."""
    from dataclasses import replace

    cfg = replace(small_config(), memory_temporal_stride_for_eval=3)
    cond = {0: "c0", 4: "c4"}
    non_cond = {1: "n1", 2: "n2"}
    sel = select_training_memory(3, cond, non_cond, cfg, 6)
    assert [t for t, _, _ in sel.pointers] == [0, 4, 2, 1]
    assert [p for _, _, p in sel.pointers][:2] == [3, -1]  # signed temporal distance (2.1)
    assert [(t, s) for t, _, s in sel.spatial] == [(0, 6), (4, 6), (1, 1), (2, 0)]  # stride 1 reaches frame 1


def test_loss_falls_when_overfitting_a_clip():
    torch.manual_seed(0)
    model = SAM2Model(tiny_config())
    ds = _dataset(3, seeds=(4,))
    trainer = Trainer(model, ds, _cfg(30, corrections=1))
    rng = np.random.default_rng(7)
    clip = ds.sample(rng)
    plan = ClipPromptPlan(True, [0], [0], [])

    def fixed_loss():
        model.eval()
        with torch.no_grad():
            loss = clip_forward(model, clip.images, clip.masks, plan, np.random.default_rng(1),
                                PromptConfig(num_correction_clicks=1))
        return float(loss.losses["core_loss"])

    before = fixed_loss()
    trainer.dataset.sample = lambda _rng: clip  # overfit this one clip (prompts still drawn per step)
    records = trainer.train()
    after = fixed_loss()
    assert all(np.isfinite(r["core_loss"]) for r in records)
    assert after < 0.5 * before, (before, after)


def test_training_forward_matches_video_predictor(monkeypatch):
    """Same weights, same first-frame clicks, no corrections: the training forward's masks on the
    tracked frames are the predictor's (float32 memories, no binarisation, no hole filling)."""
    torch.manual_seed(0)
    model = _visible(SAM2Model(small_config())).eval()
    t_len = 4
    vid = generate_video(0, SynthConfig(height=256, width=256, num_frames=t_len, min_objects=2, max_objects=2,
                                         num_distractors=0))
    clip = _clip_from_video(vid, 256, t_len)
    n_obj = clip.masks.shape[1]
    assert n_obj == 2
    plan = ClipPromptPlan(True, [0], [], [])
    with torch.no_grad():
        res = clip_forward(model, clip.images, clip.masks, plan, np.random.default_rng(0), PromptConfig())
    coords, labels = res.prompts[0]

    vp = VideoPredictor(model, vid.frames[:t_len], memory_dtype=torch.float32, history="all", fill_hole_area=0,
                        progress=False, attention_batch=n_obj)
    vp.tracker.binarize_prompted = False  # training encodes soft masks
    for o in range(n_obj):
        vp.add_points(0, o + 1, points=coords[o].numpy(), labels=labels[o].numpy())
    list(vp.propagate())
    worst = 0.0
    for t in range(1, t_len):
        ours = res.outputs[t].low_res_masks[:, 0]
        theirs = torch.cat([vp.state.objects[o + 1].non_cond[t].pred_masks for o in range(n_obj)])[:, 0]
        assert ours.std() > 0.01 and (ours > -100).all()  # not blanked: objects judged present
        worst = max(worst, float((ours - theirs).abs().max()))
        ptr_ours = res.outputs[t].obj_ptr
        ptr_theirs = torch.cat([vp.state.objects[o + 1].non_cond[t].obj_ptr for o in range(n_obj)])
        torch.testing.assert_close(ptr_ours, ptr_theirs, rtol=1e-4, atol=1e-4)
        assert torch.equal(ours > 0, theirs > 0) or (ours > 0).ne(theirs > 0).float().mean() < 1e-3
    # differences are float rounding only (frames encoded as a batch of T vs one by one)
    tol = 2e-6  # measured ~1.2e-7: float rounding only (frames encoded as one batch of T vs one by one)
    assert worst < tol, worst

    # the tolerance still catches a wrong memory assembly: a shifted temporal slot or lost pointers
    import samstream.train.video_step as vs

    real = vs.select_training_memory
    for wrong in (lambda sel: [(t, o, min(s + 1, 6)) for t, o, s in sel.spatial], None):
        def broken(*a, wrong=wrong, **k):
            sel = real(*a, **k)
            if wrong is None:
                sel.pointers = sel.pointers[:1]
            else:
                sel.spatial = wrong(sel)
            return sel

        monkeypatch.setattr(vs, "select_training_memory", broken)
        with torch.no_grad():
            bad = clip_forward(model, clip.images, clip.masks, plan, np.random.default_rng(0), PromptConfig())
        diff = max(float((bad.outputs[t].low_res_masks - res.outputs[t].low_res_masks).abs().max())
                   for t in range(2, t_len))
        assert diff > 25 * tol, diff  # measured 4e-4 (slot) and 1.5e-4 (pointers) with these weights


def test_resume_is_bit_for_bit_on_clips(tmp_path):
    from samstream.train.augment import AugmentConfig

    def model():
        torch.manual_seed(0)
        return SAM2Model(tiny_config())

    aug = AugmentConfig()
    straight = model()
    Trainer(straight, _dataset(3, augment=aug), _cfg(4)).train()
    first = model()
    t1 = Trainer(first, _dataset(3, augment=aug), _cfg(4))
    t1.train(until=2)
    t1.save(tmp_path / "ck.pt")
    torch.manual_seed(999)
    resumed = SAM2Model(tiny_config())
    t2 = Trainer(resumed, _dataset(3, augment=aug), _cfg(4))
    t2.load(tmp_path / "ck.pt")
    t2.train()
    assert any(not torch.equal(a, b) for a, b in zip(first.parameters(), resumed.parameters()))
    for (n, a), (_, b) in zip(straight.named_parameters(), resumed.named_parameters()):
        assert torch.equal(a, b), n


def test_cli_trains_on_clips(tmp_path):
    from samstream.cli import run as main

    out = tmp_path / "run"
    rc = main(["train", "--config", "tiny", "--data", "synthetic", "--frames", "3", "--steps", "2",
               "--out", str(out), "--corrections", "1", "--no-augment", "--quiet", "--device", "cpu"])
    assert rc == 0 and (out / "checkpoint.pt").is_file()


@pytest.mark.parametrize("use_points", [False, True])
def test_a_batch_of_clips_is_its_clips_side_by_side(use_points):
    """clip_forward on batch_clips([a, b]): every object's masks and pointers on every frame are those of its clip
    run alone, and the losses are the clips' losses weighted by their objects (one normalisation for the
    batch). Mask prompts draw nothing; clicks on frame 0 draw from one RNG stream in object order (a's, then b's)."""
    torch.manual_seed(0)
    model = _visible(SAM2Model(small_config())).eval()
    vids = [generate_video(s, SynthConfig(height=256, width=256, num_frames=3, min_objects=k, max_objects=k,
                                          num_distractors=0)) for s, k in ((0, 2), (5, 1))]
    clips = [_clip_from_video(v, 256, 3) for v in vids]
    n = [c.masks.shape[1] for c in clips]
    plan = ClipPromptPlan(use_points, [0], [], [])
    batch = batch_clips(clips)
    assert batch.images.shape[:2] == (2, 3) and batch.clip_of.tolist() == [0] * n[0] + [1] * n[1]
    with torch.no_grad():
        r = np.random.default_rng(0)
        alone = [clip_forward(model, c.images, c.masks, plan, r) for c in clips]
        both = clip_forward(model, batch.images, batch.masks, plan, np.random.default_rng(0), clip_of=batch.clip_of)
    for t in range(3):
        for key in ("low_res_masks", "obj_ptr", "object_score_logits"):
            want = torch.cat([getattr(a.outputs[t], key) for a in alone])
            torch.testing.assert_close(getattr(both.outputs[t], key), want, rtol=1e-4, atol=1e-4)
    assert float(alone[0].outputs[2].low_res_masks.std()) > 0.01  # tracked masks carry signal
    for k, v in both.losses.items():
        torch.testing.assert_close(v, sum(a.losses[k] * m for a, m in zip(alone, n)) / sum(n), rtol=1e-4, atol=1e-6)
