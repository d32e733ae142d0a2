"""The HTTP API of `samstream app` (samstream.app.server), through FastAPI's TestClient and a real server.

A tiny library: the first frames of samstream/assets/demo.mp4 at half size (160x120) as a PNG folder; the
embedded model, loaded once per module. Object 1 is under the click CLICKS[1] on frame 0, object 2 under
CLICKS[2].
"""
from __future__ import annotations

import http.client
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "samstream" / "assets" / "demo.mp4"
CLICKS = {1: (89, 20), 2: (56, 91)}  # video pixels of the 160x120 clip
W, H = 160, 120

try:  # H2's list of paths the library must refuse, when it is there
    from tests.helpers import TRAVERSAL_ATTEMPTS, demo_clip
except ImportError:  # pragma: no cover - the list of this file stands in
    TRAVERSAL_ATTEMPTS = ["../etc/passwd", "/etc/passwd", "clip/../../x", "..", ".samstream/app.db", "a\\..\\b",
                          "C:/Windows", "clip/\x00x", ".git/config"]


# ------------------------------------------------------------------------------------------ helpers
def make_clip(folder: Path, n: int = 8) -> Path:
    """The first n frames of the demo video at 160x120, as a PNG folder."""
    return demo_clip(folder, n, step=2)


def make_library(tmp_path: Path, n: int = 8) -> tuple[Path, Path]:
    """A data folder holding the clip 'clip' -> (data folder, clip folder)."""
    data = tmp_path / "data"
    return data, make_clip(data / "clip", n)


def client_for(data: Path, model, **kw) -> TestClient:
    from samstream.app.server import create_app

    return TestClient(create_app(data, model, model_name="test", **kw))


def open_video(client, rel: str) -> int:
    """A new project with the video `rel` -> its id."""
    pid = client.post("/api/projects", json={"name": "p"}).json()["id"]
    r = client.post(f"/api/projects/{pid}/videos", json={"path": rel})
    assert r.status_code == 200, r.text
    return r.json()["id"]


def wait_job(client, vid: int, timeout: float = 60.0) -> dict:
    """Poll the video's job until it ends -> the job."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        job = client.get(f"/api/videos/{vid}/job").json()
        if job is None or job["state"] != "running":
            return job
        time.sleep(0.05)
    raise AssertionError(f"the job did not end within {timeout} s")


def masks(client, vid: int, t: int) -> dict:
    r = client.get(f"/api/videos/{vid}/masks/{t}")
    assert r.status_code == 200, r.text
    return r.json()["objects"]


def all_masks(client, vid: int, n: int) -> list[dict]:
    return [masks(client, vid, t) for t in range(n)]


def no_server_path(text: str, *folders: Path) -> None:
    """An error body names no folder of the server (its data root, the test's folder, the code) nor a traceback."""
    for f in (*folders, ROOT):
        assert str(f) not in text, text
        assert str(Path(f).resolve()) not in text, text
    assert "Traceback" not in text and "File \"" not in text, text


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(data: Path, port: int, *extra: str) -> subprocess.Popen:
    """`samstream app --data DATA --port PORT` in a subprocess, once /api/info answers."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "samstream.cli", "app", "--data", str(data), "--port", str(port),
                             "--device", "cpu", *extra], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    end = time.monotonic() + 90
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise AssertionError(f"the server exited ({proc.returncode}): {proc.stdout.read()}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/api/info")
            if conn.getresponse().status == 200:
                return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise AssertionError("the server did not answer within 90 s")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(10)
    if proc.stdout:
        proc.stdout.close()


@pytest.fixture(scope="module")
def model():
    from samstream.load import load_model

    return load_model(None)


@pytest.fixture
def app(tmp_path, model):
    """(client, video id, data folder) on a fresh library with the 8-frame clip opened."""
    data, _ = make_library(tmp_path)
    client = client_for(data, model)
    vid = open_video(client, "clip")
    yield client, vid, data
    client.app.state.sessions.close()


# ------------------------------------------------------------------------------------------ reads
def test_info_static_files_and_library(app, tmp_path):
    client = app[0]
    info = client.get("/api/info").json()
    assert info["model"] == "test" and info["data"] == "data" and info["version"]
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert r.content == (ROOT / "samstream" / "app" / "static" / "index.html").read_bytes()
    r = client.get("/static/app.css")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/css")
    for bad in ("/static/", "/static/nope.js", "/static/.hidden", "/static/%2e%2e%2fserver.py",
                "/static/..%2Fserver.py", "/static/..%5cserver.py", "/static/%2e%2e/%2e%2e/pyproject.toml"):
        r = client.get(bad)
        assert r.status_code == 404, bad
        assert "error" in r.json()
        no_server_path(r.text, tmp_path)
    lib = client.get("/api/library").json()
    assert lib == {"path": "", "entries": [{"name": "clip", "path": "clip", "kind": "frames"}]}
    assert client.get("/api/library", params={"path": "clip"}).json()["entries"][0]["path"] == "clip/00000.png"
    assert client.get("/api/library", params={"path": "missing"}).status_code == 404


def test_projects_and_videos(app):
    client, vid, _ = app
    projects = client.get("/api/projects").json()
    assert len(projects) == 1 and projects[0]["num_videos"] == 1
    pid = projects[0]["id"]
    p = client.get(f"/api/projects/{pid}").json()
    assert p["name"] == "p" and [v["id"] for v in p["videos"]] == [vid]
    v = client.get(f"/api/videos/{vid}").json()
    assert (v["path"], v["num_frames"], v["width"], v["height"]) == ("clip", 8, W, H)
    assert v["objects"] == [] and not v["can_undo"] and not v["can_redo"] and v["job"] is None
    assert client.get("/api/projects/999").status_code == 404
    assert client.get("/api/videos/999").json() == {"error": "no video 999"}
    r = client.post("/api/projects/999/videos", json={"path": "clip"})
    assert r.status_code == 404
    r = client.post(f"/api/projects/{pid}/videos", json={"path": "missing.mp4"})
    assert r.status_code == 404 and "missing.mp4" in r.json()["error"]


def test_frames_and_overlays(app):
    client, vid, _ = app
    r = client.get(f"/api/videos/{vid}/frames/3", params={"size": 80})
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    assert "max-age" in r.headers["cache-control"]
    assert Image.open(io.BytesIO(r.content)).size == (80, 60)
    assert client.get(f"/api/videos/{vid}/frames/8").status_code == 404
    client.post(f"/api/videos/{vid}/objects", json={"colour": "#ff0000"})
    client.post(f"/api/videos/{vid}/click", json={"obj_id": 1, "frame": 0, "x": 89, "y": 20})
    r = client.get(f"/api/videos/{vid}/overlay/0")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert r.headers["cache-control"] == "no-store"
    img = np.asarray(Image.open(io.BytesIO(r.content)))
    assert img.shape == (H, W, 4)  # never upscaled
    assert img[20, 89, 3] > 0 and tuple(img[20, 89, :3]) == (255, 0, 0) and img[110, 5, 3] == 0
    client.patch(f"/api/videos/{vid}/objects/1", json={"hidden": True})
    img = np.asarray(Image.open(io.BytesIO(client.get(f"/api/videos/{vid}/overlay/0").content)))
    assert not img[..., 3].any()  # hidden objects are left out
    assert masks(client, vid, 0)["1"]["area"] > 0  # ... of the overlay only


# ------------------------------------------------------------------------------------------ actions
def test_every_action_with_undo_and_redo(app):
    client, vid, _ = app
    post = client.post

    r = post(f"/api/videos/{vid}/objects", json={"name": "cat", "category": "animal"})
    assert r.status_code == 200 and r.json()["object"]["obj_id"] == 1 and r.json()["version"] >= 1
    assert post(f"/api/videos/{vid}/objects", json={}).json()["object"]["obj_id"] == 2
    r = client.patch(f"/api/videos/{vid}/objects/2", json={"name": "ball", "colour": "#00ff00"})
    assert r.json()["object"]["name"] == "ball" and r.json()["object"]["colour"] == "#00ff00"

    r = post(f"/api/videos/{vid}/click", json={"obj_id": 1, "frame": 0, "x": 89, "y": 20})
    assert r.status_code == 200 and r.json()["mask"]["area"] > 0 and r.json()["frame"] == 0
    one = masks(client, vid, 0)["1"]
    assert one["source"] == "prompt" and one["area"] == r.json()["mask"]["area"]
    r = post(f"/api/videos/{vid}/click", json={"obj_id": 1, "frame": 0, "x": 89, "y": 20, "positive": False})
    assert masks(client, vid, 0)["1"]["rle"] != one["rle"]  # a negative click on the object changes its mask
    assert post(f"/api/videos/{vid}/undo", json={}).status_code == 200
    assert masks(client, vid, 0)["1"] == one

    x, y = CLICKS[2]
    r = post(f"/api/videos/{vid}/box", json={"obj_id": 2, "frame": 0, "box": [x - 12, y - 12, x + 12, y + 12]})
    assert r.status_code == 200 and masks(client, vid, 0)["2"]["area"] > 0

    r = post(f"/api/videos/{vid}/brush", json={"obj_id": 1, "frame": 2, "points": [[20, 20], [40, 20]],
                                               "radius": 5})
    assert r.status_code == 200
    painted = masks(client, vid, 2)["1"]
    assert painted["source"] == "hand" and painted["score"] is None and painted["area"] > 20 * 10
    post(f"/api/videos/{vid}/brush", json={"obj_id": 1, "frame": 2, "points": [[20, 20]], "radius": 5,
                                           "erase": True})
    erased = masks(client, vid, 2)["1"]
    assert 0 < erased["area"] < painted["area"]
    post(f"/api/videos/{vid}/clear", json={"obj_id": 1, "frame": 2})
    assert "1" not in masks(client, vid, 2)
    post(f"/api/videos/{vid}/undo", json={})
    assert masks(client, vid, 2)["1"] == erased
    r = post(f"/api/videos/{vid}/redo", json={})
    assert r.status_code == 200 and "1" not in masks(client, vid, 2)

    r = client.delete(f"/api/videos/{vid}/objects/2")
    assert r.status_code == 200
    assert [o["obj_id"] for o in client.get(f"/api/videos/{vid}").json()["objects"]] == [1]
    assert set(masks(client, vid, 0)) == {"1"}
    post(f"/api/videos/{vid}/undo")  # no body at all is fine too
    assert set(masks(client, vid, 0)) == {"1", "2"}

    kinds = [e["kind"] for e in client.get(f"/api/videos/{vid}/history").json()]
    for kind in ("add_object", "update_object", "click", "box", "brush", "clear", "delete_object"):
        assert kind in kinds
    v = client.get(f"/api/videos/{vid}").json()
    assert v["can_undo"] and v["can_redo"]
    while client.get(f"/api/videos/{vid}").json()["can_undo"]:
        assert post(f"/api/videos/{vid}/undo", json={}).status_code == 200
    r = post(f"/api/videos/{vid}/undo", json={})
    assert r.status_code == 400 and r.json()["error"] == "nothing to undo"
    assert client.get(f"/api/videos/{vid}").json()["objects"] == []
    assert all(masks(client, vid, t) == {} for t in range(8))


def test_locked_frames_survive_propagation(app):
    client, vid, _ = app
    client.post(f"/api/videos/{vid}/objects", json={})
    client.post(f"/api/videos/{vid}/click", json={"obj_id": 1, "frame": 0, "x": 89, "y": 20})
    client.post(f"/api/videos/{vid}/brush", json={"obj_id": 1, "frame": 4, "points": [[82, 20], [96, 20]],
                                                  "radius": 6})
    locked = masks(client, vid, 4)["1"]
    r = client.post(f"/api/videos/{vid}/propagate", json={"frame": 0})
    assert r.status_code == 202 and r.json()["job"]["state"] in ("running", "done")
    job = wait_job(client, vid)
    assert job["state"] == "done" and job["done"] == job["total"] == 8
    assert masks(client, vid, 4)["1"] == locked  # the hand-edited frame is never overwritten
    for t in (1, 2, 3, 5, 6, 7):
        m = masks(client, vid, t)["1"]
        assert m["source"] == "propagated" and (m["area"] > 0 or t > 4), (t, m["area"])
    tl = client.get(f"/api/videos/{vid}/timeline").json()
    assert tl["num_frames"] == 8 and 4 in tl["objects"]["1"]["locked"]
    assert tl["objects"]["1"]["frames"] == list(range(8))


def test_cancel_keeps_finished_frames_and_edits_wait_while_busy(tmp_path, model):
    data, _ = make_library(tmp_path, n=40)
    client = client_for(data, model)
    vid = open_video(client, "clip")
    client.post(f"/api/videos/{vid}/objects", json={})
    version = client.post(f"/api/videos/{vid}/click", json={"obj_id": 1, "frame": 0, "x": 89, "y": 20}
                          ).json()["version"]
    assert client.post(f"/api/videos/{vid}/propagate", json={"frame": 0, "version": version}).status_code == 202
    r = client.post(f"/api/videos/{vid}/click", json={"obj_id": 1, "frame": 5, "x": 89, "y": 20})
    assert r.status_code == 409 and "busy" in r.json()["error"] and isinstance(r.json()["version"], int)
    assert client.post(f"/api/videos/{vid}/undo", json={}).status_code == 409
    r = client.post(f"/api/videos/{vid}/propagate", json={"frame": 0})
    assert r.status_code == 409
    end = time.monotonic() + 60
    while client.get(f"/api/videos/{vid}/job").json()["done"] < 3 and time.monotonic() < end:
        time.sleep(0.02)
    assert client.post(f"/api/videos/{vid}/cancel").status_code == 200
    job = wait_job(client, vid)
    assert job["state"] == "cancelled" and 3 <= job["done"] < job["total"] == 40
    stored = [t for t in range(40) if "1" in masks(client, vid, t)]
    assert stored == list(range(len(stored))) and job["done"] <= len(stored) <= job["done"] + 1
    assert all(masks(client, vid, t)["1"]["source"] == "propagated" for t in stored[1:])
    r = client.post(f"/api/videos/{vid}/click", json={"obj_id": 1, "frame": 30, "x": 89, "y": 20})
    assert r.status_code == 200  # no longer busy
    client.app.state.sessions.close()


def test_stale_edits_are_refused_with_the_current_version(app):
    client, vid, _ = app
    other = TestClient(client.app)  # a second browser tab on the same server
    v0 = client.get(f"/api/videos/{vid}").json()["version"]
    assert other.get(f"/api/videos/{vid}").json()["version"] == v0
    v1 = client.post(f"/api/videos/{vid}/objects", json={"version": v0}).json()["version"]
    assert v1 > v0
    for method, url, body in [("post", "objects", {"version": v0}),
                              ("post", "click", {"obj_id": 1, "frame": 0, "x": 5, "y": 5, "version": v0}),
                              ("patch", "objects/1", {"name": "x", "version": v0}),
                              ("post", "undo", {"version": v0})]:
        r = getattr(other, method)(f"/api/videos/{vid}/{url}", json=body)
        assert r.status_code == 409, (url, r.text)
        assert r.json()["version"] == v1 and "version" in r.json()["error"]
    r = other.delete(f"/api/videos/{vid}/objects/1", params={"version": v0})
    assert r.status_code == 409 and r.json()["version"] == v1
    assert client.get(f"/api/videos/{vid}").json()["objects"][0]["name"] is None  # nothing of them was applied
    assert other.post(f"/api/videos/{vid}/objects", json={"version": v1}).status_code == 200  # after a reload


# ------------------------------------------------------------------------------------------ errors
@pytest.mark.parametrize("url, body, field", [
    ("click", {"obj_id": 1, "frame": "0", "x": 1, "y": 1}, "frame"),
    ("click", {"obj_id": 1, "frame": 0, "y": 1}, "x"),
    ("click", {"obj_id": 1, "frame": 8, "x": 1, "y": 1}, "frame"),
    ("click", {"obj_id": 1, "frame": -1, "x": 1, "y": 1}, "frame"),
    ("click", {"obj_id": 9, "frame": 0, "x": 1, "y": 1}, "obj_id"),
    ("click", {"obj_id": True, "frame": 0, "x": 1, "y": 1}, "obj_id"),
    ("click", {"obj_id": 1, "frame": 0, "x": 1, "y": 1, "label": 1}, "label"),
    ("click", '{"obj_id": 1, "frame": 0, "x": NaN, "y": 1}', "x"),
    ("click", '{"obj_id": 1, "frame": 0, "x": 1e999, "y": 1}', "x"),
    ("box", {"obj_id": 1, "frame": 0, "box": [1, 2, 3]}, "box"),
    ("box", {"obj_id": 1, "frame": 0, "box": [1, 2, 3, "4"]}, "box"),
    ("brush", {"obj_id": 1, "frame": 0, "points": [[1, 2]], "radius": 0}, "radius"),
    ("brush", {"obj_id": 1, "frame": 0, "points": [], "radius": 3}, "points"),
    ("brush", {"obj_id": 1, "frame": 0, "points": [[1, 2, 3]], "radius": 3}, "points"),
    ("clear", {"obj_id": 1}, "frame"),
    ("propagate", {"frame": 0, "direction": "sideways"}, "direction"),
    ("propagate", {"frame": 0, "version": "3"}, "version"),
    ("objects", {"colour": "red"}, "colour"),
    ("objects", {"name": 5}, "name"),
    ("objects", [], "request body"),
])
def test_bad_requests_are_400_naming_the_field(app, url, body, field):
    client, vid, _ = app
    client.post(f"/api/videos/{vid}/objects", json={})
    kw = {"content": body, "headers": {"content-type": "application/json"}} if isinstance(body, str) else \
        {"json": body}
    r = client.post(f"/api/videos/{vid}/{url}", **kw)
    assert r.status_code == 400, r.text
    assert set(r.json()) == {"error"} and r.json()["error"].startswith(field), r.json()


def test_other_errors(app, tmp_path):
    client, vid, _ = app
    assert client.post("/api/projects", json={"name": ""}).status_code == 400
    assert client.post("/api/projects", json={"name": "   "}).json() == {"error": "name: a project needs a name"}
    r = client.post(f"/api/videos/{vid}/click", content="{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400 and "JSON" in r.json()["error"]
    assert client.get(f"/api/videos/{vid}/frames/1", params={"size": 0}).json()["error"].startswith("size")
    assert client.get("/api/videos/abc").status_code == 400
    assert client.get("/api/nothing-here").json() == {"error": "Not Found"}
    assert client.put(f"/api/videos/{vid}/click").status_code == 405
    assert client.patch(f"/api/videos/{vid}/objects/7", json={"name": "x"}).status_code == 404
    assert client.delete(f"/api/videos/{vid}/objects/7").status_code == 404
    client.post(f"/api/videos/{vid}/objects", json={})
    assert client.patch(f"/api/videos/{vid}/objects/1", json={}).json()["error"].startswith("nothing to change")
    assert client.post(f"/api/videos/{vid}/redo", json={}).json() == {"error": "nothing to redo"}
    r = client.post(f"/api/videos/{vid}/propagate", json={"frame": 0})
    assert r.status_code == 400 and "nothing to propagate" in r.json()["error"]
    assert client.get(f"/api/videos/{vid}/export", params={"format": "tiff"}).status_code == 400
    assert client.get(f"/api/videos/{vid}/job").json() is None
    assert client.post(f"/api/videos/{vid}/cancel").json() is None


def test_an_internal_error_answers_500_without_details(app, tmp_path, monkeypatch):
    client, vid, data = app
    secret = str(data.resolve() / ".samstream" / "app.db")

    def broken(*a, **k):
        raise RuntimeError(f"disk I/O error at {secret}")

    monkeypatch.setattr(client.app.state.store, "history", broken)
    r = TestClient(client.app, raise_server_exceptions=False).get(f"/api/videos/{vid}/history")
    assert r.status_code == 500 and r.json() == {"error": "internal error"}


def test_path_traversal_is_refused(app, tmp_path):
    client, _, data = app
    (tmp_path / "outside.png").write_bytes((data / "clip" / "00000.png").read_bytes())
    pid = client.get("/api/projects").json()[0]["id"]
    attempts = list(TRAVERSAL_ATTEMPTS) + ["../outside.png", "clip/../../outside.png", "%2e%2e/outside.png",
                                           ".samstream/app.db", ".samstream"]
    for rel in attempts:
        for r in (client.get("/api/library", params={"path": rel}),
                  client.post(f"/api/projects/{pid}/videos", json={"path": rel})):
            assert r.status_code in (400, 404), (rel, r.text)
            no_server_path(r.text, tmp_path, data)
    # percent-encoded in the query string by hand (decoded once by the server; never twice)
    for raw in ("..%2F..%2Foutside.png", "%2E%2E", "%2e%2e%2foutside.png", "%252e%252e%252foutside.png",
                "clip%2F..%2F..%2Foutside.png", "%2Fetc%2Fpasswd", "..%5Coutside.png", "clip%00",
                ".samstream%2Fapp.db"):
        r = client.get(f"/api/library?path={raw}")
        assert r.status_code in (400, 404), (raw, r.text)
        no_server_path(r.text, tmp_path, data)
    assert len(client.get(f"/api/projects/{pid}").json()["videos"]) == 1  # none was added


# ------------------------------------------------------------------------------------------ uploads
def _png_bytes(size=(32, 24)) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (*size[::-1], 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def test_uploads(app, tmp_path, model):
    client, _, data = app
    r = client.post("/api/upload", files={"file": ("../../my photo.png", _png_bytes(), "image/png")})
    assert r.status_code == 200 and r.json() == {"path": "uploads/my photo.png"}
    pid = client.get("/api/projects").json()[0]["id"]
    assert client.post(f"/api/projects/{pid}/videos", json={"path": "uploads/my photo.png"}).json()["num_frames"] == 1
    r = client.post("/api/upload", files={"file": ("clip.mp4", b"not a video at all" * 10, "video/mp4")})
    assert r.status_code == 415 and "clip.mp4" in r.json()["error"]
    no_server_path(r.text, tmp_path, data)
    assert sorted(os.listdir(data / "uploads")) == ["my photo.png"]  # the refused one left nothing

    small, _ = make_library(tmp_path / "small", n=1)
    limited = client_for(small, model, max_upload_bytes=1000)
    r = limited.post("/api/upload", files={"file": ("a.png", _png_bytes((64, 64)), "image/png")})
    assert r.status_code == 413 and "limit" in r.json()["error"]
    r = limited.post("/api/upload", files={"file": ("b.png", b"\0" * (300 << 10), "image/png")})  # refused unread
    assert r.status_code == 413 and r.json() == {"error": "the upload is larger than the limit of 1000 bytes"}

    def chunked():  # no Content-Length: refused as soon as the bytes received pass the limit
        yield b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="c.png"\r\n\r\n'
        yield from (b"\0" * 4096 for _ in range(100))
        yield b"\r\n--xyz--\r\n"

    r = limited.post("/api/upload", content=chunked(), headers={"content-type": "multipart/form-data; boundary=xyz"})
    assert r.status_code == 413 and r.json() == {"error": "the upload is larger than the limit of 1000 bytes"}
    assert not (small / "uploads").exists() or os.listdir(small / "uploads") == []


def test_export_route(app):
    client, vid, _ = app
    client.post(f"/api/videos/{vid}/objects", json={})
    client.post(f"/api/videos/{vid}/click", json={"obj_id": 1, "frame": 0, "x": 89, "y": 20})
    for fmt, name, media in [("davis", "clip_davis.zip", "application/zip"), ("sav", "clip_masks.json",
                              "application/json"), ("coco", "clip_coco.json", "application/json"),
                             ("yolo", "clip_yolo.zip", "application/zip")]:
        r = client.get(f"/api/videos/{vid}/export", params={"format": fmt})
        assert r.status_code == 200 and r.headers["content-type"] == media
        assert r.headers["content-disposition"] == f'attachment; filename="{name}"'
        assert int(r.headers["content-length"]) == len(r.content) > 0
    assert json.loads(client.get(f"/api/videos/{vid}/export?format=sav").content)["masklet_frame_idx"] == [0]


def test_only_a_few_videos_stay_open_and_nothing_is_lost(tmp_path, model):
    data, clip = make_library(tmp_path, n=3)
    shutil.copytree(clip, data / "clip2")
    client = client_for(data, model, open_sessions=1)
    a, b = open_video(client, "clip"), open_video(client, "clip2")
    for vid in (a, b):
        client.post(f"/api/videos/{vid}/objects", json={})
    for vid in (a, b, a):
        assert client.post(f"/api/videos/{vid}/click", json={"obj_id": 1, "frame": 0, "x": 89, "y": 20}
                           ).status_code == 200
        assert len(client.app.state.sessions._open) == 1
    h_a = client.get(f"/api/videos/{a}/history").json()
    assert [e["kind"] for e in h_a] == ["click", "click", "add_object"]
    assert masks(client, a, 0)["1"]["area"] > 0 and masks(client, b, 0)["1"]["area"] > 0
    client.app.state.sessions.close()


def test_precision_reaches_the_model_sessions_and_the_proposals(tmp_path, model, monkeypatch):
    from samstream.app import proposals
    from samstream.app.server import create_app

    with pytest.raises(ValueError, match="precision must be one of fp32, bf16, fp16, got 'fp64'"):
        create_app(tmp_path, model, precision="fp64")
    made = []  # the precision of every proposal generator the route builds
    real = proposals.generator
    monkeypatch.setattr(proposals, "generator",
                        lambda m, precision="fp32": made.append(precision) or real(m, precision))
    data, _ = make_library(tmp_path, n=3)
    client = client_for(data, model, precision="bf16")
    vid = open_video(client, "clip")
    client.post(f"/api/videos/{vid}/objects", json={})
    r = client.post(f"/api/videos/{vid}/click", json={"obj_id": 1, "frame": 0, "x": 89, "y": 20})
    assert r.status_code == 200, r.text
    assert client.app.state.sessions.annotator(vid)._vp.precision == "bf16"
    assert masks(client, vid, 0)["1"]["area"] > 0  # the model ran under bf16 autocast and found the object
    assert client.post(f"/api/videos/{vid}/proposals", json={"frame": 0}).status_code == 200
    assert made == ["bf16"]
    client.app.state.sessions.close()


# ------------------------------------------------------------------------------------------ a real server
@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data, _ = make_library(tmp_path_factory.mktemp("server"), n=4)
    port = free_port()
    proc = start_server(data, port)
    yield port, data, proc
    stop(proc)


def _raw(port: int, method: str, path: str, body: dict | None = None) -> tuple[int, str]:
    """One request with the path sent as given (no client-side normalising of '..')."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    data = None if body is None else json.dumps(body)
    conn.request(method, path, body=data, headers={"Content-Type": "application/json"} if data else {})
    r = conn.getresponse()
    text = r.read().decode(errors="replace")
    conn.close()
    return r.status, text


def test_a_real_server_refuses_traversal_and_stale_edits(server, tmp_path):
    port, data, proc = server
    status, text = _raw(port, "GET", "/")
    assert status == 200 and "<html" in text.lower()
    for path in ("/static/../server.py", "/static/..%2fserver.py", "/static/%2e%2e/%2e%2e/pyproject.toml",
                 "/../pyproject.toml", "/static//etc/passwd", "/api/library?path=../../",
                 "/api/library?path=..%2f..%2f", "/api/library?path=%2e%2e", "/api/library?path=.samstream"):
        status, text = _raw(port, "GET", path)
        assert status in (400, 404), (path, text)
        no_server_path(text, data)
        assert "pyproject" not in text.lower() or "error" in text  # no file content, only an error
    status, text = _raw(port, "POST", "/api/projects", {"name": "p"})
    pid = json.loads(text)["id"]
    status, text = _raw(port, "POST", f"/api/projects/{pid}/videos", {"path": "clip"})
    vid = json.loads(text)["id"]
    v0 = json.loads(_raw(port, "GET", f"/api/videos/{vid}")[1])["version"]
    status, text = _raw(port, "POST", f"/api/videos/{vid}/objects", {"version": v0})  # client A
    assert status == 200
    status, text = _raw(port, "POST", f"/api/videos/{vid}/objects", {"version": v0})  # client B, stale
    assert status == 409 and json.loads(text)["version"] == v0 + 1

    # a second server on the same port says so in one line; SIGTERM stops the first one as Ctrl-C would
    second = subprocess.run([sys.executable, "-m", "samstream.cli", "app", "--data", str(data), "--port", str(port),
                             "--device", "cpu"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert second.returncode == 2 and second.stderr.startswith(f"error: cannot serve on http://127.0.0.1:{port}/")
    assert len(second.stderr.strip().splitlines()) == 1 and "another program" in second.stderr
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 128 + signal.SIGTERM
    assert proc.stdout.read().splitlines()[0].endswith(f"on http://127.0.0.1:{port}/ (Ctrl-C to stop)")


def test_the_command_refuses_a_public_host(tmp_path, capsys):
    from samstream.cli import main

    assert main(["app", "--data", str(tmp_path), "--host", "0.0.0.0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --host 0.0.0.0: other machines could reach the app, and it has no accounts")
    assert "users add" in err and "\n" not in err
    assert main(["app", "--data", str(tmp_path / "missing")]) == 2
    assert "not a folder" in capsys.readouterr().err
