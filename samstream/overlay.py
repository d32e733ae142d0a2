"""Colouring masks over images for people to look at."""
from __future__ import annotations

import numpy as np

# distinct, colour-blind-friendly-ish colours; object k uses PALETTE[k % len]
PALETTE = np.array([
    (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
    (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128), (220, 190, 255),
], dtype=np.uint8)


def overlay(image: np.ndarray, masks: np.ndarray, ids=None, alpha: float = 0.5) -> np.ndarray:
    """image (H, W, 3) uint8, masks (K, H, W) bool -> (H, W, 3) uint8 with each mask tinted and outlined."""
    out = image.astype(np.float32).copy()
    ids = list(range(len(masks))) if ids is None else list(ids)
    for m, k in zip(masks, ids):
        m = m.astype(bool)
        if not m.any():
            continue
        colour = PALETTE[k % len(PALETTE)].astype(np.float32)
        out[m] = (1 - alpha) * out[m] + alpha * colour
        edge = m & ~(np.roll(m, 1, 0) & np.roll(m, -1, 0) & np.roll(m, 1, 1) & np.roll(m, -1, 1))
        out[edge] = colour
    return out.clip(0, 255).astype(np.uint8)
