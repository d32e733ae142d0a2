"""Annotator: one video's annotation session, the model (a VideoPredictor) plus every action's store writes.

The store is the truth; the predictor is a cache of it, rebuilt from the stored prompts whenever it may differ
(at construction, so a restarted server resumes, and after undo / redo or a failed action). Each action checks
its input first (a bad request changes nothing), runs the model, then writes one store event, committed before
it returns. Propagation runs in a background thread and commits one flush per frame.
"""
from __future__ import annotations

import contextlib
import logging
import math
import threading
from pathlib import Path

import numpy as np

from ..io.rle import decode_rle
from ..video.predictor import DIRECTIONS, VideoPredictor
from .brush import paint_stroke
from .media import default_colour
from .store import Busy, StaleError, StoreError, mask_record

log = logging.getLogger(__name__)

OBJECT_FIELDS = ("name", "category", "colour", "hidden")
MAX_STROKE_POINTS = 10_000


def _number(v, field: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float, np.number)) or not math.isfinite(v):
        raise StoreError(f"{field} must be a finite number, got {v!r}")
    return float(v)


class Annotator:
    """One video's annotation session: the model (a VideoPredictor, rebuilt from the stored prompts) and every
    action's store writes. Thread-safe: one lock; a propagation runs in a background thread.

    Every action returns {"version": int, ...} and takes user="local" and expect_version=None (StaleError when the
    video's version differs). Unknown or deleted objects: NotFound; bad input: StoreError (a ValueError) naming the
    field; any action while a propagation runs: Busy.
    """

    def __init__(self, model, store, video_id: int, video_path: Path, postprocess=None, precision: str = "fp32"):
        self.store, self.video_id = store, video_id
        self.video = store.video(video_id)
        self._path = Path(video_path)
        self._vp = VideoPredictor(model, str(video_path), progress=False, postprocess=postprocess,
                                  precision=precision)
        h, w = self._vp.video_size
        if (h, w) != (self.video["height"], self.video["width"]):
            self._vp.close()
            raise StoreError(f"video {self.video['name']!r} is now {w}x{h}, it was added as "
                             f"{self.video['width']}x{self.video['height']}")
        self._lock = threading.RLock()
        self._stale = True  # the predictor does not hold the stored prompts yet
        self._job: dict | None = None  # replaced whole on every change, so readers need no lock
        self._thread: threading.Thread | None = None
        self._cancel = threading.Event()

    # ------------------------------------------------------------------------------ objects
    def add_object(self, name=None, category=None, colour=None, user="local", expect_version=None) -> dict:
        """A new object with the smallest free id -> {"version", "object"}."""
        with self._action():
            self._check_writable(expect_version)
            obj_id = self.store.free_obj_id(self.video_id)
            row = {"name": name, "category": category, "colour": colour or default_colour(obj_id),
                   "hidden": False, "deleted": False}
            with self.store.event(self.video_id, "add_object", {"obj_id": obj_id, **row}, user,
                                  expect_version) as ev:
                ev.set_object(obj_id, row)
            return {"version": ev.version, "object": self.store.object(self.video_id, obj_id)}

    def add_object_with_mask(self, frame, mask, score=None, user="local", expect_version=None,
                             payload=None) -> dict:
        """A new object (the smallest free id) whose prompt on `frame` is `mask` ((H, W) bool, e.g. an accepted
        automatic proposal), in one "accept_proposal" event -> {"version", "object", "frame", "mask"}. The
        mask is stored as the model's ("prompt", not locked) and enters the memory as a mask prompt."""
        with self._action():
            frame = self._frame(frame)
            self._check_writable(expect_version)
            mask = np.asarray(mask).astype(bool)
            if mask.shape != (self.video["height"], self.video["width"]):
                raise StoreError(f"the mask is {mask.shape}, the video's frames are "
                                 f"{(self.video['height'], self.video['width'])} (h, w)")
            if not mask.any():
                raise StoreError("the mask is empty")
            obj_id = self.store.free_obj_id(self.video_id)
            row = {"name": None, "category": None, "colour": default_colour(obj_id), "hidden": False,
                   "deleted": False}
            rec = mask_record(mask, None if score is None else _number(score, "score"), "prompt")
            with self._model_guard():
                self._ensure()
                self._vp.add_mask(frame, obj_id, mask)
                with self.store.event(self.video_id, "accept_proposal",
                                      {**(payload or {}), "obj_id": obj_id, "frame": frame}, user,
                                      expect_version) as ev:
                    ev.set_object(obj_id, row)
                    ev.set_prompt(obj_id, frame, {"mask": rec["rle"]})
                    ev.set_mask(obj_id, frame, rec)
            return {"version": ev.version, "object": self.store.object(self.video_id, obj_id), "frame": frame,
                    "mask": self._summary(rec)}

    def update_object(self, obj_id, user="local", expect_version=None, **fields) -> dict:
        """Changes name, category, colour and / or hidden -> {"version", "object"}."""
        with self._action():
            unknown = sorted(set(fields) - set(OBJECT_FIELDS))
            if unknown:
                raise StoreError(f"unknown object field(s) {unknown}; an object has {list(OBJECT_FIELDS)}")
            if "hidden" in fields and not isinstance(fields["hidden"], bool):
                raise StoreError(f"hidden must be true or false, got {fields['hidden']!r}")
            self._check_writable(expect_version)
            row = self._row(self.store.object(self.video_id, obj_id))
            with self.store.event(self.video_id, "update_object", {"obj_id": obj_id, **fields}, user,
                                  expect_version) as ev:
                ev.set_object(obj_id, {**row, **fields})
            return {"version": ev.version, "object": self.store.object(self.video_id, obj_id)}

    def delete_object(self, obj_id, user="local", expect_version=None) -> dict:
        """Marks the object deleted (undoable: its prompts and masks stay in the tables) -> {"version"}."""
        with self._action():
            self._check_writable(expect_version)
            row = self._row(self.store.object(self.video_id, obj_id))
            with self._model_guard():
                self._ensure()
                if obj_id in self._vp.obj_ids:
                    self._vp.remove_object(obj_id)
                with self.store.event(self.video_id, "delete_object", {"obj_id": obj_id}, user,
                                      expect_version) as ev:
                    ev.set_object(obj_id, {**row, "deleted": True})
            return {"version": ev.version}

    # ------------------------------------------------------------------------------ prompts
    def click(self, obj_id, frame, x, y, positive=True, user="local", expect_version=None) -> dict:
        """Adds a click to the object's prompt on the frame (a hand-drawn mask there is replaced by the click)
        -> {"version", "frame", "mask": {"area", "score", "source"}}."""
        with self._action():
            frame = self._check_action(obj_id, frame, expect_version)
            x, y = self._point(x, y, "x", "y")
            if not isinstance(positive, bool):
                raise StoreError(f"positive must be true or false, got {positive!r}")
            old = self.store.prompt(self.video_id, obj_id, frame)
            data = {"points": [[x, y]], "labels": [int(positive)], "box": None}
            if old is not None and "mask" not in old:
                data = {"points": old["points"] + data["points"], "labels": old["labels"] + data["labels"],
                        "box": old["box"]}
            payload = {"obj_id": obj_id, "frame": frame, "x": x, "y": y, "positive": positive}
            return self._prompt_event("click", obj_id, frame, data, payload, user, expect_version)

    def box(self, obj_id, frame, box, user="local", expect_version=None) -> dict:
        """Replaces the object's prompt on the frame by a box [x0, y0, x1, y1] -> like click."""
        with self._action():
            frame = self._check_action(obj_id, frame, expect_version)
            if not isinstance(box, (list, tuple)) or len(box) != 4:
                raise StoreError(f"box must be [x0, y0, x1, y1], got {box!r}")
            x0, y0 = self._point(box[0], box[1], "box x0", "box y0")
            x1, y1 = self._point(box[2], box[3], "box x1", "box y1")
            if x1 <= x0 or y1 <= y0:
                raise StoreError(f"box must have x0 < x1 and y0 < y1, got {[x0, y0, x1, y1]}")
            data = {"points": [], "labels": [], "box": [x0, y0, x1, y1]}
            payload = {"obj_id": obj_id, "frame": frame, "box": data["box"]}
            return self._prompt_event("box", obj_id, frame, data, payload, user, expect_version)

    def brush(self, obj_id, frame, points, radius, erase=False, user="local", expect_version=None) -> dict:
        """Paints (or erases) a stroke on the object's stored mask of the frame; the result is locked (source
        "hand": propagation never overwrites it) and becomes the frame's prompt -> like click."""
        with self._action():
            frame = self._check_action(obj_id, frame, expect_version)
            radius = _number(radius, "radius")
            w, h = self.video["width"], self.video["height"]
            if not 0 < radius <= max(w, h):
                raise StoreError(f"radius must be in (0, {max(w, h)}] pixels, got {radius:g}")
            if not isinstance(points, (list, tuple)) or not 1 <= len(points) <= MAX_STROKE_POINTS:
                raise StoreError(f"points must be a list of 1 to {MAX_STROKE_POINTS} [x, y] pairs")
            pts = []
            for i, p in enumerate(points):
                if not isinstance(p, (list, tuple)) or len(p) != 2:
                    raise StoreError(f"points[{i}] must be [x, y], got {p!r}")
                px, py = _number(p[0], f"points[{i}] x"), _number(p[1], f"points[{i}] y")
                # a stroke may leave the frame a little (the brush still touches it), no more
                if not (-radius <= px <= w + radius and -radius <= py <= h + radius):
                    raise StoreError(f"points[{i}] ({px:g}, {py:g}) is outside the {w}x{h} frame")
                pts.append([px, py])
            if not isinstance(erase, bool):
                raise StoreError(f"erase must be true or false, got {erase!r}")
            old = self.store.mask(self.video_id, obj_id, frame)
            mask = np.zeros((h, w), bool) if old is None else decode_rle(old["rle"])
            mask = paint_stroke(mask, pts, radius, erase)
            rec = mask_record(mask, None, "hand")
            payload = {"obj_id": obj_id, "frame": frame, "points": pts, "radius": radius, "erase": erase}
            with self._model_guard():
                self._ensure()
                self._vp.add_mask(frame, obj_id, mask)  # enters the memory like any prompt
                with self.store.event(self.video_id, "brush", payload, user, expect_version) as ev:
                    ev.set_prompt(obj_id, frame, {"mask": rec["rle"]})
                    ev.set_mask(obj_id, frame, rec)
            return {"version": ev.version, "frame": frame, "mask": self._summary(rec)}

    def clear(self, obj_id, frame, user="local", expect_version=None) -> dict:
        """Removes the object's prompt and mask on the frame -> {"version"} (unchanged when there was neither)."""
        with self._action():
            frame = self._check_action(obj_id, frame, expect_version)
            prompts = self.store.prompts(self.video_id)
            had_mask = self.store.mask(self.video_id, obj_id, frame) is not None
            if (obj_id, frame) not in prompts and not had_mask:
                return {"version": self.store.video(self.video_id)["version"]}
            with self._model_guard():
                self._ensure()
                if (obj_id, frame) in prompts and obj_id in self._vp.obj_ids:
                    if any(o == obj_id and f != frame for o, f in prompts):
                        self._vp.clear_prompts(frame, obj_id)
                    else:  # its last prompt: propagate must not see an object without one
                        self._vp.remove_object(obj_id)
                with self.store.event(self.video_id, "clear", {"obj_id": obj_id, "frame": frame}, user,
                                      expect_version) as ev:
                    ev.set_prompt(obj_id, frame, None)
                    ev.set_mask(obj_id, frame, None)
            return {"version": ev.version}

    # ------------------------------------------------------------------------------ propagation
    def propagate(self, frame, direction="forward", user="local", expect_version=None) -> dict:
        """Starts tracking every prompted object from `frame` in a background thread -> {"version", "job"}.

        Each frame's results are stored ("propagated"; "prompt" on the object's click / box frames) in one flush
        as they come, except frames whose stored mask is "hand" (locked). Objects without prompts are not tracked.
        """
        with self._action():
            self._check_idle()
            frame = self._frame(frame)
            if direction not in DIRECTIONS:
                raise StoreError(f"direction must be one of {list(DIRECTIONS)}, got {direction!r}")
            self._check_writable(expect_version)
            with self._model_guard():
                self._ensure()
                if not self._vp.obj_ids:
                    raise StoreError("nothing to propagate: give an object a click, a box or a brush stroke first")
                results = self._vp.propagate(start=frame, direction=direction)  # checks and commits now
            n = self.video["num_frames"]
            back = frame + 1 if frame > 0 else 0  # (a backward pass from frame 0 yields nothing)
            total = {"forward": n - frame, "backward": back, "both": n - frame + back}[direction]
            # no other write can happen while the job runs (Busy), so these sets stay true for the whole job
            summary = self.store.mask_summary(self.video_id)
            locked = {(o, f) for o, f, _, _, source, _, _ in summary if source in ("hand", "import")}
            prompted = {k for k, d in self.store.prompts(self.video_id).items() if "mask" not in d}
            live = {o["obj_id"] for o in self.store.objects(self.video_id)}
            ev = self.store.begin_event(self.video_id, "propagate", {"frame": frame, "direction": direction},
                                        user, expect_version)
            self._cancel.clear()
            self._job = {"id": ev.event_id, "state": "running", "start": frame, "direction": direction,
                         "done": 0, "total": total, "error": None}
            self._thread = threading.Thread(target=self._run, args=(results, ev, locked, prompted, live),
                                            name=f"propagate-video-{self.video_id}", daemon=True)
            self._thread.start()
            return {"version": ev.version, "job": dict(self._job)}

    def _run(self, results, ev, locked: set, prompted: set, live: set) -> None:
        state, error = "done", None
        try:
            while True:
                if self._cancel.is_set():
                    state = "cancelled"
                    break
                with self._lock:  # released between frames: job(), cancel() and reads get in
                    try:
                        res = next(results)
                    except StopIteration:
                        break
                    t, masks = res.frame_idx, res.masks  # (O, H, W) bool
                    for i, obj_id in enumerate(res.obj_ids):
                        if obj_id in live and (obj_id, t) not in locked:
                            source = "prompt" if (obj_id, t) in prompted else "propagated"
                            ev.set_mask(obj_id, t, mask_record(masks[i], float(res.scores[i]), source))
                    ev.flush()
                self._job = {**self._job, "done": self._job["done"] + 1}
        except Exception as e:
            log.exception("propagation of video %s failed", self.video_id)
            state, error = "failed", self._message(e)
            self._stale = True  # the tracking state may be half-updated
        finally:
            with self._lock:
                results.close()
                try:
                    ev.finish(state, note=error)
                except Exception as e:
                    log.exception("closing the propagation event of video %s failed", self.video_id)
                    state, error = "failed", error or self._message(e)
                self._job = {**self._job, "state": state, "error": error}

    def _message(self, e: Exception) -> str:
        # for the browser: the error's own words, without the server's path of the video
        return (str(e) or type(e).__name__).replace(str(self._path), self._path.name)

    def job(self) -> dict | None:
        """The latest propagation job: {"id", "state": "running"|"done"|"cancelled"|"failed", "start",
        "direction", "done", "total", "error"}, or None."""
        job = self._job
        return None if job is None else dict(job)

    def cancel(self) -> dict | None:
        """Stops the running job after its current frame (the finished frames stay) -> job()."""
        thread = self._thread
        if thread is not None and thread.is_alive():
            self._cancel.set()
            if thread is not threading.current_thread():
                thread.join()
        return self.job()

    def wait(self, timeout: float | None = None) -> dict | None:
        """Waits until the job ends (or timeout seconds) -> job()."""
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        return self.job()

    # ------------------------------------------------------------------------------ history
    def undo(self, user="local", expect_version=None) -> dict:
        """Reverts the newest event -> {"version", "event"}; StoreError "nothing to undo"."""
        return self._step(True, user, expect_version)

    def redo(self, user="local", expect_version=None) -> dict:
        """Re-applies the newest undone event -> {"version", "event"}; StoreError "nothing to redo"."""
        return self._step(False, user, expect_version)

    def _step(self, undo: bool, user, expect_version) -> dict:
        with self._action():
            self._check_idle()
            step = self.store.undo if undo else self.store.redo
            event = step(self.video_id, user=user, expect_version=expect_version)
            if event is None:
                raise StoreError(f"nothing to {'undo' if undo else 'redo'}")
            self._stale = True  # rebuilt before the next model action
            return {"version": event["version"], "event": event}

    def close(self) -> None:
        """Stops a running job (keeping its finished frames) and frees the predictor."""
        self.cancel()
        with self._lock:
            self._vp.close()

    # ------------------------------------------------------------------------------ internals
    def _prompt_event(self, kind, obj_id, frame, data, payload, user, expect_version) -> dict:
        with self._model_guard():
            self._ensure()
            res = self._apply(obj_id, frame, data)
            rec = mask_record(res.mask, res.score, "prompt")
            with self.store.event(self.video_id, kind, payload, user, expect_version) as ev:
                ev.set_prompt(obj_id, frame, data)
                ev.set_mask(obj_id, frame, rec)
        return {"version": ev.version, "frame": frame, "mask": self._summary(rec)}

    def _apply(self, obj_id: int, frame: int, data: dict):
        """One stored prompt into the predictor -> its ObjectResult.

        Clicks and box go in as ONE add_points call with all of the frame's clicks and clear=True, as
        `samstream track` gives them: on a fresh frame this is exactly its mask. On a frame the predictor already
        has an output for (the previous click's, or a tracked frame's), the predictor feeds that output to the
        decoder with the clicks, which is SAM 2's interactive refinement (clear=False would compute the same from
        the points the predictor holds; re-sending the stored ones keeps it right after a rebuild).
        """
        if "mask" in data:
            return self._vp.add_mask(frame, obj_id, decode_rle(data["mask"]))
        points = data["points"] or None
        return self._vp.add_points(frame, obj_id, points, data["labels"] if points else None, box=data["box"],
                                   clear=True)

    def _ensure(self) -> None:
        """Rebuilds the predictor from the stored prompts if it may differ from them."""
        if not self._stale:
            return
        self._vp.reset()
        for (obj_id, frame), data in sorted(self.store.prompts(self.video_id).items(), key=lambda kv: kv[0][::-1]):
            self._apply(obj_id, frame, data)  # frame order, as the store gives them
        self._stale = False

    @contextlib.contextmanager
    def _action(self):
        """The lock, for an action: Busy at once while a job runs (not after waiting for its frame to finish)."""
        self._check_idle()
        with self._lock:
            yield

    def _model_guard(self):
        return _StaleOnError(self)

    def _check_idle(self) -> None:
        job = self._job
        if job is not None and job["state"] == "running":
            raise Busy(f"video {self.video_id} is busy: a propagation (job {job['id']}) is running")

    def _check_writable(self, expect_version) -> None:
        self._check_idle()
        if expect_version is not None:
            current = self.store.video(self.video_id)["version"]
            if expect_version != current:
                raise StaleError(f"video {self.video_id} changed: version {current}, not {expect_version}", current)

    def _check_action(self, obj_id, frame, expect_version) -> int:
        self._check_idle()
        self.store.object(self.video_id, obj_id)  # NotFound, also when deleted
        frame = self._frame(frame)
        self._check_writable(expect_version)
        return frame

    def _frame(self, frame) -> int:
        n = self.video["num_frames"]
        if isinstance(frame, bool) or not isinstance(frame, (int, np.integer)):
            raise StoreError(f"frame must be an integer, got {frame!r}")
        if not 0 <= frame < n:
            raise StoreError(f"frame {frame} is outside the video (0..{n - 1})")
        return int(frame)

    def _point(self, x, y, fx: str, fy: str) -> tuple[float, float]:
        x, y = _number(x, fx), _number(y, fy)
        w, h = self.video["width"], self.video["height"]
        if not 0 <= x <= w:
            raise StoreError(f"{fx} {x:g} is outside the frame (0..{w})")
        if not 0 <= y <= h:
            raise StoreError(f"{fy} {y:g} is outside the frame (0..{h})")
        return x, y

    @staticmethod
    def _row(obj: dict) -> dict:
        return {k: obj[k] for k in ("name", "category", "colour", "hidden", "deleted")}

    @staticmethod
    def _summary(rec: dict) -> dict:
        return {"area": rec["area"], "score": rec["score"], "source": rec["source"]}


class _StaleOnError:
    """Marks the predictor for a rebuild when anything fails after it may have changed (the store write refused,
    the model failed): the next action starts again from the stored prompts."""

    def __init__(self, annotator: Annotator):
        self.annotator = annotator

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            self.annotator._stale = True
        return False
