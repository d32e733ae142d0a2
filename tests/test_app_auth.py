"""Accounts of `samstream app` (samstream.app.accounts, auth, stats; `samstream app users`): logins, cookies,
CSRF, rate limits, project isolation and sharing, per-user statistics, the host rule, and the migration of a
database of the first slice (schema version 1). Through FastAPI's TestClient, and one real server process.
"""
from __future__ import annotations

import hashlib
import http.client
import io
import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient

from samstream.app import store as store_module
from samstream.app.accounts import Accounts, hash_password, verify_password
from samstream.app.store import Store, StoreError
from tests.helpers import demo_clip

ROOT = Path(__file__).resolve().parents[1]
PASSWORDS = {"alice": "alice-secret-1", "bob": "bob-secret-22", "carol": "carol-secret-333"}


@pytest.fixture(scope="module")
def model():
    from samstream.load import load_model

    return load_model(None)


def make_app(data: Path, model, **kw):
    from samstream.app.server import create_app

    return create_app(data, model, model_name="test", **kw)


@pytest.fixture
def env(tmp_path, model):
    """(app, data folder) with users alice, bob, carol and a 4-frame 80x60 clip."""
    data = tmp_path / "data"
    demo_clip(data / "clip", n=4, step=4)
    app = make_app(data, model)
    for name, pw in PASSWORDS.items():
        app.state.accounts.add_user(name, pw)
    yield app, data
    app.state.sessions.close()


def login(app, name: str, base_url: str = "http://testserver") -> TestClient:
    """A client logged in as `name`, sending its CSRF token on every request."""
    client = TestClient(app, base_url=base_url)
    r = client.post("/api/login", json={"name": name, "password": PASSWORDS[name]})
    assert r.status_code == 200, r.text
    client.headers["X-CSRF-Token"] = r.json()["csrf"]
    return client


def new_video(client) -> tuple[int, int]:
    pid = client.post("/api/projects", json={"name": "p"}).json()["id"]
    r = client.post(f"/api/projects/{pid}/videos", json={"path": "clip"})
    assert r.status_code == 200, r.text
    return pid, r.json()["id"]


# ------------------------------------------------------------------------------------------ passwords
def test_passwords_are_salted_scrypt_with_their_parameters():
    h1, h2 = hash_password("same password"), hash_password("same password")
    assert h1 != h2 and h1.startswith("scrypt$16384$8$1$")  # a random salt; the parameters are stored
    assert verify_password("same password", h1) and not verify_password("other", h1)
    cheap = hash_password("pw", n=2**10)  # other (e.g. raised) parameters verify by what the hash says
    assert cheap.startswith("scrypt$1024$") and verify_password("pw", cheap)
    assert not verify_password("pw", "garbage") and not verify_password("pw", "md5$1$2$3$YQ==$YQ==")


# ------------------------------------------------------------------------------------------ modes
def test_single_user_mode_is_unchanged(tmp_path, model):
    data = tmp_path / "data"
    demo_clip(data / "clip", n=2, step=4)
    app = make_app(data, model)
    client = TestClient(app)
    assert client.get("/api/session").json() == {"user": "local", "csrf": "", "accounts": False}
    new_video(client)  # writes need no token
    assert client.get("/api/projects").json()[0]["created_by"] == "local"
    assert "<canvas" in client.get("/").text  # the app itself, no login page
    r = client.post("/api/login", json={"name": "x", "password": "y"})
    assert r.status_code == 400 and "single-user mode" in r.json()["error"]
    # require_login (a server beyond this machine): logins even with no account
    locked = TestClient(make_app(data, model, require_login=True))
    assert locked.get("/api/projects").status_code == 401
    assert 'id="login-form"' in locked.get("/").text
    app.state.sessions.close()


def test_login_logout_cookie_flags_and_hashed_sessions(env):
    app, _ = env
    anon = TestClient(app)
    r = anon.get("/api/projects")
    assert r.status_code == 401 and r.json() == {"error": "log in first"}
    page = anon.get("/")
    assert page.status_code == 200 and 'id="login-form"' in page.text and "<canvas" not in page.text
    assert anon.get("/static/login.js").status_code == 200  # the login page's own files need no session
    wrong = anon.post("/api/login", json={"name": "alice", "password": "not-it-at-all"})
    unknown = anon.post("/api/login", json={"name": "nobody", "password": "not-it-at-all"})
    assert wrong.status_code == unknown.status_code == 401 and wrong.json() == unknown.json()
    assert "set-cookie" not in wrong.headers

    r = anon.post("/api/login", json={"name": "alice", "password": PASSWORDS["alice"]})
    cookie = r.headers["set-cookie"]
    flags = {f.strip().split("=")[0].lower(): f for f in cookie.split(";")}
    assert cookie.startswith("samstream_session=") and "httponly" in flags and "secure" not in flags
    assert flags["samesite"].split("=")[1].lower() == "strict" and flags["path"].split("=")[1] == "/"
    token = cookie.split(";")[0].split("=", 1)[1]
    with sqlite3.connect(env[1] / ".samstream" / "app.db") as db:  # only its sha256 is stored
        stored = [row[0] for row in db.execute("SELECT token_hash FROM sessions")]
    assert hashlib.sha256(token.encode()).hexdigest() in stored and token not in stored
    session = anon.get("/api/session").json()
    assert session["user"] == "alice" and session["csrf"] == r.json()["csrf"] and len(session["csrf"]) > 20
    assert anon.get("/api/projects").status_code == 200 and "<canvas" in anon.get("/").text

    https = TestClient(app, base_url="https://testserver")
    r = https.post("/api/login", json={"name": "alice", "password": PASSWORDS["alice"]})
    assert "secure" in r.headers["set-cookie"].lower()

    assert anon.post("/api/logout").status_code == 403  # a write: it needs the token too
    assert anon.post("/api/logout", headers={"X-CSRF-Token": session["csrf"]}).status_code == 200
    anon.cookies.set("samstream_session", token)  # the old cookie is dead on the server
    assert anon.get("/api/projects").status_code == 401


def test_writes_need_the_sessions_csrf_token(env):
    app, _ = env
    alice, bob = login(app, "alice"), login(app, "bob")
    for headers in ({"X-CSRF-Token": ""}, {"X-CSRF-Token": "wrong"}, {"X-CSRF-Token": bob.headers["X-CSRF-Token"]}):
        r = alice.post("/api/projects", json={"name": "p"}, headers=headers)
        assert r.status_code == 403 and "X-CSRF-Token" in r.json()["error"]
    del alice.headers["X-CSRF-Token"]
    assert alice.post("/api/projects", json={"name": "p"}).status_code == 403
    assert alice.get("/api/projects").json() == []  # nothing was made
    assert alice.post("/api/projects", json={"name": "p"}, headers={"X-CSRF-Token": login(app, "alice").headers[
        "X-CSRF-Token"]}).status_code == 403  # another session's token
    assert bob.post("/api/projects", json={"name": "p"}).status_code == 200


def test_failed_logins_are_rate_limited_per_name(env):
    app, _ = env
    c = TestClient(app)
    for name in ("alice", "nobody"):
        answers = [c.post("/api/login", json={"name": name, "password": "wrong-guess"}).status_code for _ in range(5)]
        assert answers == [401] * 5
        r = c.post("/api/login", json={"name": name, "password": PASSWORDS.get(name, "x")})
        assert r.status_code == 429 and "too many" in r.json()["error"]  # even the right password, for a while
    assert c.post("/api/login", json={"name": "bob", "password": PASSWORDS["bob"]}).status_code == 200


# ------------------------------------------------------------------------------------------ isolation and sharing
def test_projects_are_isolated_until_shared(env):
    app, _ = env
    alice, bob = login(app, "alice"), login(app, "bob")
    pid, vid = new_video(alice)
    assert alice.post(f"/api/videos/{vid}/objects", json={}).status_code == 200
    assert alice.post(f"/api/videos/{vid}/click", json={"obj_id": 1, "frame": 0, "x": 40, "y": 30}).status_code == 200
    hidden = [("GET", f"/api/projects/{pid}", None), ("POST", f"/api/projects/{pid}/videos", {"path": "clip"}),
              ("GET", f"/api/projects/{pid}/stats", None), ("POST", f"/api/projects/{pid}/share", {"user": "bob"}),
              ("GET", f"/api/videos/{vid}", None), ("GET", f"/api/videos/{vid}/frames/0", None),
              ("GET", f"/api/videos/{vid}/overlay/0", None), ("GET", f"/api/videos/{vid}/masks/0", None),
              ("GET", f"/api/videos/{vid}/timeline", None), ("GET", f"/api/videos/{vid}/history", None),
              ("GET", f"/api/videos/{vid}/export?format=sav", None), ("POST", f"/api/videos/{vid}/undo", None),
              ("POST", f"/api/videos/{vid}/click", {"obj_id": 1, "frame": 0, "x": 5, "y": 5}),
              ("DELETE", f"/api/videos/{vid}/objects/1", None), ("GET", f"/api/projects/{pid}/export", None)]
    for method, path, body in hidden:
        r = bob.request(method, path, json=body)
        # the answer of a project / video that does not exist: its existence is not revealed
        assert r.status_code == 404, (path, r.text)
        missing = bob.request(method, path.replace(f"/{pid}", "/999").replace(f"/{vid}", "/999"), json=body)
        assert r.json()["error"].replace(str(pid), "N").replace(str(vid), "N") == \
            missing.json()["error"].replace("999", "N"), path
    assert bob.get("/api/projects").json() == []
    assert alice.get(f"/api/videos/{vid}/history").json()[0]["user"] == "alice"  # writes record who made them
    assert bob.get(f"/api/videos/{vid}/proposals").status_code == 404  # the routes of other modules too
    r = alice.post(f"/api/videos/{vid}/proposals/999/reject")  # a `pid` outside /api/projects/ is no project
    assert "project" not in r.text, r.text

    assert bob.post(f"/api/projects/{pid}/share", json={"user": "bob"}).status_code == 404
    assert alice.post(f"/api/projects/{pid}/share", json={"user": "nobody"}).status_code == 400
    r = alice.post(f"/api/projects/{pid}/share", json={"user": "bob"})
    assert r.status_code == 200 and r.json() == {"members": ["bob"]}
    listed = bob.get("/api/projects").json()
    assert [(p["id"], p["created_by"], p["members"]) for p in listed] == [(pid, "alice", ["bob"])]
    for method, path, _ in hidden:
        if method == "GET":
            assert bob.get(path).status_code == 200, path
    r = bob.post(f"/api/videos/{vid}/click", json={"obj_id": 1, "frame": 0, "x": 42, "y": 30})
    assert r.status_code == 200 and bob.get(f"/api/videos/{vid}/history").json()[0]["user"] == "bob"
    r = bob.post(f"/api/projects/{pid}/share", json={"user": "carol"})  # a member is not the owner
    assert r.status_code == 403 and "owner" in r.json()["error"]
    carol = login(app, "carol")
    assert carol.get(f"/api/videos/{vid}").status_code == 404 and carol.get("/api/projects").json() == []

    assert alice.delete(f"/api/projects/{pid}/share/bob").json() == {"members": []}
    assert bob.get(f"/api/videos/{vid}").status_code == 404 and bob.get("/api/projects").json() == []
    assert alice.delete(f"/api/projects/{pid}/share/bob").status_code == 404


def test_per_user_statistics_of_a_scripted_session(env, monkeypatch):
    app, _ = env
    clock = {"t": 1000.0}
    monkeypatch.setattr(store_module, "time", type("Clock", (), {"time": staticmethod(lambda: clock["t"])}))
    alice, bob = login(app, "alice"), login(app, "bob")
    pid, vid = new_video(alice)
    alice.post(f"/api/projects/{pid}/share", json={"user": "bob"})

    def at(t, who, route, body):
        clock["t"] = 1000.0 + t
        r = who.post(f"/api/videos/{vid}/{route}", json=body)
        assert r.status_code == 200, r.text

    brush = {"obj_id": 1, "points": [[10, 10], [20, 12]], "radius": 4}
    at(0, alice, "objects", {})
    at(10, alice, "click", {"obj_id": 1, "frame": 0, "x": 40, "y": 30})
    at(100, alice, "click", {"obj_id": 1, "frame": 0, "x": 20, "y": 20, "positive": False})  # a 90 s gap: 60
    at(105, alice, "box", {"obj_id": 1, "frame": 1, "box": [5, 5, 50, 40]})
    at(110, alice, "brush", {**brush, "frame": 1})
    at(112, alice, "brush", {**brush, "frame": 1, "erase": True})
    at(115, alice, "brush", {**brush, "frame": 2})
    at(200, alice, "objects", {})
    at(205, alice, "click", {"obj_id": 2, "frame": 0, "x": 60, "y": 40})
    at(300, bob, "click", {"obj_id": 2, "frame": 0, "x": 62, "y": 40})
    at(320, bob, "click", {"obj_id": 2, "frame": 3, "x": 62, "y": 40})
    clock["t"] = 1330.0
    alice.post(f"/api/videos/{vid}/undo")  # undo is no new action, and the undone click still counts

    s = bob.get(f"/api/projects/{pid}/stats").json()  # members see the statistics too
    assert s["gap_cap_s"] == 60
    a, b = s["users"]["alice"], s["users"]["bob"]
    assert a["actions"] == {"add_object": 2, "box": 1, "brush": 3, "click": 3}
    assert a["masklets"] == [
        {"video_id": vid, "obj_id": 1, "clicks": 3, "active_s": 10 + 60 + 5 + 5 + 2 + 3, "hand_frames": 2},
        {"video_id": vid, "obj_id": 2, "clicks": 1, "active_s": 5, "hand_frames": 0}]
    assert (a["clicks"], a["active_s"], a["hand_frames"]) == (4, 90, 2)
    assert b == {"actions": {"click": 2}, "clicks": 2, "active_s": 20, "hand_frames": 0,
                 "masklets": [{"video_id": vid, "obj_id": 2, "clicks": 2, "active_s": 20, "hand_frames": 0}]}
    assert login(app, "carol").get(f"/api/projects/{pid}/stats").status_code == 404


# ------------------------------------------------------------------------------------------ the command
def _cli(*argv: str, stdin: str | None = None, monkeypatch=None) -> int:
    from samstream.cli import main

    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    return main(list(argv))


def test_users_command(tmp_path, monkeypatch, capsys):
    d = str(tmp_path)
    assert _cli("app", "users", "list", "--data", d) == 2 and "no app database" in capsys.readouterr().err
    assert _cli("app", "users", "add", "alice", "--data", d, "--password-stdin", stdin="first-password\n",
                monkeypatch=monkeypatch) == 0
    assert capsys.readouterr().out.strip() == "added user alice"
    assert _cli("app", "users", "add", "alice", "--data", d, "--password-stdin", stdin="another-one\n",
                monkeypatch=monkeypatch) == 2 and "exists already" in capsys.readouterr().err
    assert _cli("app", "users", "add", "bob", "--data", d, "--password-stdin", stdin="short\n",
                monkeypatch=monkeypatch) == 2 and "at least 8" in capsys.readouterr().err
    assert _cli("app", "users", "add", "local", "--data", d, "--password-stdin", stdin="long-enough\n",
                monkeypatch=monkeypatch) == 2 and "reserved" in capsys.readouterr().err
    answers = iter(["bob-password", "bob-passwrod"])  # the prompt, typed twice: a typo is caught
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    assert _cli("app", "--data", d, "users", "add", "bob") == 2 and "differ" in capsys.readouterr().err
    monkeypatch.setattr("getpass.getpass", lambda prompt="": "bob-password")
    assert _cli("app", "--data", d, "users", "add", "bob") == 0  # --data before the sub-command works too
    capsys.readouterr()
    assert _cli("app", "users", "list", "--data", d) == 0 and capsys.readouterr().out.split() == ["alice", "bob"]

    store = Store(tmp_path / ".samstream" / "app.db")
    accounts = Accounts(store)
    token = accounts.login("alice", "first-password")["token"]
    assert _cli("app", "users", "passwd", "alice", "--data", d, "--password-stdin", stdin="second-password\n",
                monkeypatch=monkeypatch) == 0
    assert accounts.session(token) is None  # a new password ends the sessions
    assert accounts.login("alice", "first-password") is None and accounts.login("alice", "second-password")
    assert _cli("app", "users", "remove", "bob", "--data", d) == 0
    assert [u["name"] for u in accounts.users()] == ["alice"]
    assert _cli("app", "users", "remove", "bob", "--data", d) == 2 and "no user 'bob'" in capsys.readouterr().err
    store.close()


def test_a_public_host_needs_accounts(tmp_path, monkeypatch, capsys):
    import uvicorn

    from samstream.cli.app import check_host

    d = tmp_path
    assert _cli("app", "--data", str(d), "--host", "0.0.0.0") == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "has no accounts" in err and "samstream app users add NAME" in err
    assert check_host("127.0.0.2", d) is False and check_host("::1", d) is False  # loopback: as before
    with pytest.raises(ValueError, match="no accounts"):
        check_host("192.0.2.1", d)
    assert _cli("app", "users", "add", "alice", "--data", str(d), "--password-stdin", stdin="alice-password\n",
                monkeypatch=monkeypatch) == 0
    assert check_host("0.0.0.0", d) is True and check_host("localhost", d) is False

    served = {}
    monkeypatch.setattr(uvicorn.Server, "run", lambda self: served.update(host=self.config.host, app=self.config.app))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert _cli("app", "--data", str(d), "--host", "0.0.0.0", "--port", str(port), "--device", "cpu") == 0
    assert served["host"] == "0.0.0.0"
    client = TestClient(served["app"])
    assert client.get("/api/projects").status_code == 401
    app_users_removed = Accounts(served["app"].state.store)
    app_users_removed.remove_user("alice")  # with no account left, a public server still asks for a login
    assert client.get("/api/projects").status_code == 401
    served["app"].state.store.close()


# ------------------------------------------------------------------------------------------ migration
def test_a_slice_1_database_opens_and_keeps_everything(tmp_path, model):
    data = tmp_path / "data"
    demo_clip(data / "clip", n=2, step=4)
    app = make_app(data, model)
    client = TestClient(app)
    pid, vid = new_video(client)
    client.post(f"/api/videos/{vid}/objects", json={"name": "cat"})
    client.post(f"/api/videos/{vid}/click", json={"obj_id": 1, "frame": 0, "x": 40, "y": 30})
    before = {k: client.get(f"/api/videos/{vid}/{k}").json() for k in ("masks/0", "history", "timeline")}
    app.state.sessions.close()
    app.state.store.close()
    db_path = data / ".samstream" / "app.db"
    with sqlite3.connect(db_path) as db:  # what slice 1 wrote: schema 1, without the account tables
        for table in ("sessions", "project_members", "users"):
            db.execute(f"DROP TABLE {table}")
        db.execute("UPDATE meta SET value='1' WHERE key='schema_version'")

    app = make_app(data, model)
    with sqlite3.connect(db_path) as db:
        assert db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == "2"
    client = TestClient(app)
    assert {k: client.get(f"/api/videos/{vid}/{k}").json() for k in before} == before
    assert client.get(f"/api/videos/{vid}").json()["objects"][0]["name"] == "cat"
    assert app.state.accounts.add_user("alice", "alice-password") == 1  # the first user owns the old project
    alice = TestClient(app)
    csrf = alice.post("/api/login", json={"name": "alice", "password": "alice-password"}).json()["csrf"]
    assert [p["id"] for p in alice.get("/api/projects").json()] == [pid]
    r = alice.post(f"/api/videos/{vid}/click", json={"obj_id": 1, "frame": 0, "x": 41, "y": 30},
                   headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200
    app.state.sessions.close()
    app.state.store.close()
    with sqlite3.connect(db_path) as db:
        db.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    with pytest.raises(StoreError, match="schema version 99"):
        Store(db_path)


# ------------------------------------------------------------------------------------------ a real server
def test_a_real_server_with_accounts(tmp_path, monkeypatch):
    data = tmp_path / "data"
    demo_clip(data / "clip", n=2, step=4)
    assert _cli("app", "users", "add", "alice", "--data", str(data), "--password-stdin", stdin="alice-password\n",
                monkeypatch=monkeypatch) == 0
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "samstream.cli", "app", "--data", str(data), "--port", str(port),
                             "--device", "cpu"], cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def call(method, path, body=None, headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request(method, path, body=None if body is None else json.dumps(body),
                     headers={"Content-Type": "application/json", **(headers or {})})
        r = conn.getresponse()
        out = r.status, r.getheader("set-cookie"), r.read().decode()
        conn.close()
        return out

    try:
        end = time.monotonic() + 90
        while True:
            assert proc.poll() is None, proc.stdout.read()
            try:
                if call("GET", "/api/info")[0] == 401:
                    break
            except OSError:
                assert time.monotonic() < end, "the server did not answer"
                time.sleep(0.2)
        status, _, text = call("GET", "/")
        assert status == 200 and 'id="login-form"' in text
        status, cookie, text = call("POST", "/api/login", {"name": "alice", "password": "alice-password"})
        assert status == 200 and "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
        jar = {"Cookie": cookie.split(";")[0]}
        csrf = json.loads(text)["csrf"]
        assert call("POST", "/api/projects", {"name": "p"}, jar)[0] == 403
        status, _, text = call("POST", "/api/projects", {"name": "p"}, {**jar, "X-CSRF-Token": csrf})
        assert status == 200 and json.loads(text)["created_by"] == "alice"
        assert call("GET", "/api/projects", None, jar)[0] == 200 and call("GET", "/api/projects")[0] == 401
    finally:
        proc.kill()
        proc.wait(10)
        proc.stdout.close()
