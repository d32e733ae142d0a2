"""Atomic file writes: write a temporary file beside the target, then `os.replace` it.

A reader never sees a half-written mask or JSON, and an interrupted run leaves either the old
file or the new one. No fsync: this protects against crashes of the process, not power loss,
and fsync per PNG would make writing thousands of masks slow.
"""
from __future__ import annotations

import contextlib
import os
import re
import uuid
from pathlib import Path

# the temporary file of `path` is `.<name>.<pid>.<8 hex>.tmp` beside it; TEMP_NAME reads one back (the process
# that wrote it, so that a later run can tell a killed run's leftovers from a running writer's file)
TEMP_NAME = re.compile(r"\.(?P<name>.+)\.(?P<pid>\d+)\.[0-9a-f]{8}\.tmp")


def temp_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")


def file_in_the_way(folder: str | os.PathLike) -> Path | None:
    """The existing non-folder (`folder` itself or one of its parents) that stops `folder` from being a
    folder, or None."""
    for p in (Path(folder), *Path(folder).parents):
        if p.exists() or p.is_symlink():
            return None if p.is_dir() else p
    return None


def ensure_folder(folder: str | os.PathLike) -> Path:
    """Create `folder` and its parents; a file in the way is a NotADirectoryError that names it."""
    folder = Path(folder)
    blocker = file_in_the_way(folder)
    if blocker is not None:
        raise NotADirectoryError(f"{folder} is a file, not a folder" if blocker == folder
                                 else f"cannot create folder {folder}: {blocker} is a file, not a folder")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write `data` to `path` atomically (parent folders are created). Returns the path.

    On failure the target keeps its old content, the temporary file is removed where possible, and the
    error raised is the write's own (a failing clean-up, e.g. on a read-only filesystem, does not hide it);
    an OSError names `path`, not the temporary file."""
    path = Path(path)
    ensure_folder(path.parent)
    if path.is_dir():
        raise IsADirectoryError(f"cannot write {path}: it is a folder")
    # Our own temp name opened with "xb" (not mkstemp) so the file gets the usual umask permissions.
    tmp = temp_path(path)
    try:
        with open(tmp, "xb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(e, OSError) and e.filename in (None, str(tmp)):  # a failed write() names no file
            e.filename = str(path)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Write `text` to `path` atomically."""
    return atomic_write_bytes(path, text.encode(encoding))
