"""Opening image files: fully decoded, within a pixel limit, with errors that name the file.

The limit guards against decompression bombs (a tiny file that decodes to gigabytes). It is samstream's own:
`MAX_IMAGE_PIXELS`, or the environment variable SAMSTREAM_MAX_IMAGE_PIXELS (a number of pixels, or "none").
PIL's guard (a warning above about 89 megapixels, an error above about 179) is raised to it when needed, so
that images within samstream's limit open without PIL's warning or error.
"""
from __future__ import annotations

import os
import re
import warnings

from PIL import Image, UnidentifiedImageError

from .errors import FormatError

#: Largest image (width x height) samstream opens, unless SAMSTREAM_MAX_IMAGE_PIXELS says otherwise.
MAX_IMAGE_PIXELS = 200_000_000
MAX_IMAGE_PIXELS_ENV = "SAMSTREAM_MAX_IMAGE_PIXELS"


def max_image_pixels() -> int | None:
    """The pixel limit in force: SAMSTREAM_MAX_IMAGE_PIXELS when set ("none": no limit), else MAX_IMAGE_PIXELS."""
    raw = os.environ.get(MAX_IMAGE_PIXELS_ENV, "").strip()
    if not raw:
        return MAX_IMAGE_PIXELS
    if raw.lower() == "none":
        return None
    try:
        limit = int(raw)
    except ValueError:
        limit = 0
    if limit < 1:
        raise ValueError(
            f"{MAX_IMAGE_PIXELS_ENV}={raw!r}: expected a positive number of pixels, or 'none' for no limit")
    return limit


def _raise_pil_limit(limit: int | None) -> None:
    # PIL warns above its MAX_IMAGE_PIXELS and refuses above twice that; never lower what the caller set.
    if Image.MAX_IMAGE_PIXELS is not None and (limit is None or Image.MAX_IMAGE_PIXELS < limit):
        Image.MAX_IMAGE_PIXELS = limit


def _too_large(path, size: str, limit: int) -> ValueError:
    return ValueError(
        f"{os.fspath(path)}: image is {size}, over the limit of {limit:,} pixels (a guard against decompression "
        f"bombs); to read it, set {MAX_IMAGE_PIXELS_ENV} to a larger number of pixels, or to 'none' for no limit"
    )


def check_image_size(size: tuple[int, int], path: str | os.PathLike) -> None:
    """ValueError naming the file, its size and how to allow it when `size` (W, H) is over the pixel limit."""
    limit = max_image_pixels()
    w, h = size
    if limit is not None and w * h > limit:
        raise _too_large(path, f"{w}x{h} = {w * h:,} pixels", limit)


def open_image(path: str | os.PathLike, *, what: str = "an image", field: str | None = None) -> Image.Image:
    """Open and fully decode the image file `path` (the caller closes it).

    Raises FileNotFoundError, ValueError when it is over the pixel limit, FormatError (naming `path`, and
    `field` when given) when it cannot be decoded as `what`.
    """
    limit = max_image_pixels()
    _raise_pil_limit(limit)
    with warnings.catch_warnings():
        # PIL warns at its own limit; the size check below decides instead.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            img = Image.open(path)
        except FileNotFoundError:
            raise
        except Image.DecompressionBombError as e:  # over twice PIL's limit, so over samstream's too
            pixels = re.search(r"\((\d+) pixels\)", str(e))
            raise _too_large(path, f"{int(pixels[1]):,} pixels" if pixels else "too large", limit) from None
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
            raise FormatError(f"cannot be decoded as {what} ({e})", path=path, field=field) from None
        try:
            check_image_size(img.size, path)
        except ValueError:
            img.close()
            raise
        try:
            img.load()  # truncated or corrupt data only fails here
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
            img.close()
            raise FormatError(f"cannot be decoded as {what} ({e})", path=path, field=field) from None
    return img
