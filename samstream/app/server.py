"""The HTTP API of `samstream app`: `create_app(data_dir, model)` -> a FastAPI app.

Routes are plain (sync) functions, run in the server's thread pool, over three objects: the `Store` (the
database: every write is committed before the answer goes out), the `Library` (the data root: every path the
browser sends goes through it) and, per open video, an `Annotator` (the model session) with its `FrameImages`.
At most `open_sessions` videos are open at a time; closing the least recently used loses nothing, the store has
it all. Errors are mapped in one place (`_install_error_handlers`): every error answer is `{"error": message}`
with a message that names the problem and never a server path or a traceback.
"""
from __future__ import annotations

import json
import logging
import mimetypes
import os
import re
import tempfile
import threading
from collections import OrderedDict
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
from fastapi import FastAPI, File, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException

from .. import __version__
from ..io.rle import decode_rle
from ..precision import check_precision
from .auth import current_user
from .auth import install as install_auth
from .export import FORMATS, export
from .library import Library, UploadError
from .media import FrameImages, default_colour, display_size, overlay_png
from .routes_data import data_router, download
from .routes_model import install_model_routes
from .session import Annotator
from .store import Busy, NotFound, StaleError, Store
from .timeline import timeline

log = logging.getLogger("samstream.app")

STATIC = Path(__file__).parent / "static"
USER = "local"  # the user of single-user mode; with accounts, every write records current_user() (auth.py)
MAX_SIZE = 4096  # largest display size a frame or overlay is served at
UPLOAD_SLACK = 64 << 10  # multipart overhead allowed over the upload limit before the body is refused unread
_STATIC_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*")
Finite = Field(allow_inf_nan=False)


# ------------------------------------------------------------------------------------------ JSON
def _plain(o):
    """numpy scalars and arrays (the library's results) as JSON values."""
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"{type(o).__name__} is not JSON serialisable")


class JSON(JSONResponse):
    """JSON that also takes numpy values; routes return it directly (no FastAPI re-encoding)."""

    def render(self, content) -> bytes:
        return json.dumps(content, default=_plain, allow_nan=False, separators=(",", ":")).encode()


def _error(status: int, message: str, **extra) -> JSON:
    return JSON({"error": message, **extra}, status_code=status)


# ------------------------------------------------------------------------------------------ request bodies
class Body(BaseModel):
    # strict: "3" is not a frame number, true is not an object id; unknown fields are refused, naming them
    model_config = ConfigDict(strict=True, extra="forbid")


class Write(Body):
    version: int | None = None  # the version the client last saw; a mismatch is 409 (None: no check)


class ProjectIn(Body):
    name: str = Field(min_length=1, max_length=200)


class VideoIn(Body):
    path: str = Field(max_length=4096)


class ObjectIn(Write):
    name: str | None = Field(None, max_length=200)
    category: str | None = Field(None, max_length=200)
    colour: str | None = Field(None, pattern=r"^#[0-9a-fA-F]{6}$")


class ObjectPatch(ObjectIn):
    hidden: bool | None = None


class ClickIn(Write):
    obj_id: int
    frame: int
    x: float = Finite
    y: float = Finite
    positive: bool = True


class BoxIn(Write):
    obj_id: int
    frame: int
    box: list[float] = Field(min_length=4, max_length=4)

    def finite(self) -> list[float]:
        if not all(np.isfinite(self.box)):
            raise ValueError("box: coordinates must be finite numbers")
        return list(self.box)


class BrushIn(Write):
    obj_id: int
    frame: int
    points: list[Annotated[list[float], Field(min_length=2, max_length=2)]] = Field(min_length=1, max_length=100_000)
    radius: float = Field(gt=0, le=10_000, allow_inf_nan=False)
    erase: bool = False

    def finite(self) -> list[list[float]]:
        if not np.isfinite(np.asarray(self.points, dtype=np.float64)).all():
            raise ValueError("points: coordinates must be finite numbers")
        return [list(p) for p in self.points]


class FrameObjectIn(Write):
    obj_id: int
    frame: int


class PropagateIn(Write):
    frame: int
    direction: Literal["forward", "backward", "both"] = "forward"


def _field_name(loc) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path")]
    return ".".join(parts) if parts else "request body"


# ------------------------------------------------------------------------------------------ open videos
class _Open:
    """One open video: its frames for the browser, and (made on first use) its model session."""

    def __init__(self, frames: FrameImages):
        self.frames = frames
        self.annotator: Annotator | None = None
        self.users = 0  # requests using it now: never closed under them

    def running(self) -> bool:
        job = self.annotator.job() if self.annotator is not None else None
        return bool(job) and job.get("state") == "running"

    def close(self) -> None:
        if self.annotator is not None:
            self.annotator.close()
        self.frames.close()


class Sessions:
    """An LRU of at most `limit` open videos. A video in use by a request, or propagating, is never closed; if
    all are, the LRU grows past `limit` until one is free."""

    def __init__(self, store: Store, library: Library, model, limit: int, precision: str = "fp32"):
        self.store, self.library, self.model, self.limit = store, library, model, max(1, int(limit))
        self.precision = check_precision(precision)  # every model session's and the proposals' (samstream.precision)
        self._open: OrderedDict[int, _Open] = OrderedDict()
        self._lock = threading.Lock()

    @contextmanager
    def use(self, video_id: int, annotator: bool = False):
        """The open video `video_id` (opened if needed; with `annotator`, its session made too)."""
        with self._lock:
            entry = self._open.get(video_id)
            if entry is None:
                video = self.store.video(video_id)  # NotFound first
                entry = _Open(FrameImages(self.library.resolve(video["path"])))
                self._open[video_id] = entry
            self._open.move_to_end(video_id)
            entry.users += 1
            try:
                if annotator and entry.annotator is None:
                    entry.annotator = Annotator(self.model, self.store, video_id,
                                                self.library.resolve(self.store.video(video_id)["path"]),
                                                precision=self.precision)
            except BaseException:
                entry.users -= 1
                raise
            self._evict()
        try:
            yield entry
        finally:
            with self._lock:
                entry.users -= 1
                self._evict()

    def check_switch(self) -> None:
        """Busy while a video propagates or a request uses a model session (the model cannot change then)."""
        with self._lock:
            self._check_switch()

    def _check_switch(self) -> None:
        for vid, entry in self._open.items():
            if entry.running():
                raise Busy(f"video {vid} is propagating: cancel it or let it finish, then switch the model")
            if entry.users and entry.annotator is not None:
                raise Busy(f"video {vid} is in use; try the switch again")

    def set_model(self, model) -> None:
        """Switches the model: the open model sessions are closed (each is rebuilt from the store with `model` on
        its next use; stored masks do not change). Busy as in `check_switch`."""
        with self._lock:
            self._check_switch()
            for entry in self._open.values():
                if entry.annotator is not None:
                    entry.annotator.close()
                    entry.annotator = None
            self.model = model

    def annotator(self, video_id: int) -> Annotator | None:
        """The video's session if it is open (for reads that must not start one), else None."""
        with self._lock:
            entry = self._open.get(video_id)
            return None if entry is None else entry.annotator

    def _evict(self) -> None:
        for vid in list(self._open):
            if len(self._open) <= self.limit:
                return
            entry = self._open[vid]
            if entry.users == 0 and not entry.running():
                del self._open[vid]
                entry.close()

    def close(self) -> None:
        with self._lock:
            for entry in self._open.values():
                entry.close()
            self._open.clear()


# ------------------------------------------------------------------------------------------ errors
def _install_error_handlers(app: FastAPI, store: Store, scrub) -> None:
    """The one mapping from exceptions to answers."""

    def version_of(request: Request) -> int | None:
        try:
            return store.video(int(request.path_params["vid"]))["version"]
        except (KeyError, ValueError, NotFound):
            return None

    @app.exception_handler(RequestValidationError)
    def _invalid(request: Request, exc: RequestValidationError):
        msgs = ["request body: not valid JSON" if e.get("type") == "json_invalid" else
                f"{_field_name(e.get('loc', ()))}: {e.get('msg', 'invalid')}" for e in exc.errors()]
        return _error(400, scrub("; ".join(msgs[:5])))

    @app.exception_handler(HTTPException)
    def _http(request: Request, exc: HTTPException):
        return _error(exc.status_code, scrub(str(exc.detail)), **({"version": version_of(request)}
                                                                 if exc.status_code == 409 else {}))

    @app.exception_handler(UploadError)
    def _upload(request: Request, exc: UploadError):
        return _error(exc.status, scrub(str(exc)))

    @app.exception_handler(ValueError)  # the library's PathError, the store's StoreError, input checks
    def _bad(request: Request, exc: ValueError):
        return _error(400, scrub(str(exc)))

    @app.exception_handler(NotFound)
    def _not_found(request: Request, exc: NotFound):
        return _error(404, scrub(exc.args[0] if exc.args else "not found"))

    @app.exception_handler(FileNotFoundError)
    def _no_file(request: Request, exc: FileNotFoundError):
        # the library's own say "not found: 'rel'"; an OS error names an absolute file: give only its name
        msg = f"not found: {Path(exc.filename).name}" if exc.filename else str(exc)
        return _error(404, scrub(msg))

    @app.exception_handler(StaleError)
    def _stale(request: Request, exc: StaleError):
        return _error(409, scrub(str(exc)), version=exc.current_version)

    @app.exception_handler(Busy)
    def _busy(request: Request, exc: Busy):
        return _error(409, scrub(str(exc)), version=version_of(request))

    @app.exception_handler(Exception)
    def _internal(request: Request, exc: Exception):
        log.error("internal error in %s %s", request.method, request.url.path, exc_info=exc)
        return _error(500, "internal error")


def _scrubber(*roots: Path):
    """A function that removes the server's folders from a message (belt and braces: messages are meant to name
    relative paths only)."""
    prefixes = sorted({str(r) for r in roots}, key=len, reverse=True)

    def scrub(text: str) -> str:
        for p in prefixes:
            text = text.replace(p + os.sep, "").replace(p, ".")
        return text

    return scrub


def _is_upload(path: str) -> bool:
    """The routes whose body is a file: an upload of a video, an import of masks into one."""
    parts = path.split("/")
    return path == "/api/upload" or (len(parts) == 5 and parts[1:3] == ["api", "videos"] and parts[4] == "import")


class _UploadLimit:
    """ASGI middleware: an upload (or import) whose body is plainly over the limit is answered 413 without reading
    it (by its Content-Length, or as soon as the bytes received pass it); the routes check the exact limit."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit + UPLOAD_SLACK

    async def _refuse(self, send) -> None:
        limit = self.limit - UPLOAD_SLACK
        shown = f"{limit / 2**20:.3g} MiB" if limit >= 2**20 else f"{limit} bytes"
        body = json.dumps({"error": f"the upload is larger than the limit of {shown}"}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not _is_upload(scope["path"]):
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            return await self._refuse(send)
        state = {"received": 0, "over": False}

        async def counting_receive():
            if state["over"]:  # the body ends here: the parser fails, and its answer is replaced below
                return {"type": "http.request", "body": b"", "more_body": False}
            msg = await receive()
            if msg["type"] == "http.request":
                state["received"] += len(msg.get("body", b""))
                if state["received"] > self.limit:
                    state["over"] = True
                    return {"type": "http.request", "body": b"", "more_body": False}
            return msg

        async def guarded_send(msg):
            if not state["over"]:
                await send(msg)
            elif msg["type"] == "http.response.start":
                await self._refuse(send)

        await self.app(scope, counting_receive, guarded_send)


# ------------------------------------------------------------------------------------------ the app
def create_app(data_dir, model=None, *, model_name: str | None = None, max_upload_bytes: int = 2 * 1024**3,
               open_sessions: int = 2, require_login: bool = False, precision: str = "fp32") -> FastAPI:
    """The annotation app over the library folder `data_dir` (its database: `data_dir/.samstream/app.db`).

    model: a SAM2Model shared by every video (None: the embedded model, loaded here); model_name: what
    /api/info reports. max_upload_bytes: the largest upload accepted. open_sessions: videos kept open at once.
    require_login: logins even with no account yet (a server listening beyond this machine; see auth.py).
    precision: "fp32" (exact), "bf16" or "fp16" for tracking and proposals (samstream.precision); a model
    switch keeps it.
    """
    check_precision(precision)  # before the model loads
    library = Library(data_dir, max_upload_bytes=max_upload_bytes)
    if model is None:
        from ..load import load_model

        model = load_model(None)
        model_name = model_name or "built-in"
    private = library.root / ".samstream"
    private.mkdir(exist_ok=True)
    store = Store(private / "app.db")
    sessions = Sessions(store, library, model, open_sessions, precision)
    scrub = _scrubber(library.root, Path(data_dir).absolute(), Path(__file__).resolve().parents[1])

    @asynccontextmanager
    async def lifespan(app):
        yield
        sessions.close()
        store.close()

    app = FastAPI(title="samstream app", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=None, default_response_class=JSON)
    app.state.store, app.state.library, app.state.sessions = store, library, sessions
    app.state.model_name = model_name or "custom"  # changed by a model switch (routes_model)
    _install_error_handlers(app, store, scrub)
    app.add_middleware(_UploadLimit, limit=library.max_upload_bytes)
    visible_projects = install_auth(app, store, require_login)  # before the routes: its guard covers each one
    app.include_router(data_router(store, library, sessions, user_of=lambda request: current_user()))

    def video_of(vid: int) -> dict:
        return store.video(vid)

    def check_frame(video: dict, frame: int, field: str = "frame") -> int:
        if not 0 <= frame < video["num_frames"]:
            raise ValueError(f"{field}: {frame} is out of range; the video has frames 0..{video['num_frames'] - 1}")
        return frame

    def check_object(vid: int, obj_id: int) -> int:
        try:
            store.object(vid, obj_id)
        except NotFound:
            raise ValueError(f"obj_id: video {vid} has no object {obj_id}") from None
        return obj_id

    def frame_or_404(vid: int, t: int) -> dict:
        video = video_of(vid)
        if not 0 <= t < video["num_frames"]:
            raise NotFound(f"frame {t} is out of range; the video has frames 0..{video['num_frames'] - 1}")
        return video

    def act(vid: int, method: str, *args, status: int = 200, **kwargs) -> JSON:
        """Run an Annotator action on video `vid` and answer its result."""
        with sessions.use(vid, annotator=True) as entry:
            result = getattr(entry.annotator, method)(*args, user=current_user(), **kwargs)
        return JSON(result, status_code=status)

    def prompt_args(vid: int, body) -> dict:
        check_frame(video_of(vid), body.frame)
        check_object(vid, body.obj_id)
        return {"expect_version": body.version}

    # -- static UI
    def static_file(name: str) -> Response:
        if not _STATIC_NAME.fullmatch(name) or not (STATIC / name).is_file():
            raise NotFound(f"no such file: {name}" if _STATIC_NAME.fullmatch(name) else "no such file")
        media = mimetypes.guess_type(name)[0] or "application/octet-stream"
        if name.endswith(".js"):
            media = "text/javascript"
        return Response((STATIC / name).read_bytes(), media_type=media, headers={"Cache-Control": "no-cache"})

    @app.get("/", include_in_schema=False)
    def index():
        return static_file("index.html")

    @app.get("/static/{name:path}", include_in_schema=False)
    def static(name: str):
        return static_file(name)

    # -- library
    @app.get("/api/info")
    def info():
        return JSON({"model": app.state.model_name, "data": library.root.name, "version": __version__})

    @app.get("/api/library")
    def list_library(path: str = ""):
        return JSON({"path": library.normalise(path), "entries": library.list(path)})

    @app.post("/api/upload")
    def upload(file: Annotated[UploadFile, File()]):
        return JSON({"path": library.save_upload(file.filename or "upload", file.file)})

    # -- projects
    @app.get("/api/projects")
    def projects():
        return JSON(visible_projects(store.list_projects()))

    @app.post("/api/projects")
    def create_project(body: ProjectIn):
        name = body.name.strip()
        if not name:
            raise ValueError("name: a project needs a name")
        return JSON(store.create_project(name, user=current_user()))

    @app.get("/api/projects/{pid}")
    def project(pid: int):
        return JSON({**store.project(pid), "videos": store.videos(pid)})

    @app.post("/api/projects/{pid}/videos")
    def add_video(pid: int, body: VideoIn):
        store.project(pid)  # 404 before probing anything
        p = library.probe(body.path)
        return JSON(store.add_video(pid, p["path"], p["name"], p["num_frames"], p["width"], p["height"], p["fps"]))

    # -- a video: reads
    @app.get("/api/videos/{vid}")
    def video(vid: int):
        v = video_of(vid)
        ann = sessions.annotator(vid)
        return JSON({**v, "objects": store.objects(vid), "can_undo": store.can_undo(vid),
                     "can_redo": store.can_redo(vid), "job": ann.job() if ann is not None else None})

    @app.get("/api/videos/{vid}/frames/{t}")
    def frame(vid: int, t: int, size: int = Query(1280, ge=16, le=MAX_SIZE)):
        frame_or_404(vid, t)
        with sessions.use(vid) as entry:
            data = entry.frames.jpeg(t, max_side=size)
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"})

    @app.get("/api/videos/{vid}/overlay/{t}")
    def overlay(vid: int, t: int, size: int = Query(1280, ge=16, le=MAX_SIZE)):
        v = frame_or_404(vid, t)
        objects = {o["obj_id"]: o for o in store.objects(vid)}  # live ones only
        masks = {oid: decode_rle(rec["rle"]) for oid, rec in sorted(store.frame_masks(vid, t).items())
                 if oid in objects and not objects[oid]["hidden"] and rec["area"]}
        colours = {oid: objects[oid]["colour"] or default_colour(oid) for oid in masks}
        png = overlay_png(masks, colours, display_size(v["width"], v["height"], size))
        return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})

    @app.get("/api/videos/{vid}/masks/{t}")
    def masks(vid: int, t: int):
        frame_or_404(vid, t)
        recs = store.frame_masks(vid, t)
        return JSON({"frame": t, "objects": {str(oid): {k: rec[k] for k in ("rle", "area", "score", "source")}
                                             for oid, rec in sorted(recs.items())}},
                    headers={"Cache-Control": "no-store"})

    @app.get("/api/videos/{vid}/timeline")
    def video_timeline(vid: int):
        video_of(vid)
        return JSON(timeline(store, vid), headers={"Cache-Control": "no-store"})

    @app.get("/api/videos/{vid}/history")
    def history(vid: int, limit: int = Query(200, ge=1, le=10_000)):
        video_of(vid)
        return JSON(store.history(vid, limit=limit))

    # -- a video: objects
    @app.post("/api/videos/{vid}/objects")
    def add_object(vid: int, body: ObjectIn):
        return act(vid, "add_object", name=body.name, category=body.category, colour=body.colour,
                   expect_version=body.version)

    @app.patch("/api/videos/{vid}/objects/{obj_id}")
    def update_object(vid: int, obj_id: int, body: ObjectPatch):
        fields = body.model_dump(exclude_unset=True, exclude={"version"})
        if not fields:
            raise ValueError("nothing to change: give name, category, colour or hidden")
        store.object(vid, obj_id)  # 404 for an unknown object
        return act(vid, "update_object", obj_id, expect_version=body.version, **fields)

    @app.delete("/api/videos/{vid}/objects/{obj_id}")
    def delete_object(vid: int, obj_id: int, version: int | None = None):
        store.object(vid, obj_id)
        return act(vid, "delete_object", obj_id, expect_version=version)

    # -- a video: prompts
    @app.post("/api/videos/{vid}/click")
    def click(vid: int, body: ClickIn):
        kw = prompt_args(vid, body)
        return act(vid, "click", body.obj_id, body.frame, body.x, body.y, positive=body.positive, **kw)

    @app.post("/api/videos/{vid}/box")
    def box(vid: int, body: BoxIn):
        kw = prompt_args(vid, body)
        return act(vid, "box", body.obj_id, body.frame, body.finite(), **kw)

    @app.post("/api/videos/{vid}/brush")
    def brush(vid: int, body: BrushIn):
        kw = prompt_args(vid, body)
        return act(vid, "brush", body.obj_id, body.frame, body.finite(), body.radius, erase=body.erase, **kw)

    @app.post("/api/videos/{vid}/clear")
    def clear(vid: int, body: FrameObjectIn):
        kw = prompt_args(vid, body)
        return act(vid, "clear", body.obj_id, body.frame, **kw)

    # -- a video: propagation
    @app.post("/api/videos/{vid}/propagate")
    def propagate(vid: int, body: PropagateIn):
        check_frame(video_of(vid), body.frame)
        return act(vid, "propagate", body.frame, direction=body.direction, expect_version=body.version, status=202)

    @app.get("/api/videos/{vid}/job")
    def job(vid: int):
        video_of(vid)
        ann = sessions.annotator(vid)
        return JSON(ann.job() if ann is not None else None, headers={"Cache-Control": "no-store"})

    @app.post("/api/videos/{vid}/cancel")
    def cancel(vid: int):
        video_of(vid)
        ann = sessions.annotator(vid)
        return JSON(ann.cancel() if ann is not None else None)

    # -- a video: undo / redo
    def undo_redo(vid: int, method: str, body: Write | None) -> JSON:
        with sessions.use(vid, annotator=True) as entry:
            result = getattr(entry.annotator, method)(user=current_user(),
                                                      expect_version=body.version if body else None)
        if result is None or result.get("event") is None:
            raise ValueError(f"nothing to {method}")
        return JSON(result)

    @app.post("/api/videos/{vid}/undo")
    def undo(vid: int, body: Write | None = None):
        return undo_redo(vid, "undo", body)

    @app.post("/api/videos/{vid}/redo")
    def redo(vid: int, body: Write | None = None):
        return undo_redo(vid, "redo", body)

    install_model_routes(app)  # proposals and the model picker

    # -- export
    @app.get("/api/videos/{vid}/export")
    def export_video(vid: int, format: str = Query("davis")):
        if format not in FORMATS:
            raise ValueError(f"format: unknown export format {format!r}; choose from {', '.join(FORMATS)}")
        video_of(vid)
        out = tempfile.SpooledTemporaryFile(max_size=64 << 20)  # noqa: SIM115 - closed by chunks(); on disk when long
        try:
            name, media = export(store, vid, format, out)
            size = out.tell()
            out.seek(0)
        except BaseException:
            out.close()
            raise
        return download(out, name, size, media)

    return app
