"""Figures for people: matplotlib imported on demand (headless), saved atomically as PNG."""
from __future__ import annotations

import io
import os
from pathlib import Path

from .io.atomic import atomic_write_bytes


def pyplot():
    """matplotlib.pyplot on the Agg backend (no display needed); a clear error when matplotlib is missing."""
    try:
        import matplotlib
    except ModuleNotFoundError:
        raise ModuleNotFoundError("plots need matplotlib: pip install 'samstream[eval]'") from None
    matplotlib.use("Agg")  # must precede the pyplot import
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str | os.PathLike, dpi: int = 120) -> Path:
    """Lay out, render and close `fig`, then write it to `path` atomically (format from the suffix, default PNG)."""
    import matplotlib.pyplot as plt

    try:
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format=Path(path).suffix.lstrip(".") or "png", dpi=dpi)
    finally:
        plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue())
