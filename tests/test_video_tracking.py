"""Video: the VideoPredictor session on a small random model (no reference needed; fast).

Parity with Meta's implementation is in test_video_parity.py; here: bounded memory on long streams,
batching, interaction semantics, errors that change nothing, live input.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from samstream.memory import window_behind
from samstream.transforms import mirror_points
from samstream.video import FrameUnavailableError, VideoPredictor
from tests.helpers import small_model, synthetic_frames, torch_threads


@pytest.fixture(scope="module")
def model():
    return small_model()


def _run(vp, **kw):
    return {r.frame_idx: r for r in vp.propagate(progress=False, **kw)}


def _same(a, b, atol=0.0):
    assert a.obj_ids == b.obj_ids
    np.testing.assert_allclose(a.logits, b.logits, atol=atol, rtol=0)
    np.testing.assert_allclose(a.scores, b.scores, atol=atol, rtol=0)


def test_long_live_stream_keeps_memory_bounded(model):
    """2,000 frames pushed live with two objects: what the session stores stops growing after the window."""
    frames = synthetic_frames(64)
    vp = VideoPredictor(model, progress=False)
    window = window_behind(model.cfg, None)
    with torch_threads(1):
        vp.step(frames[0])
        vp.add_points(0, 1, [[20, 20]])
        vp.add_box(0, 2, [30, 10, 60, 40])
        at = {}
        for i in range(1, 2000):
            r = vp.step(frames[i % 64])
            if i in (100, 1999):
                at[i] = vp.memory_stats()
    assert r.frame_idx == 1999 and r.obj_ids == [1, 2] and r.masks.any(axis=(1, 2)).all()
    assert at[100] == at[1999]  # same number of frames, tensors and bytes at frame 100 and 2,000
    s = at[1999]
    assert s["cond_frames"] == 2 and s["non_cond_frames"] <= 2 * window and s["tracked_runs"] == 2
    assert s["cached_features"] <= 4 and s["cached_frames"] <= 64
    assert vp.state.evicted > 3000


def test_iterator_source_runs_to_its_end_in_bounded_memory(model):
    def gen():  # a generator of unknown length
        yield from synthetic_frames(300)

    vp = VideoPredictor(model, gen(), progress=False)
    assert vp.num_frames is None and vp.is_live
    vp.add_points(0, 1, [[20, 20]])
    n = 0
    with torch_threads(1):
        for r in vp.propagate():
            n += 1
            assert r.frame_idx == n - 1
    assert n == 300 and vp.memory_stats()["non_cond_frames"] <= 2 * window_behind(model.cfg, None)
    with pytest.raises(FrameUnavailableError, match="no longer available"):
        vp.add_points(3, 2, [[20, 20]])  # an old frame of a one-pass stream
    with pytest.raises(ValueError, match="backward"):
        vp.propagate(direction="backward")


@pytest.mark.parametrize("mirror", [False, True])
def test_live_step_equals_propagation_over_the_same_frames(model, mirror):
    """Live input computes what a propagation over the same (>= 16) frames computes (with mirror too)."""
    frames = synthetic_frames(20)
    live = VideoPredictor(model, progress=False, mirror=mirror)
    live.step(frames[0])
    first = live.add_points(0, 1, [[20, 20]], [1])
    got = [live.step(f) for f in frames[1:]]
    offline = VideoPredictor(model, frames, progress=False, mirror=mirror)
    first_off = offline.add_points(0, 1, [[20, 20]], [1])
    np.testing.assert_array_equal(first.logits, first_off.logits)
    res = _run(offline)
    for r in got:
        _same(r, res[r.frame_idx], atol=1e-6)
    with pytest.raises(FrameUnavailableError, match="has not been reached yet"):
        live.add_points(25, 1, [[20, 20]])
    with pytest.raises(TypeError, match="live"):
        offline.step(frames[0])


def test_objects_are_batched_but_computed_as_if_alone(model):
    frames = synthetic_frames(12)
    prompts = {1: dict(frame_idx=0, points=[[20, 20]]), 2: dict(frame_idx=0, box=[30, 10, 60, 40]),
               3: dict(frame_idx=3, points=[[40, 20], [10, 40]], labels=[1, 0])}
    together = VideoPredictor(model, frames, progress=False, attention_batch=3)  # the GPU default: all at once
    for oid, p in prompts.items():
        together.add_points(obj_id=oid, **p)
    res = _run(together, start=0)
    for oid, p in prompts.items():
        alone = VideoPredictor(model, frames, progress=False)
        alone.add_points(obj_id=oid, **p)
        for t, r in _run(alone, start=0).items():
            i = res[t].obj_ids.index(oid)
            np.testing.assert_allclose(r.logits[0], res[t].logits[i], atol=1e-4, rtol=0)
            assert np.sign(r.scores[0]) == np.sign(res[t].scores[i])
    # obj 3 is prompted on frame 3: tracked on frames 0-2 from a future conditioning frame
    assert res[0].masks[2].any()


def test_new_object_after_propagation_leaves_the_others_alone(model):
    frames = synthetic_frames(10)
    vp = VideoPredictor(model, frames, progress=False)
    vp.add_points(0, 1, [[20, 20]])
    before = _run(vp)
    r2 = vp.add_points(5, 2, [[40, 30]])
    assert r2.frame_idx == 5 and r2.obj_id == 2 and r2.mask.any()
    after = _run(vp, start=0)
    assert after[4].obj_ids == [1, 2]
    for t in range(10):  # up to float rounding: the batch is bigger now
        np.testing.assert_allclose(after[t].logits[0], before[t].logits[0], atol=1e-5, rtol=0)
    assert after[7].masks[1].any()


def test_remove_object_and_reset(model):
    frames = synthetic_frames(8)
    vp = VideoPredictor(model, frames, progress=False)
    vp.add_points(0, 1, [[20, 20]])
    vp.add_points(0, 2, [[40, 30]])
    both = _run(vp)
    vp.remove_object(1)
    assert vp.obj_ids == [2]
    only2 = _run(vp)
    for t in range(8):
        np.testing.assert_allclose(only2[t].logits[0], both[t].logits[1], atol=1e-5, rtol=0)
    with pytest.raises(KeyError, match="unknown object id 1"):
        vp.remove_object(1)
    vp.reset()
    assert vp.obj_ids == [] and vp.memory_stats()["tensors"] == 0
    with pytest.raises(ValueError, match="no objects"):
        vp.propagate()
    vp.add_points(0, 2, [[40, 30]])
    np.testing.assert_allclose(_run(vp)[5].logits[0], both[5].logits[1], atol=1e-5, rtol=0)


def test_correction_becomes_conditioning_and_repropagates_from_the_edit(model):
    frames = synthetic_frames(12)
    vp = VideoPredictor(model, frames, progress=False)
    vp.add_points(0, 1, [[20, 20]])
    first = _run(vp)
    fix = vp.add_points(6, 1, [[50, 40]], [0], clear=False)  # a background click on a tracked frame
    assert not np.array_equal(fix.logits, first[6].logits[0])
    assert vp.state.get(1).pending[6][1] is True  # it will be a conditioning frame
    again = _run(vp)  # default start: the edited frame
    assert sorted(again) == list(range(6, 12))
    np.testing.assert_allclose(again[6].logits[0], fix.logits, atol=0)  # kept, not re-tracked
    assert 6 in vp.state.get(1).cond
    np.testing.assert_array_equal(again[7].logits[0], _run_fresh_with_fix(model, frames)[7].logits[0])
    # the official default: corrections stay ordinary tracked frames
    plain = VideoPredictor(model, frames, progress=False, corrections_as_cond=False)
    plain.add_points(0, 1, [[20, 20]])
    _run(plain)
    plain.add_points(6, 1, [[50, 40]], [0], clear=False)
    _run(plain, start=0)
    assert 6 not in plain.state.get(1).cond


def _run_fresh_with_fix(model, frames):
    vp = VideoPredictor(model, frames, progress=False)
    vp.add_points(0, 1, [[20, 20]])
    _run(vp)
    vp.add_points(6, 1, [[50, 40]], [0], clear=False)
    return _run(vp, start=6)


def test_window_history_gives_the_same_masks_as_keeping_everything(model):
    """Bounded memory is exact: a correction far behind the last tracked frame re-tracks from the
    nearest conditioning frame to rebuild the memory it needs."""
    frames = synthetic_frames(60)
    runs = {}
    with torch_threads(1):
        for history in ("all", "window"):
            vp = VideoPredictor(model, frames, history=history, progress=False)
            vp.add_points(0, 1, [[20, 20]])
            vp.add_box(2, 2, [30, 10, 60, 40])
            out = _run(vp, start=0)
            fix = vp.add_points(30, 1, [[50, 40]], [0], clear=False)
            again = _run(vp)
            runs[history] = (vp, out, fix, again)
    (va, oa, fa, aa), (vw, ow, fw, aw) = runs["all"], runs["window"]
    assert vw.memory_stats()["non_cond_frames"] < va.memory_stats()["non_cond_frames"] // 2
    for t in oa:
        _same(oa[t], ow[t])
    # equal up to float rounding: the re-tracking runs object 1 alone, the first pass batched both
    np.testing.assert_allclose(fa.logits, fw.logits, atol=1e-4, rtol=0)
    assert sorted(aa) == sorted(aw) == list(range(30, 60))
    for t in aa:
        _same(aa[t], aw[t], atol=1e-4)


def test_both_directions_and_default_starts(model):
    frames = synthetic_frames(12)
    vp = VideoPredictor(model, frames, progress=False)
    vp.add_points(6, 1, [[20, 20]])
    order = [r.frame_idx for r in vp.propagate(direction="both", progress=False)]
    assert order == list(range(6, 12)) + list(range(6, -1, -1))
    assert vp.state.get(1).tracked.get(3) is True and vp.state.get(1).tracked.get(9) is False
    vp.add_points(2, 2, [[40, 30]])
    vp.add_points(8, 2, [[40, 30]])
    back = [r.frame_idx for r in vp.propagate(direction="backward", progress=False)]
    assert back == list(range(8, -1, -1))  # from the latest edited frame
    limited = [r.frame_idx for r in vp.propagate(start=5, max_frames=2, progress=False)]
    assert limited == [5, 6, 7]
    with pytest.raises(ValueError, match="direction"):
        vp.propagate(direction="sideways")


def test_errors_name_the_problem_and_change_nothing(model):
    frames = synthetic_frames(6)
    vp = VideoPredictor(model, frames, progress=False)
    vp.add_points(0, 1, [[20, 20]])
    ref = _run(vp)
    stats = vp.memory_stats()
    with pytest.raises(FrameUnavailableError, match="out of range"):
        vp.add_points(6, 1, [[20, 20]])
    with pytest.raises(ValueError, match="outside the 64x48 image"):
        vp.add_points(2, 1, [[70, 20]])
    with pytest.raises(ValueError, match="outside"):
        vp.add_box(2, 2, [0, 0, 64, 60])
    with pytest.raises(ValueError, match="labels"):
        vp.add_points(2, 1, [[20, 20]], [1, 0])
    with pytest.raises(ValueError, match="box must be the first"):
        vp.add_points(2, 1, [[20, 20]], box=[0, 0, 10, 10], clear=False)
    with pytest.raises(ValueError, match="mask is 10x10"):
        vp.add_mask(2, 3, np.ones((10, 10), bool))
    with pytest.raises(KeyError, match="unknown object id 9"):
        vp.clear_prompts(0, 9)
    with pytest.raises(TypeError, match="object ids"):
        vp.add_points(0, 1.5, [[20, 20]])
    with pytest.raises(TypeError, match="frame index"):
        vp.add_points("0", 1, [[20, 20]])
    assert vp.memory_stats() == stats and vp.obj_ids == [1]
    for t, r in _run(vp, start=0).items():
        _same(r, ref[t])


def test_mask_prompt_is_the_output_and_occluded_objects(model):
    frames = synthetic_frames(6)
    vp = VideoPredictor(model, frames, progress=False)
    m = np.zeros((48, 64), bool)
    m[10:30, 20:44] = True
    r = vp.add_mask(0, 1, m)
    assert r.score == 10.0 and (r.mask == m).mean() > 0.99
    e = vp.add_mask(2, 2, np.zeros((48, 64), bool))  # an empty mask: the object is absent there
    assert e.score == -10.0 and not e.mask.any()
    res = _run(vp, start=0)
    assert res[1].obj_ids == [1, 2] and res[2].scores[1] == -10.0

    absent = small_model(obj_bias=-5.0)  # an object-score head that sees nothing
    vp = VideoPredictor(absent, frames, progress=False)
    r = vp.add_points(0, 1, [[20, 20]])
    assert r.score <= 0 and not r.mask.any() and r.logits.max() == -1024.0
    out = _run(vp)
    assert all(not o.masks.any() and (o.scores <= 0).all() for o in out.values())


def test_float32_memory_storage_option(model):
    frames = synthetic_frames(8)
    res = {}
    for dt in (torch.bfloat16, torch.float32):
        vp = VideoPredictor(model, frames, memory_dtype=dt, progress=False)
        vp.add_points(0, 1, [[20, 20]])
        res[dt] = _run(vp)
        assert vp.state.get(1).cond[0].maskmem.dtype == dt
    diff = max(np.abs(res[torch.bfloat16][t].logits - res[torch.float32][t].logits).max() for t in range(1, 8))
    assert 0 < diff < 0.5
    with pytest.raises(ValueError, match="memory_dtype"):
        VideoPredictor(model, frames, memory_dtype=torch.int8)


def test_interrupted_propagation_keeps_finished_frames(model):
    frames = synthetic_frames(10)
    vp = VideoPredictor(model, frames, progress=False)
    vp.add_points(0, 1, [[20, 20]])
    gen = vp.propagate(progress=False)
    with pytest.raises(KeyboardInterrupt):
        for r in gen:
            if r.frame_idx == 4:
                raise KeyboardInterrupt
    assert sorted(vp.state.get(1).tracked.frames()) == [0, 1, 2, 3, 4]
    rest = _run(vp, start=5)  # continue where it stopped
    fresh = VideoPredictor(model, frames, progress=False)
    fresh.add_points(0, 1, [[20, 20]])
    ref = _run(fresh)
    for t in range(5, 10):
        _same(rest[t], ref[t])


def test_label_map_and_result_access(model):
    frames = synthetic_frames(3)
    vp = VideoPredictor(model, frames, progress=False)
    vp.add_points(0, 3, [[20, 20]])
    vp.add_points(0, 7, [[50, 30]])
    r = vp.result(0)
    lab = r.label_map()
    assert set(np.unique(lab)) <= {0, 3, 7} and lab.shape == (48, 64)
    assert np.array_equal(lab == 3, r.masks[0] & ~((r.logits[1] > r.logits[0]) & r.masks[1]))
    assert r[7].obj_id == 7 and r[7].mask.shape == (48, 64)
    with pytest.raises(KeyError):
        r[4]


def test_window_history_is_exact_in_both_directions(model):
    """Forward then backward from a middle frame: the backward pass reads frames the forward pass tracked
    (and, with the window policy, evicted); they are rebuilt, so the masks are those of keeping everything."""
    frames = synthetic_frames(60)
    res = {}
    for history in ("all", "window"):
        vp = VideoPredictor(model, frames, history=history, progress=False)
        vp.add_points(25, 1, [[20, 20]])
        res[history] = list(vp.propagate(direction="both"))
        vp.add_points(50, 2, [[40, 30]])  # another object, then a backward pass from its frame
        res[history] += list(vp.propagate(direction="backward"))
    assert [r.frame_idx for r in res["all"]] == [r.frame_idx for r in res["window"]]
    assert len(res["all"]) == 35 + 26 + 51
    for a, w in zip(res["all"], res["window"]):
        _same(a, w, atol=1e-4)


@pytest.mark.parametrize("direction", ["forward", "backward"])
def test_window_rebuild_is_exact_when_objects_share_memory_encoding(direction):
    """With non-overlapping memories, an object's memory on a frame depends on the masks of the objects tracked
    with it. A correction far behind the window (its memory evicted) is rebuilt for the objects together, as
    they were tracked, so the masks stay those of keeping everything."""
    model = small_model(non_overlap_masks_for_mem_enc=True)
    frames = synthetic_frames(50)
    start, fix = (0, 30) if direction == "forward" else (49, 19)
    res = {}
    with torch_threads(1):
        for history in ("all", "window"):
            vp = VideoPredictor(model, frames, history=history, progress=False)
            vp.add_points(start, 1, [[20, 20]])
            vp.add_points(start, 2, [[30, 25]])
            out = list(vp.propagate(direction=direction))
            out.append(vp.add_points(fix, 1, [[24, 22]], [0]))  # a correction on an evicted frame's neighbour
            out += list(vp.propagate(fix, direction=direction))
            res[history] = out
    assert [r.frame_idx for r in res["all"]] == [r.frame_idx for r in res["window"]]
    for a, w in zip(res["all"], res["window"]):
        np.testing.assert_allclose(np.asarray(a.logits), np.asarray(w.logits), atol=1e-4, rtol=0)

# ---------------------------------------------------------------------------------------- mirror (TTA)
def _flipped(frames):
    return [np.ascontiguousarray(f[:, ::-1]) for f in frames]


@pytest.mark.parametrize("kind", ["click", "box", "mask"])
def test_mirror_is_the_mean_of_the_video_and_its_mirror_image(model, kind):
    """mirror=True: each frame's logits and scores are the mean of a plain session on the video and one on the
    video flipped left-right (prompted with the flipped prompts, results flipped back), through a prompt, a
    propagation, a correction click and a second object. Frames at the model's size, so that flipping the
    frame and flipping the resized frame are the same thing."""
    w = model.cfg.image_size
    frames = synthetic_frames(8, h=w, w=w)
    mask = np.zeros((w, w), bool)
    mask[12:28, 6:30] = True

    def session(fr, flip, mirror=False):
        x = (lambda v: w - v) if flip else (lambda v: v)  # a coordinate in the flipped video
        vp = VideoPredictor(model, fr, progress=False, mirror=mirror)
        if kind == "click":
            first = vp.add_points(0, 1, [[x(20.0), 20.0], [x(40.0), 30.0]], [1, 0])
        elif kind == "box":
            first = vp.add_box(0, 1, [min(x(8.0), x(30.0)), 10.0, max(x(8.0), x(30.0)), 30.0])
        else:
            first = vp.add_mask(0, 1, mask[:, ::-1] if flip else mask)
        out = {r.frame_idx: r for r in vp.propagate()}
        fix = vp.add_points(5, 1, [[x(12.0), 50.0]], [0])  # a correction on a tracked frame
        vp.add_points(2, 2, [[x(50.0), 40.0]])  # a new object
        out.update({r.frame_idx: r for r in vp.propagate(0)})
        return vp, first, fix, out

    with torch_threads(1):
        vp, first, fix, both = session(frames, False, mirror=True)
        _, first_a, fix_a, a = session(frames, False)
        _, first_b, fix_b, b = session(_flipped(frames), True)
    for got, one, other in ((first, first_a, first_b), (fix, fix_a, fix_b)):
        np.testing.assert_allclose(got.logits, (one.logits + other.logits[:, ::-1]) / 2, atol=1e-4, rtol=0)
        assert got.score == pytest.approx((one.score + other.score) / 2, abs=1e-5)
    assert sorted(both) == list(range(8))
    for t in both:
        assert both[t].obj_ids == a[t].obj_ids == [1, 2]
        np.testing.assert_allclose(both[t].logits, (a[t].logits + b[t].logits[:, :, ::-1]) / 2, atol=1e-4, rtol=0)
        np.testing.assert_allclose(both[t].scores, (a[t].scores + b[t].scores) / 2, atol=1e-5, rtol=0)
    # the mirrored view differs from the plain one (else the average would be a no-op)
    assert np.abs(a[6].logits - b[6].logits[:, :, ::-1]).max() > 1e-2
    assert vp.mirror_state.obj_ids == vp.obj_ids == [1, 2]


def test_mirror_views_stay_in_step(model):
    """Object removal, cleared prompts and reset act on both views; memory statistics count both; frames are
    encoded once (both views in one encoder batch)."""
    frames = synthetic_frames(6)
    with torch_threads(1):
        vp = VideoPredictor(model, frames, progress=False, mirror=True)
        plain = VideoPredictor(model, frames, progress=False)
        for s in (vp, plain):
            s.add_points(0, 1, [[20, 20]])
            s.add_box(0, 2, [30, 10, 60, 40])
            s.add_points(3, 2, [[40, 20]])
            list(s.propagate())
    assert vp.store.encode_count == plain.store.encode_count
    st, st_plain = vp.memory_stats(), plain.memory_stats()
    for k in ("cond_frames", "non_cond_frames", "tensors", "bytes"):
        assert st[k] == 2 * st_plain[k], k
    vp.clear_prompts(3, 2)
    assert 3 not in vp.mirror_state.get(2).cond and 3 in vp.mirror_state.get(2).non_cond
    vp.remove_object(1)
    assert vp.mirror_state.obj_ids == vp.obj_ids == [2]
    with pytest.raises(KeyError, match="unknown object id 7"):
        vp.remove_object(7)
    assert vp.mirror_state.obj_ids == [2]
    vp.reset()
    assert vp.mirror_state.obj_ids == vp.obj_ids == []


def test_mirror_points_keeps_box_corners_in_order():
    coords = torch.tensor([[[10.0, 5.0], [30.0, 25.0], [12.5, 7.0]]])
    labels = torch.tensor([[2, 3, 1]], dtype=torch.int32)
    c, lab = mirror_points((coords, labels), 64)
    assert c.tolist() == [[[34.0, 5.0], [54.0, 25.0], [51.5, 7.0]]] and lab is labels
    assert coords[0, 0, 0] == 10.0  # the input is not modified
    back, _ = mirror_points((c, lab), 64)
    assert torch.equal(back, coords)


def test_mirror_rebuilds_both_views_memory_after_eviction(model):
    """history="window": a correction far behind the last propagated frame rebuilds each view's evicted memory
    from its own frames (the mirrored view from the mirrored features)."""
    w = model.cfg.image_size
    frames = synthetic_frames(40, h=w, w=w)
    x = {False: lambda v: v, True: lambda v: w - v}
    res, sessions = {}, {}
    with torch_threads(1):
        for name, fr, flip, mirror in (("both", frames, False, True), ("a", frames, False, False),
                                       ("b", _flipped(frames), True, False)):
            vp = sessions[name] = VideoPredictor(model, fr, progress=False, mirror=mirror)
            vp.add_points(0, 1, [[x[flip](20.0), 20.0]])
            list(vp.propagate())
            assert 20 not in vp.state.get(1).non_cond  # evicted
            res[name] = vp.add_points(30, 1, [[x[flip](44.0), 50.0]], [0]).logits
    np.testing.assert_allclose(res["both"], (res["a"] + res["b"][:, ::-1]) / 2, atol=1e-4, rtol=0)
    # the rebuilt memory of each view is that of its own session (old pointers weigh little in the output)
    for view, alone in ((sessions["both"].state, sessions["a"].state), (sessions["both"].mirror_state,
                                                                       sessions["b"].state)):
        for t in range(15, 24):
            got, want = view.get(1).non_cond[t], alone.get(1).non_cond[t]
            torch.testing.assert_close(got.pred_masks, want.pred_masks, atol=1e-4, rtol=0)
            torch.testing.assert_close(got.obj_ptr, want.obj_ptr, atol=1e-4, rtol=0)


def _with_config(model, **changes):
    """The model's weights under a config with `changes` (fields that hold no weights)."""
    import dataclasses

    from samstream.model import SAM2Model

    m = SAM2Model(dataclasses.replace(model.cfg, **changes)).eval()
    m.load_state_dict(model.state_dict())
    return m


def _track_two_objects(model, frames, **session) -> dict:
    """A click for object 1 and a box for object 2 on frame 0, propagated -> {frame: FrameResult}."""
    vp = VideoPredictor(model, frames, progress=False, **session)
    vp.add_points(0, 1, [[20, 20]])
    vp.add_box(0, 2, [30, 10, 60, 40])
    return _run(vp)


def _region_areas(mask: np.ndarray) -> list[int]:
    """Areas of the 8-connected foreground regions of a (H, W) bool mask."""
    from scipy import ndimage

    labels, n = ndimage.label(mask, structure=np.ones((3, 3)))
    return [int(a) for a in np.bincount(labels.ravel())[1:]] if n else []


@pytest.mark.parametrize("non_overlap", [False, True])
def test_min_region_area_drops_small_regions_from_the_outputs_only(model, non_overlap):
    """min_region_area: on every frame each object's output is the plain output with exactly its regions of
    fewer pixels dropped (after the non-overlap constraint, when on), so no smaller region is left; later frames
    show the memory is untouched. The random model's masks are speckled, so there are such regions to drop."""
    from samstream.postprocess import drop_islands

    frames, area = synthetic_frames(6), 12
    plain, cleaned = (_track_two_objects(model, frames, non_overlap_masks=non_overlap, min_region_area=a)
                      for a in (0, area))
    assert any(0 < a < area for r in plain.values() for m in r.masks for a in _region_areas(m))
    for t, r in cleaned.items():
        want = drop_islands(torch.from_numpy(plain[t].logits), area - 1).numpy()
        np.testing.assert_array_equal(r.logits, want)
        np.testing.assert_array_equal(r.scores, plain[t].scores)
        assert all(a >= area for m in r.masks for a in _region_areas(m)), t
    with pytest.raises(ValueError, match="min_region_area"):
        VideoPredictor(model, frames, progress=False, min_region_area=-1)


@pytest.mark.parametrize("non_overlap", [False, True])
def test_edge_refinement_changes_the_outputs_only(model, non_overlap):
    """edge_refine_radius: every frame's output is the plain output refined by `refine_to_edges` (the radius
    scaled from low-res mask pixels to video pixels) before the non-overlap constraint, with the same object
    scores; later frames show the memory is untouched. The model's inference defaults are the default, and the
    argument overrides them."""
    from samstream.postprocess import apply_non_overlap, refine_to_edges

    frames = synthetic_frames(6)
    low = model.cfg.image_size // 4
    radius, eps = 0.75, 1e-3
    px = max(1, round(radius * 64 / low))
    on = _with_config(model)
    on.inference_defaults = on.inference_defaults.override(edge_refine_radius=radius, edge_refine_eps=eps)
    runs = {name: _track_two_objects(m, frames, non_overlap_masks=non_overlap, **kw) for name, m, kw in (
        ("plain", model, {}), ("config", on, {}), ("argument", model, {"edge_refine_radius": radius}),
        ("overridden", on, {"edge_refine_radius": 0}))}
    raw = _track_two_objects(model, frames)  # without the non-overlap constraint: what the refinement starts from
    changed = 0
    for t, r in runs["config"].items():
        want = refine_to_edges(torch.from_numpy(raw[t].logits)[:, None], frames[t], px, eps)
        if non_overlap:
            want = apply_non_overlap(want)
        np.testing.assert_allclose(r.logits, want[:, 0].numpy(), rtol=0, atol=1e-5)
        np.testing.assert_array_equal(r.scores, raw[t].scores)
        _same(runs["argument"][t], r)
        _same(runs["overridden"][t], runs["plain"][t])
        changed += int((r.masks != runs["plain"][t].masks).sum())
    assert changed > 0
    with pytest.raises(ValueError, match="edge_refine"):
        VideoPredictor(model, frames, progress=False, edge_refine_radius=-1)


def test_edge_refinement_of_a_frame_a_stream_no_longer_holds(model):
    """A live stream keeps its last frames only: an older frame's result comes back unrefined, not as an error."""
    frames = synthetic_frames(80)
    vp = VideoPredictor(model, progress=False, edge_refine_radius=0.75)
    plain = VideoPredictor(model, progress=False)
    for s in (vp, plain):
        s.step(frames[0])
        s.add_points(0, 1, [[20, 20]])
        for f in frames[1:]:
            s.step(f)
    assert vp.result(79).logits.tolist() != plain.result(79).logits.tolist()  # held: refined
    assert vp.store.frames_cache.get(0) is None  # frame 0 has left the cache
    _same(vp.result(0), plain.result(0))


def test_non_overlapping_memories_encode_disjoint_masks(model, monkeypatch):
    """non_overlap_masks_for_mem_enc (SAM 2's option): every memory encoded for several objects of one frame
    (prompted or tracked) sees each pixel above -10 in one object's mask at most; without it the two overlapping
    objects here share pixels."""
    frames = synthetic_frames(5)
    shared = {}
    for flag in (False, True):
        m = _with_config(model, non_overlap_masks_for_mem_enc=flag)
        seen = []
        encode = m.encode_memory
        monkeypatch.setattr(m, "encode_memory", lambda pix, masks, *a, _e=encode, _s=seen: _s.append(masks.clone())
                            or _e(pix, masks, *a))
        vp = VideoPredictor(m, frames, progress=False)
        vp.add_box(0, 1, [10, 5, 50, 40])
        vp.add_box(0, 2, [20, 10, 60, 45])
        _run(vp)
        multi = [x for x in seen if x.shape[0] > 1]
        assert len(multi) == len(frames)  # frame 0's prompts, then every tracked frame
        shared[flag] = max(int(((x > -10).sum(0) > 1).sum()) for x in multi)
    assert shared[False] > 0 and shared[True] == 0
