"""Atomic file writes: write a temporary file beside the target, then `os.replace` it.

A reader never sees a half-written mask or JSON, and an interrupted run leaves either the old
file or the new one. No fsync: this protects against crashes of the process, not power loss,
and fsync per PNG would make writing thousands of masks slow.
"""
from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write `data` to `path` atomically (parent folders are created). Returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Our own temp name opened with "xb" (not mkstemp) so the file gets the usual umask permissions.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "xb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Write `text` to `path` atomically."""
    return atomic_write_bytes(path, text.encode(encoding))
