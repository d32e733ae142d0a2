"""Automatic proposals in the app (samstream.app.proposals, routes_model): the embedded model's masks on a frame,
without those of existing objects; accepting one makes an object with that mask (one undoable event)."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient

from samstream.app import proposals as props
from samstream.app.server import create_app
from samstream.io.rle import decode_rle
from tests.helpers import demo_clip

CLICKS = {1: (89, 20), 2: (56, 91)}  # inside the demo clip's two objects on frame 0 (160x120)


@pytest.fixture(scope="module")
def model():
    from samstream.load import load_model

    return load_model(None)


@pytest.fixture
def app(tmp_path, model):
    demo_clip(tmp_path / "data" / "clip", n=3)
    with TestClient(create_app(tmp_path / "data", model, model_name="test")) as c:
        pid = c.post("/api/projects", json={"name": "p"}).json()["id"]
        vid = c.post(f"/api/projects/{pid}/videos", json={"path": "clip"}).json()["id"]
        yield c, vid


def _mask(c, vid, obj_id, frame=0):
    rec = c.get(f"/api/videos/{vid}/masks/{frame}").json()["objects"].get(str(obj_id))
    return None if rec is None else decode_rle(rec["rle"])


def _two_objects(c, vid):
    for obj_id, (x, y) in CLICKS.items():
        assert c.post(f"/api/videos/{vid}/objects", json={}).json()["object"]["obj_id"] == obj_id
        r = c.post(f"/api/videos/{vid}/click", json={"obj_id": obj_id, "frame": 0, "x": x, "y": y})
        assert r.status_code == 200, r.text


def test_proposals_leave_out_existing_objects_and_accept_makes_an_undoable_object(app):
    c, vid = app
    bare = c.post(f"/api/videos/{vid}/proposals", json={"frame": 0}).json()["proposals"]
    _two_objects(c, vid)
    existing = [_mask(c, vid, k) for k in CLICKS]
    # the bare frame's proposals include masks like the objects', which are now left out
    covered = [p for p in bare if max(props.iou(decode_rle(p["rle"]), e) for e in existing) > props.OVERLAP_IOU]
    assert covered, "the generator should find the clicked objects on the bare frame"
    r = c.post(f"/api/videos/{vid}/proposals", json={"frame": 0})
    assert r.status_code == 200, r.text
    found = r.json()["proposals"]
    assert found and len(found) <= len(bare) - len(covered)
    for p in found:
        m = decode_rle(p["rle"])
        assert p["frame"] == 0 and m.shape == (120, 160) and p["area"] == m.sum() > 0
        assert all(props.iou(m, e) <= props.OVERLAP_IOU for e in existing)
        x, y, w, h = p["bbox"]
        ys, xs = np.nonzero(m)
        assert (x, y, x + w - 1, y + h - 1) == (xs.min(), ys.min(), xs.max(), ys.max())
    assert [p["score"] for p in found] == sorted((p["score"] for p in found), reverse=True)
    assert c.get(f"/api/videos/{vid}/proposals?frame=0").json()["proposals"] == found

    pick = found[0]
    version = c.get(f"/api/videos/{vid}").json()["version"]
    r = c.post(f"/api/videos/{vid}/proposals/{pick['id']}/accept", json={"version": version})
    assert r.status_code == 200, r.text
    obj = r.json()["object"]["obj_id"]
    assert obj == 3 and r.json()["version"] == version + 1  # the next free id, one event
    assert np.array_equal(_mask(c, vid, obj), decode_rle(pick["rle"]))
    left = r.json()["proposals"]
    assert pick["id"] not in [p["id"] for p in left]
    assert all(props.iou(decode_rle(p["rle"]), decode_rle(pick["rle"])) <= props.OVERLAP_IOU for p in left)
    assert c.get(f"/api/videos/{vid}/history").json()[0]["kind"] == "accept_proposal"
    # accepted once: the proposal is gone
    assert c.post(f"/api/videos/{vid}/proposals/{pick['id']}/accept", json={}).status_code == 404

    assert c.post(f"/api/videos/{vid}/undo", json={}).status_code == 200
    assert obj not in [o["obj_id"] for o in c.get(f"/api/videos/{vid}").json()["objects"]]
    assert _mask(c, vid, obj) is None
    assert c.post(f"/api/videos/{vid}/redo", json={}).status_code == 200
    assert np.array_equal(_mask(c, vid, obj), decode_rle(pick["rle"]))


def test_reject_and_drop_all(app):
    c, vid = app
    found = c.post(f"/api/videos/{vid}/proposals", json={"frame": 1}).json()["proposals"]
    assert len(found) >= 2
    r = c.post(f"/api/videos/{vid}/proposals/{found[0]['id']}/reject")
    assert r.status_code == 200 and [p["id"] for p in r.json()["proposals"]] == [p["id"] for p in found[1:]]
    assert c.post(f"/api/videos/{vid}/proposals/{found[0]['id']}/reject").status_code == 404
    assert c.delete(f"/api/videos/{vid}/proposals").json() == {"dropped": len(found) - 1}
    assert c.get(f"/api/videos/{vid}/proposals").json()["proposals"] == []
    assert c.get(f"/api/videos/{vid}").json()["objects"] == []  # suggestions never touch the store


def test_bad_requests(app):
    c, vid = app
    assert c.post(f"/api/videos/{vid}/proposals", json={"frame": 9}).status_code == 400
    assert c.post(f"/api/videos/{vid}/proposals", json={"frame": "0"}).status_code == 400
    assert c.post("/api/videos/99/proposals", json={"frame": 0}).status_code == 404
    assert c.post(f"/api/videos/{vid}/proposals/1/accept", json={}).status_code == 404
