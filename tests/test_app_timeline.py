"""timeline / next_flagged (on a stub store and a real one) and brush.paint_stroke."""
from __future__ import annotations

import numpy as np
import pytest

from samstream.app.brush import paint_stroke
from samstream.app.store import Store, mask_record
from samstream.app.timeline import next_flagged, timeline


class StubStore:
    """The three reads timeline makes, from (obj_id, frame, area, score, source, cx, cy) rows."""

    def __init__(self, rows, live=(1,), size=(100, 100), num_frames=20):
        self.rows, self.live, self.size, self.num_frames = rows, live, size, num_frames

    def video(self, video_id):
        return {"num_frames": self.num_frames, "width": self.size[0], "height": self.size[1]}

    def objects(self, video_id):
        return [{"obj_id": o} for o in self.live]

    def mask_summary(self, video_id):
        return self.rows


def row(frame, area=400, score=5.0, source="propagated", cx=50.0, cy=50.0, obj=1):
    return (obj, frame, area, score, source, cx, cy)


def test_flags_unsure_and_disagreeing_frames():
    rows = [row(0, source="prompt"), row(1, score=0.5), row(2, score=-0.5, area=400), row(3, score=4.0, area=0,
            cx=None, cy=None), row(4, score=-4.0, area=0, cx=None, cy=None), row(5, score=-4.0, area=30), row(6)]
    tl = timeline(StubStore(rows), 7)
    obj = tl["objects"][1]
    assert tl["num_frames"] == 20
    assert obj["frames"] == list(range(7)) and obj["area"][3] == 0 and obj["source"][0] == "prompt"
    assert obj["flags"] == [1, 2, 3, 5, 6]  # 4 is confidently absent: fine; 6 grows x13 from frame 5
    assert obj["locked"] == []


def test_flags_jumps_against_the_previous_masked_frame():
    # diagonal 141.4 -> 7.07 px; area 400 -> equivalent diameter 22.6 -> 5.64 px: a move over 12.7 px jumps
    rows = [row(0), row(1, area=801), row(2, area=790), row(3, area=380), row(4, area=0, score=-5, cx=None, cy=None),
            row(5, area=390, cx=50.0 + 12.0), row(6, area=390, cx=62.0 + 13.5), row(7, area=100, source="hand"),
            row(8, area=110)]
    obj = timeline(StubStore(rows), 1)["objects"][1]
    # 1: area x2.0 (+1), 3: /2.08, 5: moved 12 px from frame 3 (the previous non-empty), 6: 13.5 px, 7: locked,
    # 8: compared with the hand mask of 7, not flagged
    assert obj["flags"] == [1, 3, 6]
    assert obj["locked"] == [7]


def test_deleted_objects_are_left_out_and_next_flagged():
    rows = [row(0, obj=1), row(3, score=0.1, obj=1), row(9, score=0.2, obj=1), row(2, score=0.1, obj=2)]
    tl = timeline(StubStore(rows, live=(1, 3)), 1)
    assert set(tl["objects"]) == {1, 3} and tl["objects"][3]["frames"] == []
    assert next_flagged(tl, 1, 0) == 3 and next_flagged(tl, 1, 3) == 9 and next_flagged(tl, 1, 9) is None
    assert next_flagged(tl, 3, 0) is None and next_flagged(tl, 2, 0) is None
    as_json = {"num_frames": 20, "objects": {"1": tl["objects"][1]}}
    assert next_flagged(as_json, 1, 4) == 9


def test_timeline_on_a_real_store(tmp_path):
    store = Store(tmp_path / "app.db")
    vid = store.add_video(store.create_project("p")["id"], "clip", "clip", 5, 32, 24, None)["id"]
    small, big = np.zeros((24, 32), bool), np.zeros((24, 32), bool)
    small[4:8, 4:8] = True
    big[4:20, 4:20] = True
    with store.event(vid, "add_object", {}) as ev:
        ev.set_object(1, {"name": None, "category": None, "colour": None, "hidden": False, "deleted": False})
        ev.set_mask(1, 0, mask_record(small, 6.0, "prompt"))
        ev.set_mask(1, 2, mask_record(big, 6.0, "propagated"))
        ev.set_mask(1, 3, mask_record(big, None, "hand"))
    obj = timeline(store, vid)["objects"][1]
    assert obj["frames"] == [0, 2, 3] and obj["area"] == [16, 256, 256] and obj["score"] == [6.0, 6.0, None]
    assert obj["flags"] == [2] and obj["locked"] == [3]
    store.close()


# ------------------------------------------------------------------------------------------ brush
def test_brush_disc_and_capsule():
    empty = np.zeros((20, 30), bool)
    disc = paint_stroke(empty, [[10, 10]], 3)
    ys, xs = np.mgrid[:20, :30]
    assert np.array_equal(disc, (xs + 0.5 - 10) ** 2 + (ys + 0.5 - 10) ** 2 <= 9) and disc.sum() == 32
    assert not empty.any()  # a copy
    line = paint_stroke(empty, [[5, 10], [25, 10]], 2)
    assert line[9:11, 5:25].all() and not line[:7].any() and not line[13:].any()
    assert line.sum() > disc.sum() * 2
    tiny = paint_stroke(empty, [[3.2, 4.7]], 0.1)  # inside pixel (row 4, col 3), nowhere near its centre
    assert tiny.sum() == 0
    assert paint_stroke(empty, [[3.5, 4.5]], 0.1)[4, 3] and paint_stroke(empty, [[3.5, 4.5]], 0.1).sum() == 1


def test_brush_erase_and_outside():
    full = np.ones((10, 10), bool)
    out = paint_stroke(full, [[0, 0], [10, 10]], 1, erase=True)
    assert not out[5, 5] and out[0, 9] and out[9, 0]
    edge = paint_stroke(np.zeros((10, 10), bool), [[-2, 5], [-2, 5]], 3)  # mostly outside: only the edge
    assert edge[:, 0].any() and not edge[:, 2:].any()
    assert not paint_stroke(np.zeros((10, 10), bool), [[50, 50]], 3).any()


@pytest.mark.parametrize("points, radius, match", [([], 2, "points"), ([[1, float("inf")]], 2, "points"),
                                                   ([[1, 1]], 0, "radius"), ([[1, 1]], float("nan"), "radius")])
def test_brush_refuses_bad_strokes(points, radius, match):
    with pytest.raises(ValueError, match=match):
        paint_stroke(np.zeros((5, 5), bool), points, radius)
