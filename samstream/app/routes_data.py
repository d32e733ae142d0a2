"""The app's data routes: import masks into a video, and export a whole project (as a training set too).

    POST /api/videos/{vid}/import         multipart "file" (+ optional "version"), or JSON {"path": REL, "version"}
    GET  /api/projects/{pid}/export       ?format=training (default) | davis | sav | coco | yolo -> a zip

`server.create_app` includes `data_router(...)`; errors raise the exceptions its handlers map (ValueError -> 400,
NotFound -> 404, StaleError / Busy -> 409, UploadError -> its status).
"""
from __future__ import annotations

import tempfile
from pathlib import PurePosixPath

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from .export import safe_filename
from .imports import read_import, store_import
from .library import UploadError, sanitise_filename
from .media import default_colour
from .trainset import PROJECT_FORMATS, project_files, write_zip


def _version(v) -> int | None:
    """The form's or body's "version": an integer, or absent."""
    if v is None or v == "":
        return None
    if isinstance(v, str) and v.lstrip("-").isdigit():
        return int(v)
    if isinstance(v, int) and not isinstance(v, bool):
        return v
    raise ValueError(f"version: must be an integer, got {v!r}")


def download(out, name: str, size: int, media: str = "application/zip") -> StreamingResponse:
    """An attachment from an open file positioned at its start (closed once sent): the export routes' answer."""
    def chunks():
        try:
            while data := out.read(1 << 20):
                yield data
        finally:
            out.close()

    return StreamingResponse(chunks(), media_type=media, headers={
        "Content-Disposition": f'attachment; filename="{name}"', "Content-Length": str(size),
        "Cache-Control": "no-store"})


def data_router(store, library, sessions, user_of=lambda request: "local") -> APIRouter:
    """The routes over the app's Store, Library and Sessions; user_of(request) names who imports."""
    router = APIRouter()
    limit = library.max_upload_bytes

    def do_import(vid: int, f, name: str, version: int | None, user: str) -> dict:
        imported = read_import(f, name, store.video(vid))  # everything checked before anything is stored
        result = store_import(store, vid, imported, name, user, version, default_colour)
        ann = sessions.annotator(vid)
        if ann is not None:
            ann._stale = True  # the new mask prompts enter its memory at its next action (rebuilt from the store)
        return result

    @router.post("/api/videos/{vid}/import")
    async def import_masks(vid: int, request: Request):
        store.video(vid)  # 404 first
        if request.headers.get("content-type", "").startswith("multipart/form-data"):
            form = await request.form(max_files=1, max_fields=4)
            try:
                file, version = form.get("file"), _version(form.get("version"))
                if not isinstance(file, UploadFile):
                    raise ValueError("file: the upload needs a file field named 'file'")
                if file.size is not None and file.size > limit:
                    raise UploadError(413, f"the file is larger than the limit of {limit / 2**20:.3g} MiB")
                name = sanitise_filename(file.filename or "upload")
                result = await run_in_threadpool(do_import, vid, file.file, name, version, user_of(request))
            finally:
                await form.close()
            return result
        try:
            body = await request.json()
        except ValueError:
            raise ValueError("request body: send a multipart 'file', or JSON {\"path\": ...}") from None
        if not isinstance(body, dict) or not isinstance(body.get("path"), str) or set(body) - {"path", "version"}:
            raise ValueError("request body: JSON {\"path\": a file below the data folder, \"version\"?: int}")
        real = library.resolve(body["path"])  # PathError / FileNotFoundError for anything outside or missing
        name = PurePosixPath(library.normalise(body["path"])).name
        if not real.is_file():
            raise ValueError(f"path {name}: not a file")
        if real.stat().st_size > limit:
            raise UploadError(413, f"{name} is larger than the limit of {limit / 2**20:.3g} MiB")

        def from_path():
            with open(real, "rb") as f:
                return do_import(vid, f, name, _version(body.get("version")), user_of(request))

        return await run_in_threadpool(from_path)

    @router.get("/api/projects/{pid}/export")
    def export_project(pid: int, format: str = Query("training")):
        project = store.project(pid)  # 404 first
        if format not in PROJECT_FORMATS:
            raise ValueError(f"format: unknown export format {format!r}; choose from {', '.join(PROJECT_FORMATS)}")
        out = tempfile.SpooledTemporaryFile(max_size=64 << 20)  # noqa: SIM115 - closed by _stream; on disk when big
        try:
            write_zip(project_files(store, library, pid, format), out)
            size = out.tell()
            out.seek(0)
        except BaseException:
            out.close()
            raise
        return download(out, f"{safe_filename(project['name'], 'project')}_{format}.zip", size)

    return router
