"""Mask arithmetic for the automatic mask generator: small-region clean-up, stability, boxes, run lengths."""
from __future__ import annotations

import numpy as np
import torch

from .. import postprocess


def clean_small_regions(logits: torch.Tensor, max_area: int, threshold: float = 0.0) -> torch.Tensor:
    """Fill holes and drop islands of at most max_area pixels of low-res logits (N, h, w), the official way
    (the generator passes min_mask_region_area as both areas)."""
    return postprocess.clean_small_regions(logits, max_area, max_area, threshold)


def stability_scores(logits: torch.Tensor, threshold: float, offset: float) -> torch.Tensor:
    """(N, H, W) logits -> (N,) |logits > threshold + offset| / |logits > threshold - offset| in float32.

    An empty mask at the lower cut gives 0 / 0 = NaN, which fails any stability threshold.
    """
    inter = (logits > threshold + offset).sum(dim=(-2, -1), dtype=torch.int32)
    union = (logits > threshold - offset).sum(dim=(-2, -1), dtype=torch.int32)
    return inter / union


def mask_boxes(masks: torch.Tensor) -> torch.Tensor:
    """(N, H, W) bool -> (N, 4) int64 boxes (x0, y0, x1, y1) with x1, y1 the last pixel inside; zeros if empty."""
    n, h, w = masks.shape
    if n == 0:
        return torch.zeros(0, 4, dtype=torch.long, device=masks.device)
    m = masks.view(torch.uint8)  # max over bytes is several times faster than any() over bools
    rows = m.amax(dim=2) > 0  # (N, H)
    cols = m.amax(dim=1) > 0  # (N, W)
    ar_h = torch.arange(h, device=masks.device)
    ar_w = torch.arange(w, device=masks.device)
    y1 = torch.where(rows, ar_h, -1).amax(dim=1)
    y0 = torch.where(rows, ar_h, h).amin(dim=1)
    x1 = torch.where(cols, ar_w, -1).amax(dim=1)
    x0 = torch.where(cols, ar_w, w).amin(dim=1)
    boxes = torch.stack([x0, y0, x1, y1], dim=1)
    return torch.where(rows.any(dim=1, keepdim=True), boxes, torch.zeros_like(boxes))


def rle_counts(mask: np.ndarray, box: tuple[int, int, int, int], origin: tuple[int, int], height: int,
               width: int) -> list[int]:
    """COCO run lengths (column-major, starting with background) of an image-sized mask that is zero
    except for `mask` (h, w) bool placed at origin (x, y), whose foreground lies in box (x0, y0, x1, y1)
    (inclusive, in mask coordinates). Only the columns of the box are scanned.
    """
    total = height * width
    x0, y0, x1, y1 = (int(v) for v in box)
    if x1 < x0 or y1 < y0 or not mask[y0:y1 + 1, x0:x1 + 1].any():
        return [total]
    ox, oy = origin
    cols = np.zeros((x1 - x0 + 1, height), dtype=bool)  # the box's columns, full image height
    cols[:, oy + y0: oy + y1 + 1] = mask[y0:y1 + 1, x0:x1 + 1].T
    flat = cols.ravel()
    # pixels just before and after these columns are outside the box, hence background
    edges = np.flatnonzero(np.diff(flat.view(np.int8), prepend=0, append=0)) + (ox + x0) * height
    bounds = np.concatenate(([0], edges, [total]))
    if bounds[-2] == total:  # the mask runs to the last pixel of the image
        bounds = bounds[:-1]
    return np.diff(bounds).tolist()
