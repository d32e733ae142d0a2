"""Clean-up of mask logits: fill tiny holes and drop tiny islands (8-connectivity); one object per pixel."""
from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage

_EIGHT = np.ones((3, 3), dtype=bool)


def component_areas(mask: torch.Tensor) -> torch.Tensor:
    """mask (..., H, W) bool -> area of the 8-connected component each True pixel belongs to (0 elsewhere)."""
    m = mask.detach().cpu().numpy().reshape(-1, *mask.shape[-2:])
    out = np.zeros(m.shape, dtype=np.int64)
    for i in range(m.shape[0]):
        labels, n = ndimage.label(m[i], structure=_EIGHT)
        if n:
            sizes = np.bincount(labels.ravel())
            sizes[0] = 0
            out[i] = sizes[labels]
    return torch.from_numpy(out).reshape(mask.shape).to(mask.device)


def fill_holes(logits: torch.Tensor, max_area: int, threshold: float = 0.0, fill_value: float | None = None):
    """Background components of at most max_area pixels become foreground (threshold + 10, or fill_value)."""
    if max_area <= 0:
        return logits
    areas = component_areas(logits <= threshold)
    hole = (areas > 0) & (areas <= max_area)
    value = threshold + 10.0 if fill_value is None else fill_value
    return torch.where(hole, torch.as_tensor(value, dtype=logits.dtype, device=logits.device), logits)


def drop_islands(logits: torch.Tensor, max_area: int, threshold: float = 0.0, judged_on: torch.Tensor | None = None):
    """Foreground components of at most max_area pixels become threshold - 10. judged_on: the logits the
    components are found on (default: `logits`), e.g. before holes were filled."""
    if max_area <= 0 or not logits.numel():
        return logits
    islands = component_areas((logits if judged_on is None else judged_on) > threshold)
    return torch.where((islands > 0) & (islands <= max_area), torch.full_like(logits, threshold - 10.0), logits)


def clean_small_regions(logits: torch.Tensor, max_hole_area: int, max_sprinkle_area: int,
                        threshold: float = 0.0) -> torch.Tensor:
    """Fill holes and drop islands of logits (..., H, W), the way Meta's image predictor does.

    Background components (logit <= threshold) of at most max_hole_area pixels become threshold + 10,
    foreground components of at most max_sprinkle_area pixels become threshold - 10. Both are found on the
    logits as given: an island is judged before holes are filled (a ring around a filled hole stays an island).
    """
    return drop_islands(fill_holes(logits, max_hole_area, threshold), max_sprinkle_area, threshold, judged_on=logits)


def apply_non_overlap(logits: torch.Tensor) -> torch.Tensor:
    """(O, ...) logits -> per pixel only the highest object keeps its logit; the others are clamped to <= -10."""
    best = logits.argmax(dim=0, keepdim=True)
    keep = best == torch.arange(logits.shape[0], device=logits.device).view(-1, *([1] * (logits.ndim - 1)))
    return torch.where(keep, logits, logits.clamp(max=-10.0))
