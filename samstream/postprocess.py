"""The output pipeline: how a predictor's low-resolution mask logits become its output masks.

`MaskPostprocess` holds every output setting and applies them in one order; the functions below are its
steps (fill tiny holes and drop tiny islands, 8-connectivity; one object per pixel; mask edges snapped to the
image's edges by a guided filter).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage

from .transforms import resize_logits

_EIGHT = np.ones((3, 3), dtype=bool)


@dataclass(frozen=True)
class MaskPostprocess:
    """The output clean-up of ImagePredictor, VideoPredictor and track-all. mask_threshold: the logit above which
    a pixel is in a mask. The settings apply in this order:

    1. at low resolution (the decoder's L x L grid): background components (logit <= mask_threshold) of at
       most max_hole_area pixels become mask_threshold + 10 and foreground components of at most
       max_sprinkle_area pixels become mask_threshold - 10, both found on the logits as given (SAM 2's image
       predictor);
    2. bilinear upsampling to the output (image or video) size;
    3. edge refinement: each mask snapped to the image's edges by a guided filter (`refine_to_edges`) of radius
       edge_refine_radius pixels of the low-res grid (scaled to the output) and eps edge_refine_eps, around
       mask_threshold; 0 is off (SAM 2's outputs);
    4. non_overlap_masks: per pixel only the object with the highest logit keeps it, the others are clamped to
       <= mask_threshold - 10 (SAM 2's video option);
    5. min_region_area: each mask loses its foreground regions of fewer pixels than this, at output resolution
       (SAM 1's `min_mask_region_area` for automatic masks); 0 keeps everything.

    Steps 1-3 (`upscale`) treat each mask on its own, steps 4-5 (`combine`) the objects of one image or frame
    together. Everything is off by default, which gives SAM 2's masks; a model's own defaults travel with its
    weights as `model.inference_defaults` (the embedded default model turns edge refinement on).

    These are outputs only: what a video tracker remembers is not changed by them. SAM 2's video hole filling
    (`fill_hole_area`) is not one of them: it fills holes in the stored low-res masks, which are fed back to
    the model (a click's previous mask, the memory of a prompted frame), so it is a tracking setting
    (SAM2Config.fill_hole_area, VideoPredictor(fill_hole_area=...)). Video outputs are cut at 0, so a video
    pipeline keeps mask_threshold at 0.
    """

    mask_threshold: float = 0.0
    max_hole_area: int = 0
    max_sprinkle_area: int = 0
    edge_refine_radius: float = 0.0
    edge_refine_eps: float = 1e-3
    non_overlap_masks: bool = False
    min_region_area: int = 0

    def __post_init__(self):
        for name in ("max_hole_area", "max_sprinkle_area", "min_region_area"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.edge_refine_radius < 0 or self.edge_refine_eps <= 0:
            raise ValueError(f"edge_refine_radius must be >= 0 and edge_refine_eps > 0, got "
                             f"{self.edge_refine_radius} and {self.edge_refine_eps}")
        for name, typ in (("mask_threshold", float), ("max_hole_area", int), ("max_sprinkle_area", int),
                          ("edge_refine_radius", float), ("edge_refine_eps", float), ("non_overlap_masks", bool),
                          ("min_region_area", int)):
            object.__setattr__(self, name, typ(getattr(self, name)))

    def override(self, **changes) -> MaskPostprocess:
        """A copy with the given fields changed; None values keep this one's (e.g. options left unset)."""
        fields = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - fields)
        if unknown:
            raise TypeError(f"unknown output settings {unknown}; MaskPostprocess has {sorted(fields)}")
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    @classmethod
    def resolve(cls, model, postprocess: MaskPostprocess | None, **settings) -> MaskPostprocess:
        """A predictor's pipeline: `postprocess` (None: the model's inference_defaults) with `settings` (fields;
        None values left out) over it."""
        if postprocess is None:
            postprocess = model.inference_defaults
        if not isinstance(postprocess, cls):
            raise TypeError(f"postprocess must be a MaskPostprocess or None, got {type(postprocess).__name__}")
        return postprocess.override(**settings)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> MaskPostprocess:
        return cls().override(**d)

    @property
    def refines_edges(self) -> bool:
        return self.edge_refine_radius > 0

    def upscale(self, low: torch.Tensor, hw: tuple[int, int], image=None) -> torch.Tensor:
        """Steps 1-3: low-res logits (O, K, L, L) -> (O, K, H, W) float32 logits at hw = (H, W). image: (H, W, 3)
        uint8 RGB, the edge refinement's guide (None: no refinement)."""
        logits = resize_logits(clean_small_regions(low, self.max_hole_area, self.max_sprinkle_area,
                                                   self.mask_threshold), hw)
        radius = edge_refine_pixels(self.edge_refine_radius, hw, low.shape[-1])
        if radius and image is not None:  # refined around the threshold: refine_to_edges takes 0 as the boundary
            o, k = logits.shape[:2]
            t = self.mask_threshold
            flat = logits.reshape(o * k, 1, *hw)
            flat = refine_to_edges(flat - t if t else flat, image, radius, self.edge_refine_eps)
            logits = (flat + t if t else flat).reshape(o, k, *hw)
        return logits

    def combine(self, logits: torch.Tensor) -> torch.Tensor:
        """Steps 4-5: (O, K, H, W) logits of O objects on one image -> the same, objects made disjoint and small
        regions dropped."""
        if self.non_overlap_masks and logits.shape[0] > 1:
            logits = apply_non_overlap(logits, self.mask_threshold)
        if self.min_region_area > 1:
            logits = drop_islands(logits, self.min_region_area - 1, self.mask_threshold)
        return logits

    def __call__(self, low: torch.Tensor, hw: tuple[int, int], image=None) -> torch.Tensor:
        """The whole pipeline: low-res logits (O, K, L, L) -> output logits (O, K, H, W)."""
        return self.combine(self.upscale(low, hw, image))


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


def apply_non_overlap(logits: torch.Tensor, threshold: float = 0.0) -> torch.Tensor:
    """(O, ...) logits -> per pixel only the highest object keeps its logit; the others are clamped to
    <= threshold - 10."""
    best = logits.argmax(dim=0, keepdim=True)
    keep = best == torch.arange(logits.shape[0], device=logits.device).view(-1, *([1] * (logits.ndim - 1)))
    return torch.where(keep, logits, logits.clamp(max=threshold - 10.0))


def _window_sums(x: torch.Tensor, radius: int, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Sums of x over the window [i - r, i + r] along `dim`, clipped at the ends, and the windows' lengths."""
    n = x.shape[dim]
    c = torch.cat([torch.zeros_like(x.narrow(dim, 0, 1)), x.cumsum(dim)], dim)  # c[k] = sum of the first k
    i = torch.arange(n, device=x.device)
    hi, lo = (i + radius + 1).clamp(max=n), (i - radius).clamp(min=0)
    return c.index_select(dim, hi) - c.index_select(dim, lo), (hi - lo).to(x.dtype)


def box_mean(x: torch.Tensor, radius: int) -> torch.Tensor:
    """Mean of x (B, C, H, W) over the (2r+1) x (2r+1) window around each pixel, the window clipped at the
    borders. Running sums, one axis at a time: the cost does not grow with the radius, and the sums stay
    small enough for float32."""
    rows, n_w = _window_sums(x, radius, -1)
    sums, n_h = _window_sums(rows, radius, -2)
    return sums / (n_h[:, None] * n_w)


def guided_filter(guide: torch.Tensor, src: torch.Tensor, radius: int, eps: float) -> torch.Tensor:
    """He, Sun and Tang's guided filter with a grey guide: src (B, 1, H, W) smoothed like a box filter of radius
    `radius`, except across the edges of guide (1, 1, H, W), values in [0, 1]. In each window the output is a
    linear function of the guide fitted to src; eps regularises the fit: windows whose guide varies less than
    that are smoothed, stronger edges are kept."""
    mean_i, mean_p = box_mean(guide, radius), box_mean(src, radius)
    cov = box_mean(guide * src, radius) - mean_i * mean_p  # (B, 1, H, W)
    a = cov / (box_mean(guide * guide, radius) - mean_i * mean_i + eps)
    b = mean_p - a * mean_i
    return box_mean(a, radius) * guide + box_mean(b, radius)


def edge_refine_pixels(radius: float, hw: tuple[int, int], low_res: int) -> int:
    """A refinement radius given in pixels of the low-res mask grid (low_res wide) -> pixels of an (H, W) output
    that the grid is stretched over (0 stays 0: off)."""
    return 0 if radius <= 0 else max(1, round(radius * max(hw) / low_res))


def refine_to_edges(logits: torch.Tensor, frame: np.ndarray | torch.Tensor, radius: int, eps: float) -> torch.Tensor:
    """Mask logits (O, 1, H, W) upsampled to a frame's resolution -> logits whose boundaries follow the frame's
    edges. Upsampled low-resolution logits round off corners and thin parts; the guided filter (guide: the
    frame's mean of R, G, B; input: the mask probabilities) moves each boundary onto the nearby edge of the
    image. Within each object's box (its pixels with a logit above -10, widened by 2 * radius + 1: farther out
    the filter leaves the probability near 0) the logits become (q - 0.5) * 20, so > 0 is still the mask;
    elsewhere, and for objects without a positive logit, they are kept.

    frame: (H, W, 3) uint8, RGB.
    """
    if radius <= 0 or not logits.numel():
        return logits
    img = frame.cpu().numpy() if isinstance(frame, torch.Tensor) else np.asarray(frame)
    if img.ndim != 3 or img.shape[:2] != logits.shape[-2:]:
        raise ValueError(f"frame is {tuple(img.shape)}, but the mask logits are {tuple(logits.shape[-2:])}")
    out = logits
    h, w = logits.shape[-2:]
    pad = 2 * radius + 1
    for i in range(logits.shape[0]):
        if not (logits[i] > 0).any():
            continue
        if out is logits:
            out = logits.clone()
        near = logits[i, 0] > -10  # (H, W): the pixels whose box, widened by pad, is filtered
        rows, cols = torch.nonzero(near.any(1)), torch.nonzero(near.any(0))
        y0, y1 = max(int(rows[0]) - pad, 0), min(int(rows[-1]) + pad + 1, h)
        x0, x1 = max(int(cols[0]) - pad, 0), min(int(cols[-1]) + pad + 1, w)
        # the grey guide of the box only: a new array (frames may be read-only), mean of R, G, B in [0, 1]
        gray = img[y0:y1, x0:x1].sum(axis=-1, dtype=np.float32) / (3 * 255.0)
        guide = torch.from_numpy(gray).to(logits.device)[None, None]  # (1, 1, h', w')
        q = guided_filter(guide, torch.sigmoid(logits[i: i + 1, :, y0:y1, x0:x1].float()), radius, eps)
        out[i, :, y0:y1, x0:x1] = ((q[0] - 0.5) * 20.0).to(logits.dtype)
    return out
