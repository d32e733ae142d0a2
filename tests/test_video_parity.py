"""Video: parity with Meta's SAM2VideoPredictor on the same (perturbed random) weights, fp32 on CPU.

Real frames (DAVIS blackswan), bf16 memory storage on both sides, post-processing on and off. The
full interaction scenarios run at a reduced input size (the official tiny architecture and weights,
image_size 512 / 256: every code path is the same, the CPU time 4-16x lower; set
SAMSTREAM_VIDEO_PARITY_SIZES to run them at other sizes); a shorter scenario runs at the official 1024.

The reference stores memories in bf16 and relies on CUDA autocast to mix them with fp32 weights; on
CPU its memory attention is wrapped to upcast them (ORACLE.md), which is what it computes whenever
object pointers are present.
"""
from __future__ import annotations

import dataclasses
import os

import numpy as np
import pytest
import torch

from samstream.checkpoint import load_into
from samstream.model import SAM2Model, official_config
from samstream.video import VideoPredictor
from samstream.video.compat import SAM2VideoPredictor
from tests.helpers import BLACKSWAN, copy_frames
from tests.oracle import YAML, reference_state_dict, require_oracle

pytestmark = pytest.mark.oracle

NAME = "sam2.1_hiera_tiny"
ATOL = 1e-3
_ENV = os.environ.get("SAMSTREAM_VIDEO_PARITY_SIZES")  # e.g. "1024,512": run every scenario at those sizes


def sizes(default: int) -> list[int]:
    return [int(v) for v in _ENV.split(",")] if _ENV else [default]


@pytest.fixture(scope="module")
def sd():
    return reference_state_dict(NAME)


@pytest.fixture(scope="module", autouse=True)
def upcast_reference_memory():
    require_oracle()
    import sam2.modeling.memory_attention as ma

    orig = ma.MemoryAttention.forward

    def forward(self, curr, memory, curr_pos=None, memory_pos=None, num_obj_ptr_tokens=0):
        return orig(self, curr, memory.float(), curr_pos, memory_pos.float(), num_obj_ptr_tokens)

    ma.MemoryAttention.forward = forward
    yield
    ma.MemoryAttention.forward = orig


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """The first 8 frames of blackswan, in the JPEG folder layout the reference needs."""
    return copy_frames(BLACKSWAN, tmp_path_factory.mktemp("blackswan8"), 8)


def build_pair(sd, size: int, post: bool):
    from sam2.build_sam import build_sam2_video_predictor

    over = [] if size == 1024 else [f"++model.image_size={size}"]
    ref = build_sam2_video_predictor(YAML[NAME], None, device="cpu", hydra_overrides_extra=over,
                                     apply_postprocessing=post)
    ref.load_state_dict(sd, strict=True)
    cfg = dataclasses.replace(official_config(NAME), image_size=size).with_postprocessing(post)
    ours = SAM2Model(cfg)
    load_into(ours, sd)
    return ref.eval(), ours.eval()


# ------------------------------------------------------------------------------------------ comparison
def ref_scores(state, frame: int, pending: bool = False) -> list[float]:
    """Object scores the reference stored for every object on a frame (temp outputs first when pending)."""
    out = []
    for idx in range(len(state["obj_ids"])):
        dicts = [state["output_dict_per_obj"][idx]]
        if pending:
            dicts.insert(0, state["temp_output_dict_per_obj"][idx])
        o = None
        for d in dicts:
            o = d["cond_frame_outputs"].get(frame) or d["non_cond_frame_outputs"].get(frame)
            if o is not None:
                break
        out.append(float("nan") if o is None else float(o["object_score_logits"]))
    return out


def compare(tag, ref_masks, ref_ids, ref_sc, masks, ids, sc, stats):
    """ref_masks / masks: (O, H, W) logits; ids; scores (O,). Asserts the parity criteria."""
    ref_masks = torch.as_tensor(ref_masks).float().reshape(len(ref_ids), *ref_masks.shape[-2:])
    masks = torch.as_tensor(masks).float().reshape(len(ids), *masks.shape[-2:])
    assert list(ids) == list(ref_ids), tag
    diff = (ref_masks - masks).abs().max().item()
    agree = ((ref_masks > 0) == (masks > 0)).float().mean().item()
    assert diff <= ATOL, f"{tag}: max |logit difference| {diff:.2e}"
    assert agree >= 0.999, f"{tag}: binarised masks agree on {agree:.5f} of pixels"
    for o, (a, b) in enumerate(zip(ref_sc, sc)):
        if not np.isnan(a):
            assert np.sign(a) == np.sign(b), f"{tag}: object {ids[o]} score {b} vs reference {a}"
    for o in range(len(ids)):
        if not np.isnan(ref_sc[o]) and ref_sc[o] > 0:
            frac = (masks[o] > 0).float().mean().item()
            assert 0.0 < frac < 1.0, f"{tag}: object {ids[o]} mask covers {frac:.3f} of the frame"
            stats["visible"] += 1
    stats["outputs"] += 1
    stats["max_diff"] = max(stats["max_diff"], diff)


def compat_scores(pred: SAM2VideoPredictor, state, frame: int) -> list[float]:
    s = state.session
    outs = [s._frame_output(o, frame) for o in s.state.objects.values()]
    return [float("nan") if o is None else float(o.score) for o in outs]


# ------------------------------------------------------------------------------------------ scenarios
CLICK = dict(points=[[430, 230]], labels=[1])  # on the swan
BOX = dict(box=[330, 110, 560, 350])
FIX = dict(points=[[470, 300]], labels=[0])


def _check_nonvacuous(stats):
    assert stats["outputs"] >= 19 and stats["visible"] >= 19, stats


@pytest.mark.parametrize("size", sizes(512))
def test_scenario_clean_api_postprocessing_on(sd, clip, size):
    """Two objects, a click on frame 0, a box on frame 3, forward propagation, a correction click on frame 5
    after it (a conditioning frame, as the reference does with add_all_frames_to_correct_as_cond), a
    backward pass from the last frame; builders' default post-processing. Our clean API."""
    ref, model = build_pair(sd, size, post=True)
    ref.add_all_frames_to_correct_as_cond = True
    rs = ref.init_state(str(clip))
    vp = VideoPredictor(model, clip, progress=False)  # defaults: bf16 memory, corrections as conditioning
    stats = dict(outputs=0, visible=0, max_diff=0.0)

    _, ids, m = ref.add_new_points_or_box(rs, 0, 1, **CLICK)
    r = vp.add_points(0, 1, CLICK["points"], CLICK["labels"])
    compare("click f0", m[0], [1], ref_scores(rs, 0, True), r.logits, [1], [r.score], stats)
    _, ids, m = ref.add_new_points_or_box(rs, 3, 2, **BOX)
    r = vp.add_box(3, 2, BOX["box"])
    compare("box f3", m[1], [2], ref_scores(rs, 3, True)[1:], r.logits, [2], [r.score], stats)

    for (f, ids, m), r in zip(ref.propagate_in_video(rs), vp.propagate(), strict=True):
        assert f == r.frame_idx
        compare(f"forward f{f}", m, ids, ref_scores(rs, f), r.logits, r.obj_ids, r.scores, stats)

    _, ids, m = ref.add_new_points_or_box(rs, 5, 1, clear_old_points=False, **FIX)
    r = vp.add_points(5, 1, FIX["points"], FIX["labels"], clear=False)
    compare("correction f5", m[0], [1], ref_scores(rs, 5, True)[:1], r.logits, [1], [r.score], stats)

    got = list(vp.propagate(start=7, direction="backward"))
    exp = list(ref.propagate_in_video(rs, start_frame_idx=7, reverse=True))
    assert [f for f, _, _ in exp] == [r.frame_idx for r in got] == list(range(7, -1, -1))
    for (f, ids, m), r in zip(exp, got):
        compare(f"backward f{f}", m, ids, ref_scores(rs, f), r.logits, r.obj_ids, r.scores, stats)
    _check_nonvacuous(stats)


@pytest.mark.parametrize("size", sizes(256))
def test_scenario_compat_api_postprocessing_off(sd, clip, size):
    """The same scenario through the official API (corrections stay ordinary tracked frames, as the
    reference's default), without post-processing."""
    ref, model = build_pair(sd, size, post=False)
    ours = SAM2VideoPredictor(model)
    rs, st = ref.init_state(str(clip)), ours.init_state(str(clip))
    assert (st["num_frames"], st["video_height"], st["video_width"]) == (8, 480, 854)
    stats = dict(outputs=0, visible=0, max_diff=0.0)

    def prompt(tag, frame, obj, **kw):
        f1, ids1, m1 = ref.add_new_points_or_box(rs, frame, obj, **kw)
        f2, ids2, m2 = ours.add_new_points_or_box(st, frame, obj, **kw)
        assert f1 == f2 and m2.shape == m1.shape and m2.dtype == torch.float32
        compare(tag, m1, ids1, ref_scores(rs, frame, True), m2, ids2, compat_scores(ours, st, frame), stats)

    def propagate(tag, **kw):
        exp = list(ref.propagate_in_video(rs, **kw))
        got = [(f, ids, m.clone()) for f, ids, m in ours.propagate_in_video(st, **kw)]
        assert [e[0] for e in exp] == [g[0] for g in got]
        for (f, ids1, m1), (_, ids2, m2) in zip(exp, got):
            compare(f"{tag} f{f}", m1, ids1, ref_scores(rs, f), m2, ids2, compat_scores(ours, st, f), stats)

    prompt("click f0", 0, 1, **CLICK)
    prompt("box f3", 3, 2, **BOX)
    propagate("forward")
    prompt("correction f5", 5, 1, clear_old_points=False, **FIX)
    propagate("backward", start_frame_idx=7, reverse=True)
    _check_nonvacuous(stats)


@pytest.mark.parametrize("size", sizes(256))
def test_interactions_compat_api(sd, clip, size):
    """Objects added after propagation (a mask prompt), both directions, clearing prompts, removing
    objects, a limited propagation and a reset: the same call sequence on both implementations."""
    ref, model = build_pair(sd, size, post=True)
    ours = SAM2VideoPredictor(model)
    rs, st = ref.init_state(str(clip)), ours.init_state(str(clip))
    stats = dict(outputs=0, visible=0, max_diff=0.0)

    def both(call, *args, **kw):
        return getattr(ref, call)(rs, *args, **kw), getattr(ours, call)(st, *args, **kw)

    def check_triple(tag, a, b):
        (f1, ids1, m1), (f2, ids2, m2) = a, b
        assert f1 == f2
        compare(tag, m1, ids1, ref_scores(rs, f1, True), m2, ids2, compat_scores(ours, st, f1), stats)

    def propagate(tag, **kw):
        exp = list(ref.propagate_in_video(rs, **kw))
        got = [(f, ids, m.clone()) for f, ids, m in ours.propagate_in_video(st, **kw)]
        assert [e[0] for e in exp] == [g[0] for g in got], tag
        for (f, ids1, m1), (_, ids2, m2) in zip(exp, got):
            compare(f"{tag} f{f}", m1, ids1, ref_scores(rs, f), m2, ids2, compat_scores(ours, st, f), stats)
        return len(exp)

    check_triple("click f2", *both("add_new_points_or_box", 2, 1, **CLICK))
    assert propagate("first") == 6  # frames 2..7
    mask = np.zeros((480, 854), bool)
    mask[150:330, 380:600] = True
    check_triple("mask f4 after propagation", *both("add_new_mask", 4, 2, mask))
    assert propagate("with new object") == 6
    assert propagate("backward", start_frame_idx=4, reverse=True) == 5
    check_triple("obj 3 f6", *both("add_new_points_or_box", 6, 3, points=[[200, 100]], labels=[1]))
    check_triple("cleared", *both("clear_all_prompts_in_frame", 6, 3))
    (ids1, up1), (ids2, up2) = both("remove_object", 3)
    assert ids1 == ids2 == [1, 2] and up1 == up2 == []  # its only prompt was cleared
    (ids1, up1), (ids2, up2) = both("remove_object", 1)
    assert ids1 == ids2 == [2] and [f for f, _ in up1] == [f for f, _ in up2] == [2]
    compare("after removal f2", up1[0][1], [2], [float("nan")], up2[0][1], [2], [float("nan")], stats)
    assert propagate("limited", start_frame_idx=0, max_frame_num_to_track=3) == 4
    both("reset_state")
    assert rs["obj_ids"] == st["obj_ids"] == []
    check_triple("box after reset", *both("add_new_points_or_box", 1, 5, **BOX))
    assert propagate("after reset") == 7
    _check_nonvacuous(stats)


def test_official_resolution_1024(sd, clip):
    """The official input size: two objects, a click and a box on frame 0, two tracked frames."""
    ref, model = build_pair(sd, 1024, post=True)
    ours = SAM2VideoPredictor(model)
    rs, st = ref.init_state(str(clip)), ours.init_state(str(clip))
    stats = dict(outputs=0, visible=0, max_diff=0.0)
    for obj, kw in ((1, CLICK), (2, BOX)):
        (_, ids1, m1), (_, ids2, m2) = (api.add_new_points_or_box(s, 0, obj, **kw)
                                        for api, s in ((ref, rs), (ours, st)))
        compare(f"prompt {obj}", m1, ids1, ref_scores(rs, 0, True), m2, ids2, compat_scores(ours, st, 0), stats)
    exp = list(ref.propagate_in_video(rs, max_frame_num_to_track=2))
    got = [(f, ids, m.clone()) for f, ids, m in ours.propagate_in_video(st, max_frame_num_to_track=2)]
    assert [e[0] for e in exp] == [g[0] for g in got] == [0, 1, 2]
    for (f, ids1, m1), (_, ids2, m2) in zip(exp, got):
        compare(f"f{f}", m1, ids1, ref_scores(rs, f), m2, ids2, compat_scores(ours, st, f), stats)
    assert stats["visible"] >= 6


def test_sam20_checkpoint_tracking(clip):
    """SAM 2.0 tracks with untimed pointers and without the no-object spatial embedding: forward from a
    click and a box, then backward from the box's frame."""
    name = "sam2_hiera_tiny"
    sd20 = reference_state_dict(name)
    from sam2.build_sam import build_sam2_video_predictor

    ref = build_sam2_video_predictor(YAML[name], None, device="cpu", hydra_overrides_extra=["++model.image_size=256"])
    ref.load_state_dict(sd20, strict=True)
    ref.eval()
    model = SAM2Model(dataclasses.replace(official_config(name), image_size=256))
    load_into(model, sd20)
    ours = SAM2VideoPredictor(model.eval())
    rs, st = ref.init_state(str(clip)), ours.init_state(str(clip))
    stats = dict(outputs=0, visible=0, max_diff=0.0)
    for frame, obj, kw in ((0, 1, CLICK), (4, 2, BOX)):
        (_, ids1, m1), (_, ids2, m2) = (api.add_new_points_or_box(s, frame, obj, **kw)
                                        for api, s in ((ref, rs), (ours, st)))
        compare(f"prompt {obj}", m1, ids1, ref_scores(rs, frame, True), m2, ids2, compat_scores(ours, st, frame),
                stats)
    for kw in ({}, dict(start_frame_idx=4, reverse=True)):
        exp = list(ref.propagate_in_video(rs, **kw))
        got = [(f, ids, m.clone()) for f, ids, m in ours.propagate_in_video(st, **kw)]
        assert [e[0] for e in exp] == [g[0] for g in got]
        for (f, ids1, m1), (_, ids2, m2) in zip(exp, got):
            compare(f"f{f}", m1, ids1, ref_scores(rs, f), m2, ids2, compat_scores(ours, st, f), stats)
    assert stats["visible"] >= 10
