"""Label and binary mask PNGs.

* Label PNGs (DAVIS): one uint8 index per pixel, 0 = background, 1..254 = object ids, 255 = void,
  stored as a palette ('P') image with the DAVIS palette. Readers also accept grayscale ('L', '1',
  16-bit with values < 256) label images.
* Binary PNGs (SA-V `Annotations_6fps/<video>/<obj>/<frame>.png`): one object per file, foreground is
  any value > 0. We write them as palette PNGs holding 0/1 (as sam2's own tools write masks).
"""
from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
from PIL import Image

from .atomic import atomic_write_bytes
from .errors import FormatError
from .images import open_image
from .palette import davis_palette

_GRAY_MODES = {"L", "1", "I", "I;16", "I;16B", "I;16L"}


def _open_loaded(path: str | os.PathLike) -> Image.Image:
    """Open and fully decode an image; decoding errors become FormatError naming the file."""
    return open_image(path, what="a PNG image", field="image data")


def _palette_of(img: Image.Image) -> np.ndarray | None:
    """(256, 3) uint8 palette of a 'P' image (short palettes padded with black), else None."""
    if img.mode != "P":
        return None
    flat = img.getpalette() or []
    pal = np.zeros(256 * 3, dtype=np.uint8)
    flat = flat[: 256 * 3]
    pal[: len(flat)] = flat
    return pal.reshape(256, 3)


def _labels_of(img: Image.Image, path) -> np.ndarray:
    """(H, W) uint8 label array of a palette or grayscale image."""
    if img.mode == "P":
        return np.array(img, dtype=np.uint8)
    if img.mode in _GRAY_MODES:
        arr = np.array(img)
        if arr.dtype == bool:
            return arr.astype(np.uint8)
        if arr.size and (arr.min() < 0 or arr.max() > 255):
            raise FormatError(
                f"grayscale label image has values up to {int(arr.max())}; label PNGs hold 0..255",
                path=path, field="pixel values",
            )
        return arr.astype(np.uint8)
    raise FormatError(
        f"image mode {img.mode!r} is not a label image; expected an indexed (palette, 'P') or grayscale PNG",
        path=path, field="mode",
    )


def read_label_png(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray | None]:
    """Read a label (index) PNG.

    Returns (labels, palette): labels (H, W) uint8 with the raw indices; palette (256, 3) uint8 for
    palette images (so a re-write can keep it), None for grayscale ones.
    """
    img = _open_loaded(path)
    labels = _labels_of(img, path)
    return labels, _palette_of(img)


def _as_palette(palette) -> list[int]:
    """Flat list of 768 ints from a (N, 3) / flat palette (N <= 256), padded with black."""
    pal = np.asarray(palette)
    if pal.ndim == 2:
        if pal.shape[1] != 3 or pal.shape[0] > 256:
            raise ValueError(f"palette must be (N<=256, 3) RGB, got shape {pal.shape}")
        pal = pal.reshape(-1)
    if pal.ndim != 1 or pal.size % 3 or pal.size > 768:
        raise ValueError(f"palette must hold at most 256 RGB triplets, got {pal.size} values")
    if pal.size and (pal.min() < 0 or pal.max() > 255):
        raise ValueError("palette values must be in 0..255")
    out = np.zeros(768, dtype=np.uint8)
    out[: pal.size] = pal
    return out.tolist()


def _label_array(labels, what: str = "labels") -> np.ndarray:
    arr = np.asarray(labels)
    if arr.ndim != 2:
        raise ValueError(f"{what} must be a 2-D (H, W) array, got shape {arr.shape}")
    if arr.dtype == bool:
        return arr.astype(np.uint8)
    if not (np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(f"{what} must be integers or bool, got dtype {arr.dtype}")
    if arr.size and (arr.min() < 0 or arr.max() > 255):
        raise ValueError(f"{what} must be in 0..255 for an indexed PNG, got {int(arr.min())}..{int(arr.max())}")
    return arr.astype(np.uint8)


def encode_label_png(labels, palette=None) -> bytes:
    """PNG bytes of a palette image holding `labels` (H, W) ints in 0..255 (DAVIS palette by default)."""
    arr = _label_array(labels)
    img = _to_p(arr)
    img.putpalette(_as_palette(davis_palette() if palette is None else palette))
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def _to_p(arr: np.ndarray) -> Image.Image:
    """A 'P' image whose indices are exactly `arr` (no colour quantisation)."""
    img = Image.new("P", (arr.shape[1], arr.shape[0]))
    img.frombytes(np.ascontiguousarray(arr, dtype=np.uint8).tobytes())
    return img


def write_label_png(path: str | os.PathLike, labels, palette=None) -> Path:
    """Write `labels` (H, W) as an indexed PNG, atomically.

    palette: (N, 3) RGB or flat list; default the DAVIS palette. Pass the palette returned by
    `read_label_png` to keep a file's own colours when re-writing it.
    """
    return atomic_write_bytes(path, encode_label_png(labels, palette))


def read_binary_png(path: str | os.PathLike, *, single_object: bool = True) -> np.ndarray:
    """Read a one-object mask PNG as (H, W) bool (foreground = value > 0).

    single_object: raise FormatError when the file holds more than one non-zero value (the SA-V
    layout stores one object per file; its evaluator rejects such files too).
    """
    labels, _ = read_label_png(path)
    if single_object:
        values = np.flatnonzero(np.bincount(labels.ravel(), minlength=1))  # uint8 labels: fast
        if (values != 0).sum() > 1:
            raise FormatError(
                f"found {int((values != 0).sum())} non-zero values {values[values != 0].tolist()[:8]}; "
                "a binary mask PNG holds one object",
                path=path, field="pixel values",
            )
    return labels > 0


def write_binary_png(path: str | os.PathLike, mask, palette=None) -> Path:
    """Write a (H, W) binary mask (bool or 0/non-zero) as a palette PNG holding 0/1, atomically."""
    arr = np.asarray(mask)
    if arr.ndim != 2:
        raise ValueError(f"mask must be a 2-D (H, W) array, got shape {arr.shape}")
    return write_label_png(path, (arr != 0).astype(np.uint8), palette)


def write_image_png(path: str | os.PathLike, image) -> Path:
    """Write a greyscale (H, W) or RGB (H, W, 3) uint8 picture as PNG, atomically (masks for viewers, overlays)."""
    arr = np.asarray(image)
    if arr.dtype != np.uint8 or arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] != 3):
        raise ValueError(f"image must be uint8 (H, W) or (H, W, 3), got {arr.dtype} {arr.shape}")
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return atomic_write_bytes(path, buf.getvalue())
