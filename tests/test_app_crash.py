"""Kill -9 loses nothing acknowledged: a real `samstream app` process takes 50 annotation actions over HTTP, is
killed with SIGKILL, and a new one on the same data folder has all 50 events and every mask as before. A server
killed in the middle of a propagation comes back with what it had flushed, and is not stuck "busy"."""
from __future__ import annotations

import os
import signal
import sys
import time

import pytest

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")

from .test_app_api import CLICKS, free_port, make_library, start_server, stop  # noqa: E402

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
N = 6  # frames of the clip


class Api:
    """A client of one server: every write must answer 2xx (it is acknowledged)."""

    def __init__(self, port: int, vid: int | None = None):
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60)
        self.vid = vid
        self.acked = 0  # acknowledged events

    def __call__(self, method: str, url: str, **kw):
        r = self.http.request(method, url.format(vid=self.vid), **kw)
        assert r.is_success, (method, url, r.status_code, r.text)
        return r.json()

    def act(self, method: str, url: str, body: dict | None = None):
        out = self(method, f"/api/videos/{{vid}}/{url}", **({} if body is None else {"json": body}))
        self.acked += 1
        return out

    def wait(self) -> dict:
        end = time.monotonic() + 60
        while time.monotonic() < end:
            job = self("GET", "/api/videos/{vid}/job")
            if job["state"] != "running":
                return job
            time.sleep(0.05)
        raise AssertionError("the propagation did not end")

    def state(self) -> tuple[list, list, int]:
        """(history, the /masks answer of every frame, version)."""
        history = self("GET", "/api/videos/{vid}/history", params={"limit": 1000})
        masks = [self("GET", f"/api/videos/{{vid}}/masks/{t}") for t in range(N)]
        return history, masks, self("GET", "/api/videos/{vid}")["version"]


def fifty_actions(api: Api) -> None:
    (x1, y1), (x2, y2) = CLICKS[1], CLICKS[2]
    api.act("POST", "objects", {"name": "one"})
    api.act("POST", "objects", {})
    api.act("PATCH", "objects/1", {"name": "cat"})
    api.act("PATCH", "objects/2", {"name": "ball", "category": "toy"})
    api.act("POST", "click", {"obj_id": 1, "frame": 0, "x": x1, "y": y1})
    api.act("POST", "click", {"obj_id": 2, "frame": 0, "x": x2, "y": y2})
    api.act("POST", "propagate", {"frame": 0, "direction": "forward"})
    assert api.wait()["state"] == "done"
    for t in range(1, N):  # 15
        api.act("POST", "click", {"obj_id": 1, "frame": t, "x": x1 + t, "y": y1})
        api.act("POST", "box", {"obj_id": 2, "frame": t, "box": [x2 - 10, y2 - 10, x2 + 10 + t, y2 + 10]})
        api.act("POST", "brush", {"obj_id": 1, "frame": t, "points": [[10, 100], [20 + t, 105]], "radius": 3})
    api.act("POST", "objects", {"colour": "#123456"})
    api.act("PATCH", "objects/3", {"name": "third"})
    for t in range(N):  # 6
        api.act("POST", "click", {"obj_id": 3, "frame": t, "x": 130 - 3 * t, "y": 60})
    for t in range(N):  # 6
        api.act("POST", "brush", {"obj_id": 2, "frame": t, "points": [[x2, y2]], "radius": 4, "erase": True})
    api.act("PATCH", "objects/3", {"hidden": True})
    api.act("PATCH", "objects/3", {"hidden": False})
    for t in range(N):  # 6
        api.act("POST", "box", {"obj_id": 1, "frame": t, "box": [x1 - 15, y1 - 12, x1 + 15, y1 + 12]})
    api.act("POST", "clear", {"obj_id": 3, "frame": N - 1})
    for t in range(4):
        api.act("POST", "click", {"obj_id": 1, "frame": t, "x": x1 + 14, "y": y1 + 11, "positive": False})
    api.act("PATCH", "objects/1", {"colour": "#abcdef"})


def kill9(proc) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    assert proc.returncode == -signal.SIGKILL


def test_kill_9_loses_no_acknowledged_action(tmp_path):
    data, _ = make_library(tmp_path, n=N)
    port = free_port()
    proc = start_server(data, port)
    try:
        api = Api(port)
        pid = api("POST", "/api/projects", json={"name": "crash"})["id"]
        api.vid = api("POST", f"/api/projects/{pid}/videos", json={"path": "clip"})["id"]
        fifty_actions(api)
        assert api.acked == 50
        before = api.state()
        objects = api("GET", "/api/videos/{vid}")["objects"]
        assert [(o["obj_id"], o["name"]) for o in objects] == [(1, "cat"), (2, "ball"), (3, "third")]
        assert objects[0]["colour"] == "#abcdef" and objects[2]["colour"] == "#123456"
        assert len(before[0]) == 50 and all(e["state"] == "done" for e in before[0])
        assert sum(len(m["objects"]) for m in before[1]) >= 2 * N  # masks of every frame to compare
        kill9(proc)  # right after the last acknowledged answer

        proc = start_server(data, port)
        api = Api(port, api.vid)
        after = api.state()
        assert after[0] == before[0]  # all 50 events, as they were
        assert after[1] == before[1]  # every stored mask
        assert after[2] == before[2]
        assert api("GET", "/api/videos/{vid}")["objects"] == objects

        # killed in the middle of a propagation: what was flushed stays, the event is closed, edits work again
        api.act("POST", "propagate", {"frame": 0, "direction": "forward"})
        end = time.monotonic() + 60
        while api("GET", "/api/videos/{vid}/job")["done"] < 1 and time.monotonic() < end:
            time.sleep(0.01)
        kill9(proc)
        proc = start_server(data, port)
        api = Api(port, api.vid)
        history = api("GET", "/api/videos/{vid}/history", params={"limit": 1000})
        assert len(history) == 51 and history[0]["kind"] == "propagate"
        assert history[0]["state"] != "running" and history[1:] == before[0]
        assert api("GET", "/api/videos/{vid}")["can_undo"]
        x, y = CLICKS[1]
        api.act("POST", "click", {"obj_id": 1, "frame": 2, "x": x, "y": y})  # not busy
        api.act("POST", "undo", {})
    finally:
        stop(proc)
