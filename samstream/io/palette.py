"""The standard DAVIS palette (it is the PASCAL VOC colour map: 0 black, 1 dark red, 2 green, ...)."""
from __future__ import annotations

from functools import lru_cache

import numpy as np


@lru_cache(maxsize=1)
def _palette() -> np.ndarray:
    cmap = np.zeros((256, 3), dtype=np.uint8)
    for i in range(256):
        r = g = b = 0
        c = i
        # The bits of the index are spread over the high bits of R, G and B, three at a time.
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        cmap[i] = (r, g, b)
    cmap.flags.writeable = False
    return cmap


def davis_palette() -> np.ndarray:
    """(256, 3) uint8 RGB colours of the DAVIS / PASCAL VOC palette (a fresh, writable copy)."""
    return _palette().copy()
