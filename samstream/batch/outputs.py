"""A batch's output folder: one complete folder per finished video, or none.

A worker writes a video's files into OUT/.partial/<key>.<random>/ and renames that folder to its final
place when every file is closed, so OUT/<id>/ (or OUT/masks/<seq>/) is either complete or absent, whatever
kills the worker. A rerun skips the videos whose folder exists; the driver removes .partial/ (what killed
attempts left) when a run starts and ends. OUT/batch.json records the settings, so that a rerun with other
settings cannot resume into the same folder. One run at a time per OUT.
"""
from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path

from ..io.atomic import atomic_write_text, ensure_folder, file_in_the_way

PARTIAL = ".partial"


class SettingsMismatch(ValueError):
    """OUT holds a batch run with other settings."""


class BatchOutput:
    """OUT of a batch. `final(key)` is where the video `key` ends up (a folder)."""

    def __init__(self, root: str | os.PathLike, subfolder: str | None = None):
        self.root = Path(root)
        blocker = file_in_the_way(self.root)
        if blocker is not None:
            raise NotADirectoryError(f"output folder {self.root} is a file" if blocker == self.root else
                                     f"output folder {self.root} is under {blocker}, which is a file")
        self.subfolder = subfolder  # eval vos: the masks go to OUT/masks/<seq>/ as `eval vos` writes them

    def final(self, key: str) -> Path:
        return (self.root / self.subfolder / key) if self.subfolder else self.root / key

    def is_done(self, key: str) -> bool:
        return self.final(key).is_dir()

    def begin(self, key: str) -> Path:
        """A new, empty temporary folder for one attempt at `key` (on OUT's filesystem, so the rename is atomic)."""
        tmp = self.root / PARTIAL / f"{key}.{uuid.uuid4().hex[:12]}"
        tmp.mkdir(parents=True)
        return tmp

    def commit(self, tmp: Path, key: str) -> bool:
        """Move a finished attempt into place. -> False when another attempt got there first (then `tmp` is
        dropped: the video is written once)."""
        final = self.final(key)
        final.parent.mkdir(parents=True, exist_ok=True)
        if final.exists():
            shutil.rmtree(tmp, ignore_errors=True)
            return False
        try:
            os.rename(tmp, final)  # fails when another attempt's folder appeared meanwhile (not empty)
        except OSError:
            if not final.is_dir():
                raise
            shutil.rmtree(tmp, ignore_errors=True)
            return False
        return True

    def discard(self, tmp: Path) -> None:
        shutil.rmtree(tmp, ignore_errors=True)

    def clear_partial(self) -> None:
        shutil.rmtree(self.root / PARTIAL, ignore_errors=True)

    def check_settings(self, settings: dict) -> None:
        """Record `settings` in OUT/batch.json, or check that an earlier run's there are the same."""
        path = self.root / "batch.json"
        if path.is_file():
            try:
                old = json.loads(path.read_text(encoding="utf-8"))
            except json.JSONDecodeError:
                raise SettingsMismatch(f"{path} is not JSON: is {self.root} a batch output folder?") from None
            if old != settings:
                diff = sorted(k for k in set(old) | set(settings) if old.get(k) != settings.get(k))
                raise SettingsMismatch(f"{self.root} holds a batch run with other settings ({', '.join(diff)} differ, "
                                       f"see {path}): choose a new output folder, or delete it to start over")
            return
        if self.root.is_dir() and any(e.name != PARTIAL for e in self.root.iterdir()):
            raise FileExistsError(f"output folder {self.root} is not empty and not a batch output folder (no "
                                  f"batch.json): choose a new folder")
        ensure_folder(self.root)
        atomic_write_text(path, json.dumps(settings, indent=1))

    def write_failures(self, failures: list[dict]) -> Path:
        """OUT/failures.jsonl: this run's failed videos, one JSON object a line (empty when none failed)."""
        return atomic_write_text(self.root / "failures.jsonl", "".join(json.dumps(f) + "\n" for f in failures))

    def write_summary(self, summary: dict) -> Path:
        return atomic_write_text(self.root / "summary.json", json.dumps(summary, indent=1))
