"""The one error type every reader in `samstream.io` raises for a malformed file."""
from __future__ import annotations

import os


class FormatError(ValueError):
    """A file (or an in-memory record) does not follow the format it is read as.

    The message names the file and the field, e.g.
    ``runs/x.json: field 'annotations[3].segmentation.counts': counts sum to 12, expected 20 (4x5)``.
    `path` and `field` are kept as attributes for callers that want them separately.
    """

    def __init__(self, message: str, *, path: str | os.PathLike | None = None, field: str | None = None):
        self.path = None if path is None else os.fspath(path)
        self.field = field
        self.reason = message
        prefix = ""
        if self.path is not None:
            prefix += f"{self.path}: "
        if field is not None:
            prefix += f"field {field!r}: "
        super().__init__(prefix + message)

    def __reduce__(self):
        # Keep path and field when the error crosses a process boundary (multiprocessing pickles it).
        return (_rebuild, (self.reason, self.path, self.field))


def _rebuild(reason, path, field):
    return FormatError(reason, path=path, field=field)
