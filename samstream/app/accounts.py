"""Accounts of `samstream app`: users with hashed passwords, login sessions, and who may see which project.

Passwords: scrypt (hashlib, standard library) with a random 16-byte salt; the stored text carries its parameters
("scrypt$n$r$p$salt$hash", base64) so they can be raised later without breaking the old hashes. Sessions: the
browser holds a random token, the database only its sha256 (a copy of the database opens no session), with a
per-session CSRF token and an expiry. The tables live in the app's Store (schema version 2).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import threading
import time
from collections import deque

from .store import NotFound, Store, StoreError

LOCAL = "local"  # the user of single-user mode (no accounts); never an account's name
SCRYPT = {"n": 2**14, "r": 8, "p": 1}  # ~16 MiB and some 50 ms per hash
SESSION_TTL = 7 * 24 * 3600.0  # seconds a login lasts
MIN_PASSWORD = 8
LOGIN_ATTEMPTS = 5  # failed logins allowed per name ...
LOGIN_WINDOW = 60.0  # ... in this many seconds
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def hash_password(password: str, *, n: int = SCRYPT["n"], r: int = SCRYPT["r"], p: int = SCRYPT["p"]) -> str:
    """The stored form of `password`: "scrypt$n$r$p$salt$hash" (salt and hash in base64)."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, maxmem=256 * n * r * p, dklen=32)
    return f"scrypt${n}${r}${p}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    """Whether `password` matches the stored hash (constant-time comparison; False for a malformed hash)."""
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        n, r, p = int(n), int(r), int(p)
        want = base64.b64decode(digest)
        got = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=n, r=r, p=p,
                             maxmem=256 * n * r * p, dklen=len(want))
    except (ValueError, TypeError):
        return False
    return kind == "scrypt" and hmac.compare_digest(got, want)


_DUMMY = hash_password(secrets.token_urlsafe(16))  # verified for unknown names: a login takes as long either way


def check_name(name: str) -> str:
    """A valid user name (letters, digits, _ . @ -; at most 64; not 'local'), else ValueError naming the rule."""
    if not isinstance(name, str) or not _NAME.fullmatch(name) or name == LOCAL:
        raise StoreError(f"user name {name!r}: use 1..64 letters, digits and _ . @ - (starting with a letter or "
                         f"digit; '{LOCAL}' is reserved)")
    return name


def check_password(password: str) -> str:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        raise StoreError(f"a password needs at least {MIN_PASSWORD} characters")
    return password


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Accounts:
    """Users, sessions and project members, in the tables of `store` (its connection and lock)."""

    def __init__(self, store: Store):
        self.store = store
        self._failures: dict[str, deque] = {}  # name -> times of recent failed logins
        self._failures_lock = threading.Lock()

    # ---- users
    def any_user(self) -> bool:
        with self.store._lock:
            return self.store._db.execute("SELECT 1 FROM users LIMIT 1").fetchone() is not None

    def users(self) -> list[dict]:
        with self.store._lock:
            rows = self.store._db.execute("SELECT name, created FROM users ORDER BY name").fetchall()
        return [{"name": n, "created": c} for n, c in rows]

    def exists(self, name: str) -> bool:
        with self.store._lock:
            return self.store._db.execute("SELECT 1 FROM users WHERE name=?", (name,)).fetchone() is not None

    def add_user(self, name: str, password: str) -> int:
        """Adds a user -> the number of projects it took over: the first user owns the projects made in
        single-user mode (else no one could see them once accounts exist)."""
        check_name(name)
        stored = hash_password(check_password(password))
        with self.store._tx():
            db = self.store._db
            if db.execute("SELECT 1 FROM users WHERE name=?", (name,)).fetchone():
                raise StoreError(f"user {name!r} exists already (change the password with `users passwd`)")
            first = db.execute("SELECT 1 FROM users LIMIT 1").fetchone() is None
            db.execute("INSERT INTO users VALUES(?, ?, ?)", (name, stored, time.time()))
            taken = db.execute("UPDATE projects SET created_by=? WHERE created_by=?", (name, LOCAL)) if first else None
        return taken.rowcount if taken is not None else 0

    def set_password(self, name: str, password: str) -> None:
        """Changes the password and ends the user's sessions."""
        stored = hash_password(check_password(password))
        with self.store._tx():
            if not self.store._db.execute("UPDATE users SET hash=? WHERE name=?", (stored, name)).rowcount:
                raise NotFound(f"no user {name!r}")
            self.store._db.execute("DELETE FROM sessions WHERE user=?", (name,))

    def remove_user(self, name: str) -> None:
        """Removes the user, its sessions and its memberships (the projects it owns stay, unseen until shared)."""
        with self.store._tx():
            db = self.store._db
            if db.execute("SELECT 1 FROM users WHERE name=?", (name,)).fetchone() is None:
                raise NotFound(f"no user {name!r}")
            db.execute("DELETE FROM sessions WHERE user=?", (name,))
            db.execute("DELETE FROM project_members WHERE user=?", (name,))
            db.execute("DELETE FROM users WHERE name=?", (name,))

    # ---- sessions
    def login(self, name: str, password: str) -> dict | None:
        """{"token", "csrf", "user", "expires"} of a new session, or None: wrong name or password alike.
        Raises RateLimited after LOGIN_ATTEMPTS failures for `name` within LOGIN_WINDOW seconds."""
        name = str(name)[:200]
        self._check_rate(name)
        with self.store._lock:
            row = self.store._db.execute("SELECT hash FROM users WHERE name=?", (name,)).fetchone()
        ok = verify_password(str(password), row[0] if row else _DUMMY) and row is not None
        if not ok:
            self._fail(name)
            return None
        token, csrf, now = secrets.token_urlsafe(32), secrets.token_urlsafe(32), time.time()
        with self.store._tx():
            self.store._db.execute("DELETE FROM sessions WHERE expires < ?", (now,))
            self.store._db.execute("INSERT INTO sessions VALUES(?, ?, ?, ?, ?)",
                                   (_token_hash(token), name, csrf, now, now + SESSION_TTL))
        return {"token": token, "csrf": csrf, "user": name, "expires": now + SESSION_TTL}

    def session(self, token: str | None) -> dict | None:
        """{"user", "csrf", "expires"} of the live session of `token`, else None."""
        if not token:
            return None
        with self.store._lock:
            row = self.store._db.execute("SELECT user, csrf, expires FROM sessions WHERE token_hash=?",
                                         (_token_hash(token),)).fetchone()
        if row is None or row[2] < time.time():
            return None
        return {"user": row[0], "csrf": row[1], "expires": row[2]}

    def logout(self, token: str | None) -> None:
        if token:
            with self.store._tx():
                self.store._db.execute("DELETE FROM sessions WHERE token_hash=?", (_token_hash(token),))

    def _check_rate(self, name: str) -> None:
        with self._failures_lock:
            times = self._failures.get(name)
            if times is None:
                return
            while times and times[0] < time.monotonic() - LOGIN_WINDOW:
                times.popleft()
            if not times:
                del self._failures[name]
            elif len(times) >= LOGIN_ATTEMPTS:
                wait = int(times[0] + LOGIN_WINDOW - time.monotonic()) + 1
                raise RateLimited(f"too many failed logins for this name: try again in {wait} s")

    def _fail(self, name: str) -> None:
        with self._failures_lock:
            if len(self._failures) > 10_000:  # bounded memory under a flood of names
                self._failures.clear()
            self._failures.setdefault(name, deque()).append(time.monotonic())

    # ---- projects
    def visible(self, user: str, project_id: int) -> bool:
        """Whether `user` owns project `project_id` or it is shared with them."""
        with self.store._lock:
            return self.store._db.execute(
                "SELECT 1 FROM projects p WHERE p.id=? AND (p.created_by=? OR EXISTS(SELECT 1 FROM project_members "
                "m WHERE m.project_id=p.id AND m.user=?))", (project_id, user, user)).fetchone() is not None

    def video_visible(self, user: str, video_id: int) -> bool:
        with self.store._lock:
            row = self.store._db.execute("SELECT project_id FROM videos WHERE id=?", (video_id,)).fetchone()
        return row is not None and self.visible(user, row[0])

    def members(self, project_id: int) -> list[str]:
        with self.store._lock:
            rows = self.store._db.execute("SELECT user FROM project_members WHERE project_id=? ORDER BY user",
                                          (project_id,)).fetchall()
        return [r[0] for r in rows]

    def share(self, project_id: int, owner: str, user: str) -> list[str]:
        """Shares the project of `owner` with `user` -> the members."""
        self._check_owner(project_id, owner)
        if user == owner:
            raise StoreError("the owner sees the project already")
        if not self.exists(user):
            raise StoreError(f"no user {user!r}")
        with self.store._tx():
            self.store._db.execute("INSERT OR IGNORE INTO project_members VALUES(?, ?, ?)",
                                   (project_id, user, time.time()))
        return self.members(project_id)

    def unshare(self, project_id: int, owner: str, user: str) -> list[str]:
        self._check_owner(project_id, owner)
        with self.store._tx():
            if not self.store._db.execute("DELETE FROM project_members WHERE project_id=? AND user=?",
                                          (project_id, user)).rowcount:
                raise NotFound(f"project {project_id} is not shared with {user!r}")
        return self.members(project_id)

    def _check_owner(self, project_id: int, user: str) -> None:
        if self.store.project(project_id)["created_by"] != user:
            raise NotOwner("only the project's owner can change whom it is shared with")


class RateLimited(Exception):
    """Too many failed logins for one name."""


class NotOwner(Exception):
    """A project member (not its owner) tried an owner's action."""
