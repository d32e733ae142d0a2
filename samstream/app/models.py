"""The model picker: which models the server can switch to, and the switch itself (a background job).

A model is named one of three ways: `EMBEDDED` (the model shipped inside the package), an official name
("sam2.1_hiera_tiny": downloaded once into the cache, with progress, cancellable), or a checkpoint file below the
data root ("models/finetuned.pt", through the Library: nothing outside it). A switch loads the model on the
device of the current one, then `Sessions.set_model` closes the open model sessions, which are rebuilt from the
store with the new model on their next use: stored masks never change.
"""
from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from ..download import CHECKPOINT_FILES, cache_dir, download_checkpoint
from ..model import official_config
from .store import Busy

log = logging.getLogger(__name__)

EMBEDDED = "built-in"
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".safetensors")
MAX_SCANNED = 20_000  # directory entries looked at when listing the data root's checkpoints
RUNNING = ("downloading", "loading")


class Cancelled(Exception):
    """The switch was cancelled."""


def official_name(name: str) -> str | None:
    """The CHECKPOINT_FILES key `name` spells ("sam2.1-hiera-t" -> "sam2.1_hiera_tiny"), None if it is none."""
    if "/" in name or name.endswith(CHECKPOINT_SUFFIXES):
        return None  # a path
    try:
        key = official_config(name).name
    except ValueError:
        return None
    return key if key in CHECKPOINT_FILES else None


def cached_file(name: str) -> Path:
    """Where the official checkpoint `name` is (or will be) in the cache."""
    return cache_dir() / CHECKPOINT_FILES[name][0].rsplit("/", 1)[1]


def library_checkpoints(library) -> list[dict]:
    """The checkpoint files below the data root: [{"path", "size"}] (hidden folders and links out left out)."""
    found, seen = [], 0
    for folder, dirs, files in os.walk(library.root):  # links to folders are not followed
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for f in sorted(files):
            seen += 1
            if seen > MAX_SCANNED:
                return found
            if f.startswith(".") or not f.lower().endswith(CHECKPOINT_SUFFIXES):
                continue
            try:
                rel = library.relative(Path(folder) / f)
                real = library.resolve(rel)  # refuses a link that leads out of the root
            except (ValueError, OSError):
                continue
            if real.is_file():
                found.append({"path": rel, "size": real.stat().st_size})
    return found


class ModelRegistry:
    """The server's current model, what it can switch to, and the switch job (one at a time)."""

    def __init__(self, app_state, current: str):
        self.state = app_state  # .library, .sessions, .model_name
        self.current = current
        self._job: dict | None = None  # replaced whole on every change: readers need no lock
        self._lock = threading.Lock()
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None

    # -- reads
    def listing(self) -> dict:
        """{"current", "embedded", "official": [{"name", "cached", "size"}], "files": [{"path", "size"}], "job"}."""
        official = [{"name": n, "cached": cached_file(n).is_file(), "size": size}
                    for n, (_, size, _) in CHECKPOINT_FILES.items()]
        return {"current": self.current, "embedded": EMBEDDED, "official": official,
                "files": library_checkpoints(self.state.library), "job": self.job()}

    def job(self) -> dict | None:
        """The latest switch: {"id", "name", "state": "downloading"|"loading"|"done"|"failed"|"cancelled", "done",
        "total" (bytes of the download; None when unknown or nothing to download), "error"}, or None."""
        return None if self._job is None else dict(self._job)

    # -- the switch
    def _resolve(self, name: str):
        """-> (what load_model takes, the name shown, whether a download is needed); ValueError if unknown."""
        if name == EMBEDDED:
            return None, EMBEDDED, False
        official = official_name(name)
        if official is not None:
            return official, official, not cached_file(official).is_file()
        library = self.state.library
        rel = library.normalise(name)
        if not rel.lower().endswith(CHECKPOINT_SUFFIXES):
            raise ValueError(f"name: {name!r} is not {EMBEDDED!r}, an official model name or a checkpoint file "
                             f"({', '.join(CHECKPOINT_SUFFIXES)}) below the data folder")
        path = library.resolve(rel)
        if not path.is_file():
            raise ValueError(f"name: {rel!r} is not a file")
        return path, rel, False

    def switch(self, name: str) -> dict:
        """Starts switching to `name` in a background thread -> job(). Busy while a switch or a propagation runs."""
        with self._lock:
            if self._job is not None and self._job["state"] in RUNNING:
                raise Busy(f"the switch to {self._job['name']} is still running; cancel it first")
            self.state.sessions.check_switch()
            spec, shown, download = self._resolve(name)
            self._cancel.clear()
            job_id = (self._job or {}).get("id", 0) + 1
            self._job = {"id": job_id, "name": shown, "state": "downloading" if download else "loading",
                         "done": 0, "total": CHECKPOINT_FILES[shown][1] if download else None, "error": None}
            self._thread = threading.Thread(target=self._run, args=(spec, shown, download), daemon=True,
                                            name=f"model-switch-{job_id}")
            self._thread.start()
            return self.job()

    def cancel(self) -> dict | None:
        """Stops a running switch (a download keeps its bytes for the next try) -> job()."""
        thread = self._thread
        if thread is not None and thread.is_alive():
            self._cancel.set()
            thread.join()
        return self.job()

    def wait(self, timeout: float | None = None) -> dict | None:
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return self.job()

    def _bytes(self, done: int, total: int | None) -> None:
        if self._cancel.is_set():
            raise Cancelled
        self._job = {**self._job, "done": done, "total": total}

    def _run(self, spec, shown: str, download: bool) -> None:
        from ..load import load_model

        state, error = "done", None
        try:
            if download:
                download_checkpoint(spec, progress=False, on_bytes=self._bytes)
                self._job = {**self._job, "state": "loading"}
            device = next(self.state.sessions.model.parameters()).device
            model = load_model(spec, device=device)
            if self._cancel.is_set():
                raise Cancelled
            self.state.sessions.set_model(model)
            self.current = self.state.model_name = shown
        except Cancelled:
            state = "cancelled"
        except Busy as e:
            state, error = "failed", f"{e} (the model is ready: pick it again)"
        except Exception as e:  # CheckpointError, OSError, a bad file: said to the browser without server paths
            log.warning("switching the model to %s failed: %s", shown, e)
            state, error = "failed", self._scrub(str(e) or type(e).__name__)
        self._job = {**self._job, "state": state, "error": error}

    def _scrub(self, text: str) -> str:
        for path, shown in ((self.state.library.root, "."), (cache_dir(), "the model cache"), (Path.home(), "~")):
            text = text.replace(str(path), shown)
        return text
