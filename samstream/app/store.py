"""The app's SQLite database: projects, videos, objects, prompts, masks, and the event log behind undo / redo.

Schema (version `SCHEMA_VERSION`; JSON columns are TEXT holding JSON):
  meta(key, value)                  "schema_version"; "running:<event id>" -> the process running a long event
  projects, videos                  videos.version: +1 on every commit that changes the video (stale-write check)
  objects(video_id, obj_id)         name, category, colour, hidden, deleted (a deleted object keeps its row)
  prompts(video_id, obj_id, frame)  data: {"points", "labels", "box"} or {"mask": rle} (a hand-edited frame)
  masks(video_id, obj_id, frame)    rle (compressed COCO, full resolution), area, score, source, cx, cy
  events                            one per action: kind, payload, state done | undone | discarded | running
  changes(event_id, n, tbl, key, before, after)
  users(name, hash), sessions(token_hash, user, csrf, expires), project_members(project_id, user)   (accounts.py)

Undo: every write to objects / prompts / masks goes through an event and records the whole row before and after
it (JSON, null = no row) in `changes`. Undo applies the `before`s of the newest "done" event in reverse order and
marks it "undone"; redo applies the `after`s of the oldest "undone" event in order. A new event marks the undone
events "discarded", so the undone events are always the newest ones and the two stacks never interleave.

Durability: WAL with synchronous=FULL, and every public write is one transaction committed before it returns.
A long event (propagation) commits its buffered writes at each `flush()`; if its process dies, the next Store
opened on the file closes it as "done" with what was flushed (what the server had acknowledged).
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import re
import sqlite3
import threading
import time
from pathlib import Path

import numpy as np

from samstream.io.rle import encode_rle

SCHEMA_VERSION = 2
EVENT_KINDS = frozenset({"add_object", "update_object", "delete_object", "click", "box", "brush", "clear",
                         "propagate", "import", "accept_proposal"})
SOURCES = frozenset({"prompt", "propagated", "hand", "import"})
MAX_OBJ_ID = 255  # object ids become PNG pixel values

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS projects(id INTEGER PRIMARY KEY, name TEXT NOT NULL, created REAL, created_by TEXT);
CREATE TABLE IF NOT EXISTS videos(id INTEGER PRIMARY KEY, project_id INT REFERENCES projects(id), path TEXT,
    name TEXT, num_frames INT, width INT, height INT, fps REAL NULL, version INT NOT NULL DEFAULT 0, added REAL);
CREATE TABLE IF NOT EXISTS objects(video_id INT REFERENCES videos(id), obj_id INT, name TEXT, category TEXT,
    colour TEXT, hidden INT, deleted INT, PRIMARY KEY(video_id, obj_id));
CREATE TABLE IF NOT EXISTS prompts(video_id INT REFERENCES videos(id), obj_id INT, frame INT, data TEXT,
    PRIMARY KEY(video_id, obj_id, frame));
CREATE TABLE IF NOT EXISTS masks(video_id INT REFERENCES videos(id), obj_id INT, frame INT, rle TEXT, area INT,
    score REAL, source TEXT, cx REAL, cy REAL, PRIMARY KEY(video_id, obj_id, frame));
CREATE INDEX IF NOT EXISTS masks_by_frame ON masks(video_id, frame);
CREATE TABLE IF NOT EXISTS events(id INTEGER PRIMARY KEY, video_id INT REFERENCES videos(id), user TEXT, ts REAL,
    kind TEXT, payload TEXT, state TEXT, finished REAL NULL);
CREATE INDEX IF NOT EXISTS events_by_video ON events(video_id, state);
CREATE TABLE IF NOT EXISTS changes(event_id INT REFERENCES events(id), n INT, tbl TEXT, key TEXT, before TEXT NULL,
    after TEXT NULL, PRIMARY KEY(event_id, n));
CREATE TABLE IF NOT EXISTS users(name TEXT PRIMARY KEY, hash TEXT NOT NULL, created REAL);
CREATE TABLE IF NOT EXISTS sessions(token_hash TEXT PRIMARY KEY, user TEXT NOT NULL REFERENCES users(name)
    ON DELETE CASCADE, csrf TEXT NOT NULL, created REAL, expires REAL);
CREATE TABLE IF NOT EXISTS project_members(project_id INT REFERENCES projects(id), user TEXT NOT NULL
    REFERENCES users(name) ON DELETE CASCADE, added REAL, PRIMARY KEY(project_id, user));
"""
# from version k to k + 1, run before the version is raised (the CREATE ... IF NOT EXISTS above make new tables)
_MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (),  # 2 adds the tables users, sessions, project_members (accounts): nothing to change in the old ones
}
# tbl -> (key columns after video_id, value columns); `data` and `rle` hold JSON
_TABLES = {
    "objects": (("obj_id",), ("name", "category", "colour", "hidden", "deleted")),
    "prompts": (("obj_id", "frame"), ("data",)),
    "masks": (("obj_id", "frame"), ("rle", "area", "score", "source", "cx", "cy")),
}
_JSON_COLS = frozenset({"data", "rle"})
_OBJECT_FIELDS = _TABLES["objects"][1]
_MASK_FIELDS = _TABLES["masks"][1]
_COLOUR = re.compile(r"#[0-9a-fA-F]{6}")
_VIDEO_COLS = ("id", "project_id", "path", "name", "num_frames", "width", "height", "fps", "version")
_EVENT_COLS = ("id", "user", "ts", "kind", "state", "payload", "finished")

# long events open in this process, as (database path, event id): a Store opened on the same file leaves them be
_LIVE: set[tuple[str, int]] = set()


class StoreError(ValueError):
    """Bad input to the store; the message names the problem."""


class NotFound(KeyError):
    """Unknown project, video or object."""

    def __str__(self):  # KeyError's str() is the repr of its argument
        return str(self.args[0]) if self.args else "not found"


class StaleError(Exception):
    """The client's version is not the video's current one (it missed a change)."""

    def __init__(self, message: str, current_version: int):
        super().__init__(message)
        self.current_version = current_version


class Busy(Exception):
    """A long event (propagation) is running on the video."""


def _dumps(value) -> str | None:
    return None if value is None else json.dumps(value, separators=(",", ":"))


def _loads(text):
    return None if text is None else json.loads(text)


def _process_start(pid: int) -> str | None:
    """A tag that identifies a live process across pid reuse (its start time on Linux), None if it is not alive."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return None if fields[0] in "ZX" else fields[19]  # state (zombies are dead), starttime
    except (OSError, IndexError):
        pass
    if os.name != "posix" or os.path.isdir("/proc"):
        return None  # Linux without the entry: gone; Windows: os.kill(pid, 0) would terminate the process
    try:
        os.kill(pid, 0)
        return ""
    except PermissionError:
        return ""
    except OSError:
        return None


def mask_record(mask: np.ndarray, score: float | None, source: str) -> dict:
    """A mask row from a (H, W) bool mask: compressed RLE, area, centroid (x, y) in pixels (None when empty)."""
    m = np.asarray(mask).astype(bool)
    if m.ndim != 2:
        raise StoreError(f"a mask must be 2-D (H, W), got shape {m.shape}")
    ys, xs = np.nonzero(m)
    area = int(xs.size)
    return {"rle": encode_rle(m), "area": area, "score": None if score is None else float(score),
            "source": source, "cx": float(xs.mean()) if area else None, "cy": float(ys.mean()) if area else None}


class EventWriter:
    """Writes of one event. Short events (`Store.event`) apply each write at once inside their transaction; long
    ones (`Store.begin_event`) buffer them until `flush()`. A write replaces the whole row; None deletes it."""

    def __init__(self, store: Store, video: dict, event_id: int, long: bool):
        self.event_id = event_id
        self.version = video["version"]
        self._store, self._video, self._long = store, video, long
        self._buffer: list[tuple[str, tuple, dict | None]] = []  # long events: (tbl, key, value) to flush
        self._touched: dict[tuple[str, tuple], int] = {}  # (tbl, key) -> n of its change row in this event
        self._n = 0
        self._open = True

    def set_object(self, obj_id: int, row: dict | None) -> None:
        """Creates / replaces / deletes (None) an object row {"name","category","colour","hidden","deleted"}
        (an "obj_id" field equal to `obj_id` is allowed, so the dicts of `Store.object` can be written back)."""
        obj_id = _obj_id(obj_id)
        if isinstance(row, dict) and "obj_id" in row:
            if row["obj_id"] != obj_id:
                raise StoreError(f"object row of obj_id {row['obj_id']!r} written as object {obj_id}")
            row = {k: v for k, v in row.items() if k != "obj_id"}
        self._put("objects", (obj_id,), None if row is None else _object_value(row))

    def set_prompt(self, obj_id: int, frame: int, data: dict | None) -> None:
        """The (obj, frame) prompt: {"points","labels","box"} or {"mask": rle}; None removes it."""
        key = (_obj_id(obj_id), _frame(self._video, frame))
        self._put("prompts", key, None if data is None else {"data": _prompt_value(self._video, data)})

    def set_mask(self, obj_id: int, frame: int, rec: dict | None) -> None:
        """The (obj, frame) mask record (see `mask_record`); None removes it."""
        key = (_obj_id(obj_id), _frame(self._video, frame))
        self._put("masks", key, None if rec is None else _mask_value(self._video, rec))

    def flush(self) -> int:
        """Long events: commits the buffered writes; -> the video's new version."""
        if not self._long:
            raise StoreError("flush() is for long events (Store.begin_event); a short event commits at its end")
        return self._store._flush(self, close=False)

    def finish(self, state: str = "done", note: str | None = None) -> int:
        """Long events: flushes and closes the event; -> the video's new version. The event is "done" whatever
        `state` says ("cancelled", "failed": recorded in its payload as "outcome"): its flushed writes stand."""
        if not self._long:
            raise StoreError("finish() is for long events (Store.begin_event)")
        if state not in ("done", "cancelled", "failed"):
            raise StoreError(f"finish state must be 'done', 'cancelled' or 'failed', got {state!r}")
        return self._store._flush(self, close=True, outcome=state, note=note)

    def _put(self, tbl: str, key: tuple, value: dict | None) -> None:
        if not self._open:
            raise StoreError(f"event {self.event_id} is closed")
        if self._long:
            self._buffer.append((tbl, key, value))
        else:
            self._store._apply(self, tbl, key, value)


class Store:
    """The database of one data root. Thread-safe: one connection behind a re-entrant lock."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._key = os.path.realpath(self.path)
        self._lock = threading.RLock()
        self._in_tx = False
        self._long_events: dict[int, EventWriter] = {}
        # autocommit mode: transactions are explicit (BEGIN IMMEDIATE ... COMMIT in _tx)
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        with self._tx():
            for statement in filter(str.strip, _SCHEMA.split(";")):  # executescript() would commit first
                self._db.execute(statement)
            found = self._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            if found is None:
                self._db.execute("INSERT INTO meta VALUES('schema_version', ?)", (str(SCHEMA_VERSION),))
            elif found[0] != str(SCHEMA_VERSION):
                self._migrate(found[0])
        self._recover()

    def _migrate(self, found: str) -> None:
        """Brings an older database up to SCHEMA_VERSION, inside the opening transaction (all or nothing)."""
        version = int(found) if found.isdigit() else -1
        if not 1 <= version < SCHEMA_VERSION:
            raise StoreError(f"the database has schema version {found}; this samstream reads versions 1.."
                             f"{SCHEMA_VERSION}")
        for v in range(version, SCHEMA_VERSION):
            for statement in _MIGRATIONS[v]:
                self._db.execute(statement)
        self._db.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(SCHEMA_VERSION),))

    def close(self) -> None:
        """Closes the long events of this Store as "done" (their flushed writes) and the connection."""
        with self._lock:
            for ev in list(self._long_events.values()):
                ev._buffer.clear()  # never acknowledged
                self._flush(ev, close=True, note="store closed")
            self._db.close()

    # ---- projects and videos

    def create_project(self, name: str, user: str = "local") -> dict:
        if not isinstance(name, str) or not name.strip():
            raise StoreError("a project needs a non-empty name")
        with self._tx():
            cur = self._db.execute("INSERT INTO projects(name, created, created_by) VALUES(?, ?, ?)",
                                   (name.strip(), time.time(), user))
        return self.project(cur.lastrowid)

    def list_projects(self) -> list[dict]:
        with self._lock:
            rows = self._db.execute("SELECT p.id, p.name, p.created, p.created_by, COUNT(v.id) FROM projects p "
                                    "LEFT JOIN videos v ON v.project_id = p.id GROUP BY p.id ORDER BY p.id")
            return [dict(zip(("id", "name", "created", "created_by", "num_videos"), r)) for r in rows]

    def project(self, project_id: int) -> dict:
        with self._lock:
            row = self._db.execute("SELECT id, name, created, created_by FROM projects WHERE id=?",
                                   (project_id,)).fetchone()
        if row is None:
            raise NotFound(f"no project {project_id}")
        return dict(zip(("id", "name", "created", "created_by"), row))

    def add_video(self, project_id, path, name, num_frames, width, height, fps) -> dict:
        if not isinstance(path, str) or not path or path.startswith("/") or "\\" in path:
            raise StoreError(f"a video path must be a relative posix path, got {path!r}")
        for field, v in (("num_frames", num_frames), ("width", width), ("height", height)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise StoreError(f"{field} must be a positive integer, got {v!r}")
        if fps is not None and not (isinstance(fps, (int, float)) and math.isfinite(fps) and fps > 0):
            raise StoreError(f"fps must be a positive number or None, got {fps!r}")
        with self._tx():
            self.project(project_id)
            cur = self._db.execute("INSERT INTO videos(project_id, path, name, num_frames, width, height, fps, "
                                   "added) VALUES(?, ?, ?, ?, ?, ?, ?, ?)",
                                   (project_id, path, str(name), int(num_frames), int(width), int(height),
                                    None if fps is None else float(fps), time.time()))
        return self.video(cur.lastrowid)

    def videos(self, project_id: int) -> list[dict]:
        with self._lock:
            self.project(project_id)
            rows = self._db.execute(f"SELECT {', '.join(_VIDEO_COLS)} FROM videos WHERE project_id=? ORDER BY id",
                                    (project_id,))
            return [dict(zip(_VIDEO_COLS, r)) for r in rows]

    def video(self, video_id: int) -> dict:
        with self._lock:
            row = self._db.execute(f"SELECT {', '.join(_VIDEO_COLS)} FROM videos WHERE id=?",
                                   (video_id,)).fetchone()
        if row is None:
            raise NotFound(f"no video {video_id}")
        return dict(zip(_VIDEO_COLS, row))

    # ---- reads of the current state

    def objects(self, video_id: int, include_deleted: bool = False) -> list[dict]:
        with self._lock:
            self.video(video_id)
            rows = self._db.execute("SELECT obj_id, name, category, colour, hidden, deleted FROM objects "
                                    "WHERE video_id=? AND (deleted=0 OR ?) ORDER BY obj_id",
                                    (video_id, include_deleted)).fetchall()
        return [{"obj_id": r[0], "name": r[1], "category": r[2], "colour": r[3], "hidden": bool(r[4]),
                 "deleted": bool(r[5])} for r in rows]

    def object(self, video_id: int, obj_id: int) -> dict:
        """The object's row; NotFound when it does not exist or is deleted."""
        for o in self.objects(video_id):
            if o["obj_id"] == obj_id:
                return o
        raise NotFound(f"no object {obj_id} in video {video_id}")

    def free_obj_id(self, video_id: int) -> int:
        """The smallest object id not taken (deleted objects keep theirs: their deletion can be undone)."""
        taken = {o["obj_id"] for o in self.objects(video_id, include_deleted=True)}
        for i in range(1, MAX_OBJ_ID + 1):
            if i not in taken:
                return i
        raise StoreError(f"video {video_id} has no free object id (at most {MAX_OBJ_ID} objects)")

    def prompts(self, video_id: int) -> dict[tuple[int, int], dict]:
        """(obj_id, frame) -> prompt data, of the objects not deleted."""
        with self._lock:
            self.video(video_id)
            rows = self._db.execute("SELECT p.obj_id, p.frame, p.data FROM prompts p JOIN objects o ON "
                                    "o.video_id=p.video_id AND o.obj_id=p.obj_id WHERE p.video_id=? AND "
                                    "o.deleted=0 ORDER BY p.frame, p.obj_id", (video_id,)).fetchall()
        return {(o, f): json.loads(d) for o, f, d in rows}

    def prompt(self, video_id: int, obj_id: int, frame: int) -> dict | None:
        with self._lock:
            self.video(video_id)
            row = self._read_row(video_id, "prompts", (obj_id, frame))
        return None if row is None else row["data"]

    def mask(self, video_id: int, obj_id: int, frame: int) -> dict | None:
        """{"rle","area","score","source","cx","cy"} or None (never computed)."""
        with self._lock:
            self.video(video_id)
            return self._read_row(video_id, "masks", (obj_id, frame))

    def frame_masks(self, video_id: int, frame: int) -> dict[int, dict]:
        """obj_id -> mask record on `frame`, of the objects not deleted."""
        with self._lock:
            self.video(video_id)
            rows = self._db.execute("SELECT m.obj_id, m.rle, m.area, m.score, m.source, m.cx, m.cy FROM masks m "
                                    "JOIN objects o ON o.video_id=m.video_id AND o.obj_id=m.obj_id "
                                    "WHERE m.video_id=? AND m.frame=? AND o.deleted=0 ORDER BY m.obj_id",
                                    (video_id, frame)).fetchall()
        return {r[0]: dict(zip(_MASK_FIELDS, (json.loads(r[1]), *r[2:]))) for r in rows}

    def mask_summary(self, video_id: int) -> list[tuple]:
        """(obj_id, frame, area, score, source, cx, cy) of the objects not deleted, by object then frame."""
        with self._lock:
            self.video(video_id)
            return self._db.execute("SELECT m.obj_id, m.frame, m.area, m.score, m.source, m.cx, m.cy FROM masks m "
                                    "JOIN objects o ON o.video_id=m.video_id AND o.obj_id=m.obj_id "
                                    "WHERE m.video_id=? AND o.deleted=0 ORDER BY m.obj_id, m.frame",
                                    (video_id,)).fetchall()

    def masked_frames(self, video_id: int) -> list[int]:
        """Frames with a mask row of an object not deleted, sorted."""
        return sorted({r[1] for r in self.mask_summary(video_id)})

    def can_undo(self, video_id: int) -> bool:
        with self._lock:
            return self._running(video_id) is None and self._top(video_id, "done") is not None

    def can_redo(self, video_id: int) -> bool:
        with self._lock:
            return self._running(video_id) is None and self._top(video_id, "undone") is not None

    def history(self, video_id: int, limit: int = 200) -> list[dict]:
        """{"id","user","ts","kind","state","payload","finished"} of the video's events, newest first."""
        with self._lock:
            self.video(video_id)
            rows = self._db.execute(f"SELECT {', '.join(_EVENT_COLS)} FROM events WHERE video_id=? "
                                    "ORDER BY id DESC LIMIT ?", (video_id, int(limit))).fetchall()
        return [self._event_dict(r) for r in rows]

    # ---- writes

    @contextlib.contextmanager
    def event(self, video_id: int, kind: str, payload, user: str = "local", expect_version: int | None = None):
        """`with store.event(...) as ev:` one transaction, committed at the end of the block (rolled back, leaving
        nothing, on an exception). StaleError / Busy / NotFound before the block runs; ev.version afterwards is
        the video's new version. The store's lock is held for the whole block: compute first, then write."""
        ev = None
        with self._tx():
            try:
                video = self._check_writable(video_id, expect_version)
                ev = EventWriter(self, video, self._new_event(video_id, kind, payload, user, "done"), long=False)
                yield ev
                ev.version = self._bump(video_id)
            finally:
                if ev is not None:
                    ev._open = False

    def begin_event(self, video_id: int, kind: str, payload, user: str = "local",
                    expect_version: int | None = None) -> EventWriter:
        """Opens a long event ("running": the video is Busy for other writes until it finishes). Its writes are
        buffered; `ev.flush()` commits them, `ev.finish()` flushes and closes it."""
        with self._tx():
            video = self._check_writable(video_id, expect_version)
            event_id = self._new_event(video_id, kind, payload, user, "running")
            owner = {"pid": os.getpid(), "start": _process_start(os.getpid())}
            self._db.execute("INSERT INTO meta VALUES(?, ?)", (f"running:{event_id}", _dumps(owner)))
            video["version"] = self._bump(video_id)
        ev = EventWriter(self, video, event_id, long=True)
        self._long_events[event_id] = ev
        _LIVE.add((self._key, event_id))
        return ev

    def undo(self, video_id: int, user: str = "local", expect_version: int | None = None) -> dict | None:
        """Reverts the newest done event; -> that event (state "undone", + "version": the new one), None if none."""
        return self._step(video_id, expect_version, undo=True)

    def redo(self, video_id: int, user: str = "local", expect_version: int | None = None) -> dict | None:
        """Re-applies the oldest undone event; -> that event (state "done", + "version"), None if none."""
        return self._step(video_id, expect_version, undo=False)

    # ---- internals

    @contextlib.contextmanager
    def _tx(self):
        with self._lock:
            if self._in_tx:
                raise StoreError("store writes do not nest (an event is already open on this thread)")
            self._db.execute("BEGIN IMMEDIATE")
            self._in_tx = True
            try:
                yield
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise
            finally:
                self._in_tx = False

    def _running(self, video_id: int):
        return self._db.execute("SELECT id, kind FROM events WHERE video_id=? AND state='running' LIMIT 1",
                                (video_id,)).fetchone()

    def _top(self, video_id: int, state: str):
        order = "DESC" if state == "done" else "ASC"  # undo the newest done, redo the oldest undone
        return self._db.execute(f"SELECT {', '.join(_EVENT_COLS)} FROM events WHERE video_id=? AND state=? "
                                f"ORDER BY id {order} LIMIT 1", (video_id, state)).fetchone()

    def _check_writable(self, video_id: int, expect_version: int | None) -> dict:
        video = self.video(video_id)
        if expect_version is not None and expect_version != video["version"]:
            raise StaleError(f"video {video_id} changed: version {video['version']}, not {expect_version}",
                             video["version"])
        running = self._running(video_id)
        if running is not None:
            raise Busy(f"video {video_id} is busy: a {running[1]} (event {running[0]}) is running")
        return video

    def _new_event(self, video_id: int, kind: str, payload, user: str, state: str) -> int:
        if kind not in EVENT_KINDS:
            raise StoreError(f"unknown event kind {kind!r} (one of {', '.join(sorted(EVENT_KINDS))})")
        try:
            text = _dumps(payload)
        except (TypeError, ValueError) as e:
            raise StoreError(f"event payload is not JSON: {e}") from None
        self._db.execute("UPDATE events SET state='discarded' WHERE video_id=? AND state='undone'", (video_id,))
        now = time.time()
        cur = self._db.execute("INSERT INTO events(video_id, user, ts, kind, payload, state, finished) "
                               "VALUES(?, ?, ?, ?, ?, ?, ?)",
                               (video_id, str(user), now, kind, text, state, now if state == "done" else None))
        return cur.lastrowid

    def _bump(self, video_id: int) -> int:
        self._db.execute("UPDATE videos SET version=version+1 WHERE id=?", (video_id,))
        return self._db.execute("SELECT version FROM videos WHERE id=?", (video_id,)).fetchone()[0]

    def _read_row(self, video_id: int, tbl: str, key: tuple) -> dict | None:
        keys, cols = _TABLES[tbl]
        where = " AND ".join(f"{k}=?" for k in ("video_id", *keys))
        row = self._db.execute(f"SELECT {', '.join(cols)} FROM {tbl} WHERE {where}", (video_id, *key)).fetchone()
        if row is None:
            return None
        return {c: (_loads(v) if c in _JSON_COLS else v) for c, v in zip(cols, row)}

    def _write_row(self, video_id: int, tbl: str, key: tuple, value: dict | None) -> None:
        keys, cols = _TABLES[tbl]
        if value is None:
            where = " AND ".join(f"{k}=?" for k in ("video_id", *keys))
            self._db.execute(f"DELETE FROM {tbl} WHERE {where}", (video_id, *key))
            return
        names = ("video_id", *keys, *cols)
        values = (video_id, *key, *(_dumps(value[c]) if c in _JSON_COLS else value[c] for c in cols))
        self._db.execute(f"INSERT OR REPLACE INTO {tbl}({', '.join(names)}) VALUES({', '.join('?' * len(names))})",
                         values)

    def _apply(self, ev: EventWriter, tbl: str, key: tuple, value: dict | None) -> None:
        """One write of an event, inside its transaction, with its change row (the first `before` of a key kept)."""
        video_id = ev._video["id"]
        if tbl != "objects" and self._read_row(video_id, "objects", key[:1]) is None:
            raise NotFound(f"no object {key[0]} in video {video_id}")
        before = self._read_row(video_id, tbl, key)
        n = ev._touched.get((tbl, key))
        if n is None and before == value:
            return  # nothing changes
        self._write_row(video_id, tbl, key, value)
        if n is not None:
            self._db.execute("UPDATE changes SET after=? WHERE event_id=? AND n=?", (_dumps(value), ev.event_id, n))
            return
        self._db.execute("INSERT INTO changes VALUES(?, ?, ?, ?, ?, ?)",
                         (ev.event_id, ev._n, tbl, _dumps(list(key)), _dumps(before), _dumps(value)))
        ev._touched[(tbl, key)] = ev._n
        ev._n += 1

    def _flush(self, ev: EventWriter, close: bool, outcome: str = "done", note: str | None = None) -> int:
        if not ev._open:
            raise StoreError(f"event {ev.event_id} is closed")
        if not ev._buffer and not close:
            return ev.version  # nothing to commit
        video_id = ev._video["id"]
        touched, n = dict(ev._touched), ev._n
        try:
            with self._tx():
                state = self._db.execute("SELECT state FROM events WHERE id=?", (ev.event_id,)).fetchone()
                if state is None or state[0] != "running":
                    raise StoreError(f"event {ev.event_id} is no longer running")
                for tbl, key, value in ev._buffer:
                    self._apply(ev, tbl, key, value)
                if close:
                    self._close_event(ev.event_id, outcome, note)
                version = self._bump(video_id)
        except BaseException:
            ev._touched, ev._n = touched, n  # the change rows were rolled back too
            raise
        ev._buffer.clear()
        ev.version = version
        if close:
            ev._open = False
            self._long_events.pop(ev.event_id, None)
            _LIVE.discard((self._key, ev.event_id))
        return version

    def _close_event(self, event_id: int, outcome: str, note: str | None) -> None:
        payload = _loads(self._db.execute("SELECT payload FROM events WHERE id=?", (event_id,)).fetchone()[0])
        if isinstance(payload, dict) and (outcome != "done" or note):
            payload = {**payload, "outcome": outcome, **({"note": note} if note else {})}
        self._db.execute("UPDATE events SET state='done', finished=?, payload=? WHERE id=?",
                         (time.time(), _dumps(payload), event_id))
        self._db.execute("DELETE FROM meta WHERE key=?", (f"running:{event_id}",))

    def _recover(self) -> None:
        """Closes the running events whose process is gone (killed mid-propagation) as "done"."""
        with self._tx():
            for event_id, video_id in self._db.execute("SELECT id, video_id FROM events WHERE state='running'"
                                                       ).fetchall():
                owner = _loads((self._db.execute("SELECT value FROM meta WHERE key=?", (f"running:{event_id}",))
                                .fetchone() or [None])[0]) or {}
                pid = owner.get("pid")
                if pid == os.getpid():
                    alive = (self._key, event_id) in _LIVE
                else:  # another process: alive if a process with that pid and start time still runs
                    start = None if pid is None else _process_start(pid)
                    alive = start is not None and start == owner.get("start")
                if not alive:
                    self._close_event(event_id, "done", "interrupted")
                    self._bump(video_id)

    def _step(self, video_id: int, expect_version: int | None, undo: bool) -> dict | None:
        with self._tx():
            self._check_writable(video_id, expect_version)
            row = self._top(video_id, "done" if undo else "undone")
            if row is None:
                return None
            changes = self._db.execute(f"SELECT tbl, key, before, after FROM changes WHERE event_id=? "
                                       f"ORDER BY n {'DESC' if undo else 'ASC'}", (row[0],)).fetchall()
            for tbl, key, before, after in changes:
                self._write_row(video_id, tbl, tuple(json.loads(key)), _loads(before if undo else after))
            state = "undone" if undo else "done"
            self._db.execute("UPDATE events SET state=? WHERE id=?", (state, row[0]))
            version = self._bump(video_id)
        return {**self._event_dict(row), "state": state, "version": version}

    @staticmethod
    def _event_dict(row) -> dict:
        d = dict(zip(_EVENT_COLS, row))
        d["payload"] = _loads(d["payload"])
        return d


# ---- validation of writes (pure: no database)

def _int(v, what: str) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise StoreError(f"{what} must be an integer, got {v!r}")
    return int(v)


def _obj_id(v) -> int:
    v = _int(v, "obj_id")
    if not 1 <= v <= MAX_OBJ_ID:
        raise StoreError(f"obj_id must be in 1..{MAX_OBJ_ID}, got {v}")
    return v


def _frame(video: dict, v) -> int:
    v = _int(v, "frame")
    if not 0 <= v < video["num_frames"]:
        raise StoreError(f"frame {v} is outside the video (0..{video['num_frames'] - 1})")
    return v


def _finite(v, what: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float, np.number)) or not math.isfinite(v):
        raise StoreError(f"{what} must be a finite number, got {v!r}")
    return float(v)


def _rle(video: dict, rle, what: str) -> dict:
    size = [video["height"], video["width"]]
    if not isinstance(rle, dict) or not isinstance(rle.get("counts"), str) or list(rle.get("size", ())) != size:
        raise StoreError(f"{what} must be a compressed RLE of the video's size {size} (h, w)")
    return {"size": size, "counts": rle["counts"]}


def _object_value(row: dict) -> dict:
    if not isinstance(row, dict) or set(row) - set(_OBJECT_FIELDS):
        raise StoreError(f"an object row has the fields {list(_OBJECT_FIELDS)}, got {row!r}")
    for f in ("name", "category", "colour"):
        if row.get(f) is not None and not isinstance(row[f], str):
            raise StoreError(f"object {f} must be a string, got {row[f]!r}")
    if row.get("colour") is not None and not _COLOUR.fullmatch(row["colour"]):
        raise StoreError(f"object colour must be '#rrggbb', got {row['colour']!r}")
    return {"name": row.get("name"), "category": row.get("category"), "colour": row.get("colour"),
            "hidden": int(bool(row.get("hidden"))), "deleted": int(bool(row.get("deleted")))}


def _prompt_value(video: dict, data: dict) -> dict:
    if isinstance(data, dict) and set(data) == {"mask"}:
        return {"mask": _rle(video, data["mask"], "a mask prompt")}
    if not isinstance(data, dict) or set(data) - {"points", "labels", "box"}:
        raise StoreError(f"a prompt is {{'points', 'labels', 'box'}} or {{'mask'}}, got {data!r}")
    points, labels, box = data.get("points") or [], data.get("labels") or [], data.get("box")
    if not isinstance(points, list) or not isinstance(labels, list) or len(points) != len(labels):
        raise StoreError("prompt points and labels must be lists of the same length")
    if any(not isinstance(p, (list, tuple)) or len(p) != 2 for p in points):
        raise StoreError(f"prompt points are [x, y] pairs, got {points!r}")
    points = [[_finite(x, "a point's x"), _finite(y, "a point's y")] for x, y in points]
    if any(lab not in (0, 1) or isinstance(lab, float) for lab in labels):
        raise StoreError(f"prompt labels must be 0 or 1, got {labels!r}")
    if box is not None:
        if not isinstance(box, (list, tuple)) or len(box) != 4:
            raise StoreError(f"a box is [x0, y0, x1, y1], got {box!r}")
        box = [_finite(v, "a box coordinate") for v in box]
    if not points and box is None:
        raise StoreError("a prompt needs points or a box (None removes it)")
    return {"points": points, "labels": [int(lab) for lab in labels], "box": box}


def _mask_value(video: dict, rec: dict) -> dict:
    if not isinstance(rec, dict) or set(rec) != set(_MASK_FIELDS):
        raise StoreError(f"a mask record has the fields {list(_MASK_FIELDS)} (see mask_record)")
    if rec["source"] not in SOURCES:
        raise StoreError(f"mask source must be one of {sorted(SOURCES)}, got {rec['source']!r}")
    area = _int(rec["area"], "mask area")
    if area < 0:
        raise StoreError(f"mask area must be >= 0, got {area}")
    opt = {k: None if rec[k] is None else _finite(rec[k], f"mask {k}") for k in ("score", "cx", "cy")}
    return {"rle": _rle(video, rec["rle"], "a mask's rle"), "area": area, "source": rec["source"], **opt}
