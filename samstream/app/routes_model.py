"""Routes of the model in the loop: automatic proposals on a frame, and the model picker.

    POST   /api/videos/{vid}/proposals            {"frame"} -> {"frame", "proposals", "seconds"} (synchronous)
    GET    /api/videos/{vid}/proposals?frame=T    -> {"proposals"}
    POST   /api/videos/{vid}/proposals/{id}/accept {"version"?} -> a new object with that mask (one undoable event)
    POST   /api/videos/{vid}/proposals/{id}/reject -> {"proposals"} (the rest of its frame)
    DELETE /api/videos/{vid}/proposals[?frame=T]  -> {"dropped"}
    GET    /api/models                            -> the embedded, official and data-root models, the current one
    POST   /api/model {"name"}                    -> 202 the switch job (download, load, switch)
    GET    /api/model/job, POST /api/model/cancel -> the switch job
"""
from __future__ import annotations

import threading
import time

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from ..io.rle import decode_rle
from . import proposals as props
from .auth import current_user
from .models import ModelRegistry

_generating = threading.Lock()  # one generation at a time: they share the CPU with everything else


class _Body(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")


class FrameIn(_Body):
    frame: int


class AcceptIn(_Body):
    version: int | None = None


class ModelIn(_Body):
    name: str = Field(min_length=1, max_length=4096)


def _frame(store, vid: int, frame: int) -> int:
    n = store.video(vid)["num_frames"]
    if not 0 <= frame < n:
        raise ValueError(f"frame: {frame} is out of range; the video has frames 0..{n - 1}")
    return frame


def _shown(p: dict) -> dict:
    return {k: p[k] for k in ("id", "frame", "rle", "area", "score", "bbox")}


def _router() -> APIRouter:
    r = APIRouter()

    # -- proposals
    @r.post("/api/videos/{vid}/proposals")
    def make_proposals(vid: int, body: FrameIn, request: Request):
        st = request.app.state
        frame = _frame(st.store, vid, body.frame)
        with st.sessions.use(vid) as entry:
            rgb = entry.frames.rgb(frame)  # (H, W, 3) full resolution
        existing = [decode_rle(rec["rle"]) for rec in st.store.frame_masks(vid, frame).values() if rec["area"]]
        with _generating:
            t0 = time.perf_counter()
            found = props.generate(st.sessions.model, rgb, existing, st.sessions.precision)
            seconds = time.perf_counter() - t0
        return {"frame": frame, "proposals": [_shown(p) for p in st.proposals.replace(vid, frame, found)],
                "seconds": round(seconds, 3)}

    @r.get("/api/videos/{vid}/proposals")
    def list_proposals(vid: int, request: Request, frame: int | None = None):
        st = request.app.state
        st.store.video(vid)
        return JSONResponse({"proposals": [_shown(p) for p in st.proposals.list(vid, frame)]},
                            headers={"Cache-Control": "no-store"})

    @r.post("/api/videos/{vid}/proposals/{pid}/accept")
    def accept(vid: int, pid: int, request: Request, body: AcceptIn | None = None):
        st = request.app.state
        p = st.proposals.get(vid, pid)
        mask = decode_rle(p["rle"])
        with st.sessions.use(vid, annotator=True) as entry:
            result = entry.annotator.add_object_with_mask(p["frame"], mask, score=p["score"], user=current_user(),
                                                          expect_version=body.version if body else None,
                                                          payload={"proposal": pid})
        st.proposals.drop(vid, pid)
        for other in st.proposals.list(vid, p["frame"]):  # now covered by the new object
            if props.iou(decode_rle(other["rle"]), mask) > props.OVERLAP_IOU:
                st.proposals.drop(vid, other["id"])
        return {**result, "proposals": [_shown(q) for q in st.proposals.list(vid, p["frame"])]}

    @r.post("/api/videos/{vid}/proposals/{pid}/reject")
    def reject(vid: int, pid: int, request: Request):
        st = request.app.state
        p = st.proposals.get(vid, pid)
        st.proposals.drop(vid, pid)
        return {"proposals": [_shown(q) for q in st.proposals.list(vid, p["frame"])]}

    @r.delete("/api/videos/{vid}/proposals")
    def drop_all(vid: int, request: Request, frame: int | None = None):
        st = request.app.state
        st.store.video(vid)
        return {"dropped": st.proposals.clear(vid, frame)}

    # -- models
    @r.get("/api/models")
    def models(request: Request):
        return JSONResponse(request.app.state.models.listing(), headers={"Cache-Control": "no-store"})

    @r.post("/api/model")
    def switch(body: ModelIn, request: Request):
        return JSONResponse(request.app.state.models.switch(body.name), status_code=202)

    @r.get("/api/model/job")
    def model_job(request: Request):
        return JSONResponse(request.app.state.models.job(), headers={"Cache-Control": "no-store"})

    @r.post("/api/model/cancel")
    def model_cancel(request: Request):
        return request.app.state.models.cancel()

    return r


def install_model_routes(app: FastAPI) -> None:
    """Adds the proposal book, the model registry and their routes to the app of `server.create_app`."""
    app.state.proposals = props.ProposalBook()
    app.state.models = ModelRegistry(app.state, app.state.model_name)
    app.include_router(_router())
