"""The app's SQLite store: round trips, events, undo / redo, versions, long events, crash recovery, threads."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest

from samstream.app.store import Busy, NotFound, StaleError, Store, StoreError, mask_record
from samstream.io.rle import decode_rle

H, W, T = 6, 8, 5
REPO = Path(__file__).resolve().parents[1]


def box_mask(x0, y0, x1, y1):
    m = np.zeros((H, W), bool)
    m[y0:y1, x0:x1] = True
    return m


def new_store(tmp_path, name="app.db"):
    store = Store(tmp_path / ".samstream" / name)
    project = store.create_project("p")
    video = store.add_video(project["id"], "clips/a.mp4", "a", T, W, H, 24.0)
    return store, video["id"]


def add_object(store, vid, obj_id=1, **row):
    with store.event(vid, "add_object", {"obj_id": obj_id}) as ev:
        ev.set_object(obj_id, {"name": f"o{obj_id}", **row})
    return ev.version


def test_mask_record_area_centroid_rle():
    rec = mask_record(box_mask(2, 1, 5, 3), 1.5, "prompt")  # x 2..4, y 1..2
    assert rec["area"] == 6 and (rec["cx"], rec["cy"]) == (3.0, 1.5) and rec["score"] == 1.5
    assert np.array_equal(decode_rle(rec["rle"]), box_mask(2, 1, 5, 3)) and isinstance(rec["rle"]["counts"], str)
    empty = mask_record(np.zeros((H, W), bool), None, "hand")
    assert empty["area"] == 0 and empty["cx"] is None and empty["cy"] is None and empty["score"] is None


def test_projects_videos_round_trip(tmp_path):
    store, vid = new_store(tmp_path)
    other = store.create_project("  q ")
    assert store.list_projects() == [
        {**store.project(1), "num_videos": 1}, {**other, "num_videos": 0}]
    assert other["name"] == "q" and other["created_by"] == "local"
    video = store.video(vid)
    assert {k: video[k] for k in ("path", "name", "num_frames", "width", "height", "fps", "version")} == {
        "path": "clips/a.mp4", "name": "a", "num_frames": T, "width": W, "height": H, "fps": 24.0, "version": 0}
    assert store.videos(1) == [video] and store.videos(other["id"]) == []
    for call in (lambda: store.project(9), lambda: store.video(9), lambda: store.videos(9),
                 lambda: store.objects(9), lambda: store.add_video(9, "b.mp4", "b", 1, 1, 1, None)):
        with pytest.raises(NotFound):
            call()
    for bad in ("/abs/a.mp4", "a\\b.mp4", ""):
        with pytest.raises(StoreError, match="relative"):
            store.add_video(1, bad, "b", 1, 1, 1, None)
    with pytest.raises(StoreError, match="num_frames"):
        store.add_video(1, "b.mp4", "b", 0, 1, 1, None)
    with pytest.raises(StoreError, match="name"):
        store.create_project(" ")
    store.close()
    reopened = Store(tmp_path / ".samstream" / "app.db")  # persisted
    assert reopened.video(vid) == video and reopened.list_projects()[0]["num_videos"] == 1


def test_objects_prompts_masks_round_trip(tmp_path):
    store, vid = new_store(tmp_path)
    add_object(store, vid, 1, colour="#ff0000", category="cat")
    add_object(store, vid, 2)
    rec = mask_record(box_mask(0, 0, 3, 3), -0.5, "propagated")
    prompt = {"points": [[1.5, 2.0], [3, 4]], "labels": [1, 0], "box": [0, 0, 4, 4]}
    hand = {"mask": mask_record(box_mask(1, 1, 2, 2), None, "hand")["rle"]}
    with store.event(vid, "click", {"obj_id": 1}) as ev:
        ev.set_prompt(1, 2, prompt)
        ev.set_prompt(2, 3, hand)
        ev.set_mask(1, 2, rec)
        ev.set_mask(2, 4, mask_record(box_mask(4, 4, 6, 6), None, "hand"))
    assert ev.version == 3 == store.video(vid)["version"]
    assert store.objects(vid) == [
        {"obj_id": 1, "name": "o1", "category": "cat", "colour": "#ff0000", "hidden": False, "deleted": False},
        {"obj_id": 2, "name": "o2", "category": None, "colour": None, "hidden": False, "deleted": False}]
    assert store.object(vid, 2)["name"] == "o2"
    assert store.prompt(vid, 1, 2) == {"points": [[1.5, 2.0], [3.0, 4.0]], "labels": [1, 0], "box": [0, 0, 4, 4]}
    assert store.prompts(vid) == {(1, 2): store.prompt(vid, 1, 2), (2, 3): hand}
    assert store.mask(vid, 1, 2) == rec and store.mask(vid, 1, 3) is None
    assert store.frame_masks(vid, 2) == {1: rec}
    assert store.mask_summary(vid) == [(1, 2, 9, -0.5, "propagated", 1.0, 1.0), (2, 4, 4, None, "hand", 4.5, 4.5)]
    assert store.masked_frames(vid) == [2, 4]
    assert store.free_obj_id(vid) == 3
    # a deleted object leaves the views but keeps its id and its rows
    with store.event(vid, "delete_object", {"obj_id": 2}) as ev:
        ev.set_object(2, {**store.object(vid, 2), "deleted": True})
    with pytest.raises(NotFound):
        store.object(vid, 2)
    assert [o["obj_id"] for o in store.objects(vid, include_deleted=True)] == [1, 2]
    assert store.masked_frames(vid) == [2] and list(store.prompts(vid)) == [(1, 2)]
    assert store.mask(vid, 2, 4) is not None and store.free_obj_id(vid) == 3


def test_bad_writes_name_the_problem(tmp_path):
    store, vid = new_store(tmp_path)
    add_object(store, vid)
    rec = mask_record(box_mask(0, 0, 1, 1), 1.0, "prompt")
    cases = [
        (lambda ev: ev.set_object(0, {}), "obj_id"),
        (lambda ev: ev.set_object(1, {"size": 3}), "fields"),
        (lambda ev: ev.set_object(1, {"colour": "red"}), "colour"),
        (lambda ev: ev.set_mask(1, T, rec), "frame 5 is outside"),
        (lambda ev: ev.set_mask(1, 0, {**rec, "source": "guess"}), "source"),
        (lambda ev: ev.set_mask(1, 0, mask_record(np.zeros((2, 2), bool), 1.0, "prompt")), "size"),
        (lambda ev: ev.set_mask(1, 0, {**rec, "score": float("nan")}), "score"),
        (lambda ev: ev.set_prompt(1, 0, {"points": [[1, 2]], "labels": []}), "same length"),
        (lambda ev: ev.set_prompt(1, 0, {"points": [[1, 2]], "labels": [2]}), "labels"),
        (lambda ev: ev.set_prompt(1, 0, {"box": [1, 2, 3]}), "box"),
    ]
    for write, message in cases:
        with pytest.raises(StoreError, match=message), store.event(vid, "click", {}) as ev:
            write(ev)
    with pytest.raises(NotFound, match="object 7"), store.event(vid, "click", {}) as ev:
        ev.set_mask(7, 0, rec)
    with pytest.raises(StoreError, match="kind"), store.event(vid, "dance", {}):
        pass
    assert len(store.history(vid)) == 1 and store.video(vid)["version"] == 1  # none of them left anything


def test_event_rolled_back_on_exception_leaves_nothing(tmp_path):
    store, vid = new_store(tmp_path)
    add_object(store, vid)
    with pytest.raises(RuntimeError), store.event(vid, "click", {}) as ev:
        ev.set_prompt(1, 0, {"points": [[1, 1]], "labels": [1], "box": None})
        ev.set_mask(1, 0, mask_record(box_mask(0, 0, 2, 2), 2.0, "prompt"))
        ev.set_object(2, {"name": "new"})
        raise RuntimeError("model failed")
    assert store.prompts(vid) == {} and store.mask(vid, 1, 0) is None and len(store.objects(vid)) == 1
    assert store.video(vid)["version"] == 1 and [e["kind"] for e in store.history(vid)] == ["add_object"]
    with pytest.raises(StoreError, match="closed"):
        ev.set_object(3, {})
    assert store.undo(vid)["kind"] == "add_object"  # the undo stack did not see the failed event


def test_undo_redo_every_change_kind(tmp_path):
    store, vid = new_store(tmp_path)
    def snapshot():  # everything of the video, after each event
        return (store.objects(vid, include_deleted=True), store.prompts(vid),
                [store.frame_masks(vid, t) for t in range(T)], store.mask(vid, 1, 0))

    states = [snapshot()]
    add_object(store, vid, 1)
    states.append(snapshot())
    with store.event(vid, "update_object", {}) as ev:
        ev.set_object(1, {"name": "renamed", "hidden": True})
    states.append(snapshot())
    with store.event(vid, "click", {}) as ev:  # prompt + mask, the same key written twice
        ev.set_prompt(1, 0, {"points": [[1, 1]], "labels": [1], "box": None})
        ev.set_mask(1, 0, mask_record(box_mask(0, 0, 2, 2), 2.0, "prompt"))
        ev.set_mask(1, 0, mask_record(box_mask(0, 0, 3, 3), 3.0, "prompt"))
    assert store.mask(vid, 1, 0)["area"] == 9  # the last write of a key wins
    states.append(snapshot())
    with store.event(vid, "propagate", {}) as ev:  # a multi-frame event
        for t in range(1, T):
            ev.set_mask(1, t, mask_record(box_mask(0, 0, t, t), 1.0, "propagated"))
    states.append(snapshot())
    with store.event(vid, "clear", {}) as ev:
        ev.set_prompt(1, 0, None)
        ev.set_mask(1, 0, None)
    states.append(snapshot())
    with store.event(vid, "delete_object", {}) as ev:
        ev.set_object(1, {**store.object(vid, 1), "deleted": True})
    states.append(snapshot())
    assert len({repr(s) for s in states}) == len(states)  # every event changed something
    assert store.can_undo(vid) and not store.can_redo(vid)

    version = store.video(vid)["version"]
    for i in range(len(states) - 1, 0, -1):
        event = store.undo(vid, expect_version=version)
        version += 1
        assert event["state"] == "undone" and event["version"] == version == store.video(vid)["version"]
        assert snapshot() == states[i - 1], event["kind"]
    assert store.undo(vid) is None and not store.can_undo(vid) and store.can_redo(vid)
    for i in range(1, len(states)):
        assert store.redo(vid)["state"] == "done"
        assert snapshot() == states[i]
    assert store.redo(vid) is None
    assert [e["state"] for e in store.history(vid)] == ["done"] * (len(states) - 1)


def test_new_event_discards_the_redo_stack(tmp_path):
    store, vid = new_store(tmp_path)
    add_object(store, vid, 1)
    add_object(store, vid, 2)
    add_object(store, vid, 3)
    store.undo(vid)
    store.undo(vid)
    assert store.can_redo(vid)
    add_object(store, vid, 4)
    assert not store.can_redo(vid) and store.redo(vid) is None
    assert [e["state"] for e in store.history(vid)] == ["done", "discarded", "discarded", "done"]
    assert [o["obj_id"] for o in store.objects(vid)] == [1, 4]
    assert store.undo(vid)["payload"] == {"obj_id": 4} and store.undo(vid)["payload"] == {"obj_id": 1}
    assert store.undo(vid) is None  # discarded events are never undone


def test_stale_version_refused_with_the_current_version(tmp_path):
    store, vid = new_store(tmp_path)
    v1 = add_object(store, vid)
    assert v1 == 1
    for write in (lambda: store.event(vid, "click", {}, expect_version=0).__enter__(),
                  lambda: store.begin_event(vid, "propagate", {}, expect_version=0),
                  lambda: store.undo(vid, expect_version=0), lambda: store.redo(vid, expect_version=5)):
        with pytest.raises(StaleError) as info:
            write()
        assert info.value.current_version == 1
    with store.event(vid, "update_object", {}, expect_version=1) as ev:
        ev.set_object(1, {"name": "x"})
    assert ev.version == 2 and store.undo(vid, expect_version=2)["version"] == 3


def test_busy_while_a_long_event_runs(tmp_path):
    store, vid = new_store(tmp_path)
    add_object(store, vid)
    other = store.add_video(1, "b.mp4", "b", T, W, H, None)["id"]
    ev = store.begin_event(vid, "propagate", {"frame": 0})
    assert not store.can_undo(vid) and not store.can_redo(vid)
    for write in (lambda: store.event(vid, "click", {}).__enter__(), lambda: store.undo(vid),
                  lambda: store.redo(vid), lambda: store.begin_event(vid, "propagate", {})):
        with pytest.raises(Busy, match="propagate"):
            write()
    add_object(store, other)  # another video is not busy
    ev.set_mask(1, 0, mask_record(box_mask(0, 0, 2, 2), 1.0, "propagated"))
    assert store.mask(vid, 1, 0) is None  # buffered until the flush
    v = ev.flush()
    assert v == store.video(vid)["version"] and store.mask(vid, 1, 0)["source"] == "propagated"
    ev.set_mask(1, 1, mask_record(box_mask(0, 0, 3, 3), 1.0, "propagated"))
    final = ev.finish("cancelled", note="stopped by the user")
    assert final == store.video(vid)["version"] > v and store.mask(vid, 1, 1) is not None
    event = store.history(vid)[0]
    assert event["state"] == "done" and event["payload"] == {"frame": 0, "outcome": "cancelled",
                                                             "note": "stopped by the user"}
    with pytest.raises(StoreError, match="closed"):
        ev.flush()
    assert store.undo(vid)["kind"] == "propagate"  # the whole propagation is one undo step
    assert store.mask(vid, 1, 0) is None and store.mask(vid, 1, 1) is None


def test_flush_is_visible_to_another_connection_while_running(tmp_path):
    store, vid = new_store(tmp_path)
    add_object(store, vid)
    ev = store.begin_event(vid, "propagate", {})
    observer = Store(store.path)  # a separate connection; must not close the live event
    for t in range(3):
        ev.set_mask(1, t, mask_record(box_mask(0, 0, t + 1, t + 1), 1.0, "propagated"))
        assert observer.mask(vid, 1, t) is None
        version = ev.flush()
        assert observer.mask(vid, 1, t)["area"] == (t + 1) ** 2 and observer.video(vid)["version"] == version
    assert observer.history(vid)[0]["state"] == "running"
    with pytest.raises(Busy):
        observer.undo(vid)
    ev.finish()
    assert observer.history(vid)[0]["state"] == "done" and observer.can_undo(vid)
    observer.close()
    store.close()


def test_close_finishes_this_stores_long_events(tmp_path):
    store, vid = new_store(tmp_path)
    add_object(store, vid)
    ev = store.begin_event(vid, "propagate", {})
    ev.set_mask(1, 0, mask_record(box_mask(0, 0, 2, 2), 1.0, "propagated"))
    ev.flush()
    ev.set_mask(1, 1, mask_record(box_mask(0, 0, 2, 2), 1.0, "propagated"))  # never flushed: not acknowledged
    store.close()
    reopened = Store(store.path)
    assert reopened.history(vid)[0]["state"] == "done" and reopened.masked_frames(vid) == [0]


CHILD = textwrap.dedent("""
    import sys, numpy as np
    from samstream.app.store import Store, mask_record
    path, mode = sys.argv[1], sys.argv[2]
    store = Store(path)
    vid = store.add_video(store.create_project("p")["id"], "a.mp4", "a", 1000, 8, 6, None)["id"]
    with store.event(vid, "add_object", {}) as ev:
        ev.set_object(1, {"name": "o"})
    rec = mask_record(np.ones((6, 8), bool), 1.0, "propagated")
    if mode == "long":
        ev = store.begin_event(vid, "propagate", {})
    for t in range(1000):
        if mode == "long":
            ev.set_mask(1, t, rec)
            ev.flush()
        else:
            with store.event(vid, "click", {"t": t}) as ev:
                ev.set_mask(1, t, rec)
        print("committed", t + 1, flush=True)
""")


@pytest.mark.parametrize("mode", ["short", "long"])
def test_kill_9_loses_nothing_acknowledged(tmp_path, mode):
    path = tmp_path / "app.db"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(path), mode], cwd=REPO, stdout=subprocess.PIPE,
                             text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        for line in child.stdout:
            acknowledged = int(line.split()[1])
            if acknowledged >= 12:
                break
        os.kill(child.pid, signal.SIGKILL)  # mid-write: the child never stops on its own before frame 1000
    finally:
        child.kill()
        child.wait()
    assert child.returncode == -signal.SIGKILL and acknowledged == 12
    store = Store(path)
    frames = store.masked_frames(1)
    assert len(frames) >= 12 and frames == list(range(len(frames)))
    history = store.history(1, limit=2000)
    if mode == "short":
        assert len(history) == len(frames) + 1 and {e["state"] for e in history} == {"done"}
    else:  # the running propagation was closed with what it flushed
        assert history[0]["state"] == "done" and history[0]["payload"]["note"] == "interrupted"
        assert store.undo(1)["kind"] == "propagate" and store.masked_frames(1) == []


def test_concurrent_writes_from_threads(tmp_path):
    store, vid = new_store(tmp_path)
    num_threads, per_thread = 4, 8
    for i in range(1, num_threads + 1):
        add_object(store, vid, i)
    errors = []

    def writer(obj_id):
        try:
            for k in range(per_thread):
                with store.event(vid, "click", {"obj_id": obj_id, "k": k}) as ev:
                    ev.set_mask(obj_id, k % T, mask_record(box_mask(0, 0, k + 1, 1), float(k), "prompt"))
                    ev.set_prompt(obj_id, k % T, {"points": [[k, 0]], "labels": [1], "box": None})
                store.frame_masks(vid, k % T)  # reads in between
        except Exception as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(1, num_threads + 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert store.video(vid)["version"] == num_threads * (1 + per_thread)
    assert len(store.history(vid)) == num_threads * (1 + per_thread)
    for obj_id in range(1, num_threads + 1):
        for f in range(T):
            last_k = max(k for k in range(per_thread) if k % T == f)
            assert store.mask(vid, obj_id, f)["score"] == float(last_k)
            assert store.prompt(vid, obj_id, f)["points"] == [[float(last_k), 0.0]]
    other = Store(store.path)
    assert other.video(vid)["version"] == store.video(vid)["version"]
    with other._lock:
        assert other._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
