"""Annotator: every action's store writes, undo / redo, propagation jobs, and the same masks as `samstream track`."""
from __future__ import annotations

import threading

import numpy as np
import pytest
from PIL import Image

from samstream.app.brush import paint_stroke
from samstream.app.session import Annotator
from samstream.app.store import Busy, NotFound, StaleError, Store
from samstream.io.rle import decode_rle
from samstream.load import load_model
from samstream.video.predictor import VideoPredictor
from tests.helpers import synthetic_frames

T, H, W = 10, 48, 64


@pytest.fixture(scope="module")
def model():
    return load_model(None)


@pytest.fixture
def video(tmp_path):
    folder = tmp_path / "clip"
    folder.mkdir()
    for i, f in enumerate(synthetic_frames(T, H, W)):  # a bright square moving right from x = 8, y 12..28
        Image.fromarray(f).save(folder / f"{i:05d}.png")
    return folder


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "app.db")
    yield s
    s.close()


@pytest.fixture
def ann(model, store, video):
    vid = store.add_video(store.create_project("p")["id"], "clip", "clip", T, W, H, None)["id"]
    a = Annotator(model, store, vid, video)
    yield a
    a.close()


def stored(ann, obj_id, frame):
    rec = ann.store.mask(ann.video_id, obj_id, frame)
    return None if rec is None else decode_rle(rec["rle"])


def reference(model, video, clicks=(), boxes=(), masks=()):
    """Masks {(obj, frame): (H, W) bool} of a forward propagation fed as `samstream track` feeds it."""
    vp = VideoPredictor(model, str(video), progress=False)
    for frame, obj, mask in masks:
        vp.add_mask(frame, obj, mask)
    keys = sorted({(f, o) for f, o, *_ in clicks} | {(f, o) for f, o, _ in boxes})
    for frame, obj in keys:
        pts = [(x, y, lab) for f, o, x, y, lab in clicks if (f, o) == (frame, obj)]
        box = next((b for f, o, b in boxes if (f, o) == (frame, obj)), None)
        vp.add_points(frame, obj, [p[:2] for p in pts] or None, [p[2] for p in pts] or None, box=box)
    out = {}
    for fr in vp.propagate(direction="forward"):
        for i, obj in enumerate(fr.obj_ids):
            out[(obj, fr.frame_idx)] = fr.masks[i]
    vp.close()
    return out


def wait_done(ann):
    job = ann.wait(timeout=60)
    assert job["state"] == "done", job
    return job


def test_click_box_brush_clear_undo_redo(ann):
    vid = ann.video_id
    a = ann.add_object(name="square")["object"]["obj_id"]
    r = ann.click(a, 0, 16, 20)
    assert r["mask"]["source"] == "prompt" and r["mask"]["area"] > 0 and r["frame"] == 0
    ann.click(a, 0, 50, 40, positive=False)
    assert ann.store.prompt(vid, a, 0) == {"points": [[16.0, 20.0], [50.0, 40.0]], "labels": [1, 0], "box": None}
    first = stored(ann, a, 0)
    ann.box(a, 2, [8, 10, 30, 30])
    assert ann.store.prompt(vid, a, 2) == {"points": [], "labels": [], "box": [8.0, 10.0, 30.0, 30.0]}
    assert ann.store.mask(vid, a, 2)["source"] == "prompt"

    r = ann.brush(a, 0, [[40, 5], [60, 5]], 3)
    expected = paint_stroke(first, [[40, 5], [60, 5]], 3)
    assert np.array_equal(stored(ann, a, 0), expected) and r["mask"]["source"] == "hand"
    assert set(ann.store.prompt(vid, a, 0)) == {"mask"}
    erased = ann.brush(a, 0, [[50, 5]], 4, erase=True)["version"]
    assert np.array_equal(stored(ann, a, 0), paint_stroke(expected, [[50, 5]], 4, erase=True))

    v = ann.clear(a, 2)["version"]
    assert ann.store.prompt(vid, a, 2) is None and ann.store.mask(vid, a, 2) is None
    assert ann.undo()["version"] == v + 1
    assert ann.store.prompt(vid, a, 2)["box"] == [8.0, 10.0, 30.0, 30.0] and stored(ann, a, 2).any()
    ann.undo()  # the eraser
    assert np.array_equal(stored(ann, a, 0), expected)
    ann.redo()
    ann.redo()
    assert ann.store.mask(vid, a, 2) is None and ann.store.video(vid)["version"] == erased + 5
    # a click on a hand-drawn frame replaces the mask prompt by the click
    ann.click(a, 0, 16, 20)
    assert ann.store.prompt(vid, a, 0)["points"] == [[16.0, 20.0]]
    assert ann.store.mask(vid, a, 0)["source"] == "prompt"


def test_bad_requests_change_nothing(ann):
    vid = ann.video_id
    a = ann.add_object()["object"]["obj_id"]
    ann.click(a, 0, 16, 20)
    before = ann.store.video(vid)["version"], len(ann.store.history(vid))
    with pytest.raises(NotFound):
        ann.click(a + 1, 0, 16, 20)
    for call, field in [(lambda: ann.click(a, T, 16, 20), "frame"), (lambda: ann.click(a, 0, -1, 20), "x"),
                        (lambda: ann.click(a, 0, 16, float("nan")), "y"),
                        (lambda: ann.box(a, 0, [30, 10, 8, 30]), "x0 < x1"),
                        (lambda: ann.brush(a, 0, [[10, 10]], 0), "radius"),
                        (lambda: ann.brush(a, 0, [[10, 10], [500, 10]], 2), r"points\[1\]"),
                        (lambda: ann.propagate(0, direction="sideways"), "direction"),
                        (lambda: ann.update_object(a, size=3), "size")]:
        with pytest.raises(ValueError, match=field):
            call()
    with pytest.raises(StaleError):
        ann.click(a, 0, 30, 20, expect_version=before[0] - 1)
    assert (ann.store.video(vid)["version"], len(ann.store.history(vid))) == before
    assert ann.store.prompt(vid, a, 0)["points"] == [[16.0, 20.0]]


def test_propagation_matches_track(ann, model, video):
    a, b = ann.add_object()["object"]["obj_id"], ann.add_object()["object"]["obj_id"]
    ann.click(a, 0, 16, 20)
    ann.box(b, 3, [2, 30, 20, 46])
    job = ann.propagate(0)["job"]
    assert job["state"] == "running" and job["total"] == T
    assert wait_done(ann)["done"] == T
    ref = reference(model, video, clicks=[(0, a, 16, 20, 1)], boxes=[(3, b, [2, 30, 20, 46])])
    assert set(ref) == {(o, f) for o in (a, b) for f in range(T)}
    for (obj, frame), mask in ref.items():
        assert np.array_equal(stored(ann, obj, frame), mask), (obj, frame)
    assert ann.store.mask(ann.video_id, a, 0)["source"] == "prompt"
    assert ann.store.mask(ann.video_id, a, 5)["source"] == "propagated"
    # one event for the whole job, undone at once
    ann.undo()
    assert ann.store.mask(ann.video_id, a, 5) is None and ann.store.mask(ann.video_id, a, 0) is not None


def test_locked_frame_survives_and_guides_tracking(ann, model, video):
    a = ann.add_object()["object"]["obj_id"]
    ann.click(a, 0, 16, 20)
    ann.propagate(0)
    wait_done(ann)
    # a hand edit in the middle: the square's mask erased, a disc elsewhere painted
    ann.brush(a, 4, [[20, 20], [40, 20]], 12, erase=True)
    ann.brush(a, 4, [[48, 38]], 7)
    hand = ann.store.mask(ann.video_id, a, 4)
    ann.propagate(0)
    wait_done(ann)
    assert ann.store.mask(ann.video_id, a, 4) == hand  # byte for byte, still "hand"
    with_hand = reference(model, video, clicks=[(0, a, 16, 20, 1)], masks=[(4, a, decode_rle(hand["rle"]))])
    without = reference(model, video, clicks=[(0, a, 16, 20, 1)])
    for f in range(5, T):
        assert np.array_equal(stored(ann, a, f), with_hand[(a, f)]), f
    assert any(not np.array_equal(with_hand[(a, f)], without[(a, f)]) for f in range(5, T))


def test_cancel_keeps_finished_frames(ann):
    a = ann.add_object()["object"]["obj_id"]
    ann.click(a, 2, 18, 20)
    real = ann._vp.propagate

    def cancel_after_three(**kw):  # cancels from inside the job, as it hands over its third frame
        for i, fr in enumerate(real(**kw)):
            if i == 2:
                ann.cancel()
            yield fr

    ann._vp.propagate = cancel_after_three
    ann.propagate(2)
    job = ann.wait(timeout=60)
    assert job["state"] == "cancelled" and job["done"] == 3 and job["error"] is None
    assert ann.store.masked_frames(ann.video_id) == [2, 3, 4]
    ann._vp.propagate = real
    ann.click(a, 2, 20, 20)  # not busy any more


def test_restart_rebuilds_from_the_store(ann, model, store, video):
    a = ann.add_object()["object"]["obj_id"]
    b = ann.add_object()["object"]["obj_id"]
    ann.click(a, 0, 16, 20)
    ann.click(a, 0, 50, 40, positive=False)
    ann.click(b, 1, 8, 40)
    ann.delete_object(b)
    ann.close()
    again = Annotator(model, store, ann.video_id, video)  # a restarted server
    try:
        again.propagate(0)
        wait_done(again)
        # a frame's clicks go in as one call, as `samstream track` gives them; the deleted object is not tracked
        ref = reference(model, video, clicks=[(0, a, 16, 20, 1), (0, a, 50, 40, 0)])
        for f in range(T):
            assert np.array_equal(stored(again, a, f), ref[(a, f)]), f
        assert again._vp.obj_ids == [a]
        assert store.masked_frames(ann.video_id) == list(range(T))
        assert [o["obj_id"] for o in store.objects(ann.video_id)] == [a]
        again.undo()  # the propagation
        again.undo()  # the deletion: the object is tracked again
        again.propagate(0)
        wait_done(again)
        assert sorted(again._vp.obj_ids) == [a, b] and store.mask(ann.video_id, b, 5)["source"] == "propagated"
    finally:
        again.close()


def test_clear_and_delete_leave_the_predictor(ann):
    a = ann.add_object()["object"]["obj_id"]
    ann.click(a, 0, 16, 20)
    ann.click(a, 3, 20, 20)
    ann.clear(a, 0)
    assert ann._vp.obj_ids == [a]
    ann.clear(a, 3)  # its last prompt
    assert ann._vp.obj_ids == []
    with pytest.raises(ValueError, match="nothing to propagate"):
        ann.propagate(0)
    ann.undo()
    b = ann.add_object()["object"]["obj_id"]
    ann.click(b, 1, 8, 40)
    ann.delete_object(b)
    ann.propagate(0)  # the rebuild brought the prompt of frame 3 back; the deleted object is not tracked
    assert ann._vp.obj_ids == [a]
    wait_done(ann)
    assert ann.store.masked_frames(ann.video_id) == list(range(T))
    assert ann.store.mask(ann.video_id, b, 5) is None


def test_failing_job_reports_failed(ann):
    a = ann.add_object()["object"]["obj_id"]
    ann.click(a, 0, 16, 20)
    real = ann._vp.propagate

    def broken(**kw):
        results = real(**kw)
        yield next(results)
        yield next(results)
        raise RuntimeError("the decoder ran out of frames")

    ann._vp.propagate = broken
    ann.propagate(0)
    job = ann.wait(timeout=60)
    assert job["state"] == "failed" and job["error"] == "the decoder ran out of frames" and job["done"] == 2
    assert ann.store.masked_frames(ann.video_id) == [0, 1]  # what was flushed stays
    ann._vp.propagate = real
    ann.propagate(0)  # usable again, rebuilt
    assert wait_done(ann)["done"] == T


def test_busy_while_propagating(ann):
    a = ann.add_object()["object"]["obj_id"]
    ann.click(a, 0, 16, 20)
    real, go = ann._vp.propagate, threading.Event()

    def slow(**kw):
        for fr in real(**kw):
            go.wait(30)
            yield fr

    ann._vp.propagate = slow
    ann.propagate(0)
    try:
        for call in (lambda: ann.click(a, 1, 16, 20), lambda: ann.undo(), lambda: ann.propagate(0)):
            with pytest.raises(Busy):
                call()
        assert ann.job()["state"] == "running"
    finally:
        go.set()
    wait_done(ann)
