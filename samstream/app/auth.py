"""Logins, CSRF and project isolation for the app's HTTP API: `install(app, store, require_login)`.

Two modes, decided on every request: with no account in the database (and a loopback server) the app is in
single-user mode, as before accounts: every request is the user "local" and sees everything. Once an account
exists (or the server listens beyond this machine: `require_login`), every route but /api/login and /static/
needs a session cookie; "/" without one serves the login page; a write (any method but GET / HEAD) must carry
the session's CSRF token in X-CSRF-Token; a project or video of someone else answers 404, as an unknown one does
(its existence is not revealed). Routes learn the user from `current_user()`.
"""
from __future__ import annotations

import hmac
from contextvars import ContextVar
from pathlib import Path

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from starlette.concurrency import run_in_threadpool

from .accounts import LOCAL, SESSION_TTL, Accounts, NotOwner, RateLimited
from .stats import project_stats
from .store import NotFound, Store

COOKIE = "samstream_session"
CSRF_HEADER = "X-CSRF-Token"
PUBLIC = ("/api/login", "/static/")  # served without a session (the login page needs its CSS and script)
LOGIN_PAGE = Path(__file__).parent / "static" / "login.html"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_USER: ContextVar[str | None] = ContextVar("samstream_user", default=None)  # None: single-user mode
_INT = TypeAdapter(int)


def current_user() -> str:
    """The logged-in user of the request being served ("local" in single-user mode)."""
    return _USER.get() or LOCAL


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


class LoginIn(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    name: str = Field(max_length=200)
    password: str = Field(max_length=1000)


class ShareIn(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    user: str = Field(min_length=1, max_length=200)


class _Login:
    """ASGI middleware: who is asking (cookie -> session), 401 without a session, 403 on a write without the
    session's CSRF token; the user is set for the routes (`current_user()`)."""

    def __init__(self, app, accounts: Accounts, require_login: bool):
        self.app, self.accounts, self.require_login = app, accounts, require_login

    def _lookup(self, token: str | None) -> tuple[bool, dict | None]:
        if not (self.require_login or self.accounts.any_user()):
            return False, None
        return True, self.accounts.session(token)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        request = Request(scope)
        required, session = await run_in_threadpool(self._lookup, request.cookies.get(COOKIE))
        path, method = scope["path"], scope["method"]
        scope.setdefault("state", {})["auth"] = {"required": required, "session": session}
        if not required:
            return await self.app(scope, receive, send)
        if session is None and not path.startswith(PUBLIC):
            if path == "/" and method in ("GET", "HEAD"):
                page = Response(LOGIN_PAGE.read_bytes(), media_type="text/html", headers={"Cache-Control": "no-store"})
                return await page(scope, receive, send)
            return await _error(401, "log in first")(scope, receive, send)
        if session is not None and method not in SAFE_METHODS and path != "/api/login":
            sent = request.headers.get(CSRF_HEADER, "")
            if not hmac.compare_digest(sent.encode(), session["csrf"].encode()):
                return await _error(403, f"missing or wrong {CSRF_HEADER} header (reload the page)")(
                    scope, receive, send)
        reset = _USER.set(session["user"] if session else None)
        try:
            await self.app(scope, receive, send)
        finally:
            _USER.reset(reset)


def install(app: FastAPI, store: Store, require_login: bool = False):
    """Adds logins to `app`: call it before the routes are added (its guard applies to every route added later,
    included routers too) -> `visible_projects(rows)`, the filter for project lists. The path parameters `vid` (a
    video) and `pid` of /api/projects/{pid}... (a project) are checked against the user: someone else's is 404."""
    accounts = Accounts(store)
    app.state.accounts = accounts
    app.add_middleware(_Login, accounts=accounts, require_login=require_login)

    def logged_in(request: Request) -> str | None:
        s = request.scope["state"]["auth"]["session"]
        return s["user"] if s else None

    def guard(request: Request) -> None:
        user = logged_in(request)
        if user is None:
            return  # single-user mode (or a public route)
        template = getattr(request.scope.get("route"), "path", "")
        for key, visible, what in (("pid", accounts.visible, "project"), ("vid", accounts.video_visible, "video")):
            raw = request.path_params.get(key)
            if raw is None or (key == "pid" and not template.startswith("/api/projects/{pid}")):
                continue  # (a `pid` elsewhere is another id: /api/videos/{vid}/proposals/{pid}/...)
            try:
                ident = _INT.validate_python(raw)
            except ValidationError:
                continue  # the route answers 400
            if not visible(user, ident):
                raise NotFound(f"no {what} {ident}")  # the words of an unknown one

    app.router.dependencies.append(Depends(guard))

    @app.exception_handler(RateLimited)
    def _rate(request: Request, exc: RateLimited):
        return _error(429, str(exc))

    @app.exception_handler(NotOwner)
    def _owner(request: Request, exc: NotOwner):
        return _error(403, str(exc))

    def need_accounts(request: Request) -> str:
        user = logged_in(request)
        if user is None:
            raise ValueError("there are no accounts: the app runs in single-user mode (add one with "
                             "`samstream app users add NAME`)")
        return user

    @app.post("/api/login")
    def login(body: LoginIn, request: Request):
        if not request.scope["state"]["auth"]["required"]:
            need_accounts(request)
        s = accounts.login(body.name, body.password)
        if s is None:
            return _error(401, "wrong name or password")
        response = JSONResponse({"user": s["user"], "csrf": s["csrf"]})
        response.set_cookie(COOKIE, s["token"], max_age=int(SESSION_TTL), path="/", httponly=True,
                            samesite="strict", secure=request.url.scheme == "https")
        return response

    @app.post("/api/logout")
    def logout(request: Request):
        accounts.logout(request.cookies.get(COOKIE))
        response = JSONResponse({"user": None})
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict",
                               secure=request.url.scheme == "https")
        return response

    @app.get("/api/session")
    def session(request: Request):
        s = request.scope["state"]["auth"]["session"]
        if s is None:
            return JSONResponse({"user": LOCAL, "csrf": "", "accounts": False})
        return JSONResponse({"user": s["user"], "csrf": s["csrf"], "accounts": True})

    @app.post("/api/projects/{pid}/share")
    def share(pid: int, body: ShareIn, request: Request):
        return JSONResponse({"members": accounts.share(pid, need_accounts(request), body.user)})

    @app.delete("/api/projects/{pid}/share/{user}")
    def unshare(pid: int, user: str, request: Request):
        return JSONResponse({"members": accounts.unshare(pid, need_accounts(request), user)})

    @app.get("/api/projects/{pid}/stats")
    def stats(pid: int):
        return JSONResponse(project_stats(store, pid))

    def visible_projects(rows: list[dict]) -> list[dict]:
        user = _USER.get()
        if user is None:
            return rows
        return [{**r, "members": accounts.members(r["id"])} for r in rows if accounts.visible(user, r["id"])]

    return visible_projects
