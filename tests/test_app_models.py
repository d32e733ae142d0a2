"""The app's model picker (samstream.app.models, routes_model): listing, switching to a checkpoint in the data root
(stored masks unchanged, the next click uses the new model), downloading an official name with progress against a
local server, cancelling, refusal while a propagation runs, and nothing outside the data root."""
from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient

from samstream import download as dl
from samstream import save_model
from samstream.app.server import create_app
from samstream.io.rle import decode_rle
from samstream.load import load_model
from samstream.model import OFFICIAL_CONFIGS
from samstream.video.predictor import VideoPredictor
from tests.helpers import FileServer, demo_clip, small_model

CLICKS = {1: (89, 20), 2: (56, 91)}  # inside the demo clip's two objects on frame 0 (160x120)
NAME = "sam2_hiera_testmini"  # a tiny model registered as an official 2.0 name (no published size or hash)


@pytest.fixture(scope="module")
def embedded():
    return load_model(None)


@pytest.fixture
def data(tmp_path, monkeypatch):
    monkeypatch.setenv("SAMSTREAM_CACHE", str(tmp_path / "cache"))
    demo_clip(tmp_path / "data" / "clip", n=3)
    return tmp_path / "data"


@pytest.fixture
def client(data, embedded):
    with TestClient(create_app(data, embedded, model_name="built-in")) as c:
        yield c


def _video(c) -> int:
    pid = c.post("/api/projects", json={"name": "p"}).json()["id"]
    return c.post(f"/api/projects/{pid}/videos", json={"path": "clip"}).json()["id"]


def _click(c, vid, obj_id):
    if obj_id not in [o["obj_id"] for o in c.get(f"/api/videos/{vid}").json()["objects"]]:
        c.post(f"/api/videos/{vid}/objects", json={})
    x, y = CLICKS[obj_id]
    r = c.post(f"/api/videos/{vid}/click", json={"obj_id": obj_id, "frame": 0, "x": x, "y": y})
    assert r.status_code == 200, r.text
    return decode_rle(c.get(f"/api/videos/{vid}/masks/0").json()["objects"][str(obj_id)]["rle"])


def _switch(c, name, timeout=60.0) -> dict:
    r = c.post("/api/model", json={"name": name})
    assert r.status_code == 202, r.text
    end = time.monotonic() + timeout
    while (job := c.get("/api/model/job").json())["state"] in ("downloading", "loading"):
        assert time.monotonic() < end, job
        time.sleep(0.02)
    return job


def test_listing(client, data, tmp_path):
    (data / "models").mkdir()
    save_model(small_model(0), data / "models" / "ft.pt")
    (data / "models" / "notes.txt").write_text("not a checkpoint")
    (data / ".hidden").mkdir()
    (data / ".hidden" / "secret.pt").write_bytes(b"x")
    outside = tmp_path / "outside.pt"
    outside.write_bytes(b"x")
    os.symlink(outside, data / "models" / "link-out.pt")
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "sam2.1_hiera_tiny.pt").write_bytes(b"x")  # "in the cache" is: the file is there
    got = client.get("/api/models").json()
    assert got["current"] == "built-in" and got["embedded"] == "built-in" and got["job"] is None
    cached = {o["name"]: o["cached"] for o in got["official"]}
    assert set(cached) == set(dl.CHECKPOINT_FILES) and cached["sam2.1_hiera_tiny"] is True
    assert not any(v for k, v in cached.items() if k != "sam2.1_hiera_tiny")
    assert [f["path"] for f in got["files"]] == ["models/ft.pt"]
    assert got["files"][0]["size"] == (data / "models" / "ft.pt").stat().st_size
    for bad in ("../outside.pt", str(outside), "models/link-out.pt", ".hidden/secret.pt", "models/notes.txt",
                "no-such-model", "models/missing.pt"):
        r = client.post("/api/model", json={"name": bad})
        assert r.status_code in (400, 404), (bad, r.text)
        assert str(data) not in r.json()["error"]  # never the server's own folders
    assert client.get("/api/model/job").json() is None


def test_switch_to_a_checkpoint_in_the_data_root(client, data):
    vid = _video(client)
    before = _click(client, vid, 1)
    (data / "models").mkdir()
    path = save_model(small_model(3), data / "models" / "ft.pt")
    job = _switch(client, "models/ft.pt")
    assert job["state"] == "done" and job["error"] is None, job
    assert client.get("/api/models").json()["current"] == "models/ft.pt"
    assert client.get("/api/info").json()["model"] == "models/ft.pt"
    # stored masks do not change; the next click runs the new model (the session is rebuilt from the store)
    after = _click(client, vid, 2)
    stored = decode_rle(client.get(f"/api/videos/{vid}/masks/0").json()["objects"]["1"]["rle"])
    assert np.array_equal(stored, before)
    new = load_model(path)
    with VideoPredictor(new, str(data / "clip"), progress=False) as vp:
        expected = vp.add_points(0, 2, [list(CLICKS[2])], [1]).mask
    with VideoPredictor(load_model(None), str(data / "clip"), progress=False) as vp:
        old = vp.add_points(0, 2, [list(CLICKS[2])], [1]).mask
    assert not np.array_equal(expected, old)  # the two models differ here, so the check below means something
    assert np.array_equal(after, expected)
    assert _switch(client, "built-in")["state"] == "done"
    assert client.get("/api/models").json()["current"] == "built-in"


def _register(monkeypatch, tmp_path, url) -> bytes:
    m = small_model(0, name=NAME, no_obj_embed_spatial=False)
    monkeypatch.setitem(OFFICIAL_CONFIGS, NAME, m.cfg)
    monkeypatch.setitem(dl.CHECKPOINT_FILES, NAME, (url + NAME + ".pt", None, None))
    return save_model(m, tmp_path / "src" / (NAME + ".pt")).read_bytes()


def test_download_with_progress_then_switch(client, monkeypatch, tmp_path):
    with FileServer({}, chunks=6, delay=0.1) as srv:
        data = srv.files[NAME + ".pt"] = _register(monkeypatch, tmp_path, srv.url)
        assert {o["name"]: o["cached"] for o in client.get("/api/models").json()["official"]}[NAME] is False
        r = client.post("/api/model", json={"name": NAME.replace("_", "-")})
        assert r.status_code == 202 and r.json()["state"] == "downloading" and r.json()["name"] == NAME
        seen = []
        while (job := client.get("/api/model/job").json())["state"] in ("downloading", "loading"):
            seen.append((job["done"], job["total"]))
            time.sleep(0.02)
    assert job["state"] == "done", job
    partial = [d for d, t in seen if t == len(data) and 0 < d < len(data)]
    assert partial, f"no progress between 0 and {len(data)} bytes was shown: {seen}"
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert (tmp_path / "cache" / (NAME + ".pt")).read_bytes() == data
    got = client.get("/api/models").json()
    assert got["current"] == NAME and {o["name"]: o["cached"] for o in got["official"]}[NAME] is True


def test_a_download_can_be_cancelled(client, monkeypatch, tmp_path):
    with FileServer({}, chunks=50, delay=0.1) as srv:
        srv.files[NAME + ".pt"] = _register(monkeypatch, tmp_path, srv.url)
        assert client.post("/api/model", json={"name": NAME}).status_code == 202
        end = time.monotonic() + 20
        while client.get("/api/model/job").json()["done"] == 0:
            assert time.monotonic() < end
            time.sleep(0.02)
        job = client.post("/api/model/cancel").json()
    assert job["state"] == "cancelled" and 0 < job["done"] < len(srv.files[NAME + ".pt"])
    assert (tmp_path / "cache" / (NAME + ".pt.part")).is_file()  # kept: the next try resumes
    assert not (tmp_path / "cache" / (NAME + ".pt")).exists()
    assert client.get("/api/models").json()["current"] == "built-in"


def test_refused_while_a_propagation_runs(client, monkeypatch):
    gate = threading.Event()
    original = VideoPredictor.propagate

    def held(self, *a, **kw):  # the propagation waits for the test before its first frame
        frames = original(self, *a, **kw)

        def gen():
            gate.wait(30)
            yield from frames

        return gen()

    monkeypatch.setattr(VideoPredictor, "propagate", held)
    vid = _video(client)
    _click(client, vid, 1)
    assert client.post(f"/api/videos/{vid}/propagate", json={"frame": 0}).status_code == 202
    try:
        r = client.post("/api/model", json={"name": "built-in"})
        assert r.status_code == 409 and "propagating" in r.json()["error"], r.text
        assert client.get("/api/model/job").json() is None
    finally:
        gate.set()
    end = time.monotonic() + 30
    while client.get(f"/api/videos/{vid}/job").json()["state"] == "running":
        assert time.monotonic() < end
        time.sleep(0.02)
    assert _switch(client, "built-in")["state"] == "done"
