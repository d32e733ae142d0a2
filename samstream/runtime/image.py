"""ImagePredictor on ONNX Runtime: set_image once, predict from clicks, boxes and masks (samstream's API)."""
from __future__ import annotations

import os

import numpy as np

from .heads import pad_points, select_masks
from .model import OnnxModel
from .ops import preprocess_image, resize
from .prompts import _numbers, prepare_points, to_rgb


def open_model(model) -> OnnxModel:
    return model if isinstance(model, OnnxModel) else OnnxModel(model)


class ImagePredictor:
    """samstream.ImagePredictor on an export folder: same prompts, same outputs (masks upsampled bilinearly to
    the image; the output clean-up options of MaskPostprocess are not applied here).

    model: an OnnxModel or the path of an export folder.
    """

    def __init__(self, model: OnnxModel | str | os.PathLike):
        self.model = open_model(model)
        self._feats = None
        self._hw = None

    def set_image(self, image) -> None:
        a = to_rgb(image)
        self._feats = self.model.encode_image(preprocess_image(a, self.model.cfg.image_size))
        self._hw = a.shape[:2]

    def predict(self, points=None, labels=None, box=None, mask_input=None, multimask_output: bool = True,
                return_logits: bool = False, normalize_coords: bool = True):
        """-> (masks (M, H, W) bool, scores (M,), low-res logits (M, L, L) clamped to [-32, 32]); a batch of B prompts
        gives a leading B axis, as samstream.ImagePredictor.predict."""
        if self._feats is None:
            raise RuntimeError("no image set: call set_image(...) first")
        cfg = self.model.cfg
        pts = prepare_points(self._hw, cfg.image_size, points, labels, box, normalize_coords)
        mask = None
        if mask_input is not None:
            lo = cfg.low_res
            mask = _numbers(mask_input, "mask_input", f"(1, {lo}, {lo})").astype(np.float32)
            if mask.ndim == 3:
                mask = mask[None]
            if mask.ndim != 4 or mask.shape[1] != 1 or mask.shape[-2:] != (lo, lo):
                raise ValueError(f"mask_input must be low-res logits of shape (1, {lo}, {lo}) or (B, 1, {lo}, {lo}), "
                                 f"got {tuple(mask.shape)}")
        if pts is None and mask is None:
            raise ValueError("give points, a box or a mask_input")
        if pts is None:  # a mask alone: no point tokens at all (the decoder's sparse input is empty)
            b = mask.shape[0]
            coords, labs = np.zeros((b, 0, 2), np.float32), np.zeros((b, 0), np.int32)
        else:
            coords, labs = pad_points(*pts)
            b = coords.shape[0]
            if mask is not None and mask.shape[0] != b:
                if mask.shape[0] != 1:
                    raise ValueError(f"{mask.shape[0]} mask inputs for {b} prompts")
                mask = np.repeat(mask, b, axis=0)
        f = self._feats
        outs = self.model.decode(f["embed_no_mem"], f["high_res_0"], f["high_res_1"], coords, labs, mask)
        low, scores = select_masks(outs[0], outs[1], multimask_output, cfg)
        logits = resize(low, self._hw)
        masks = logits if return_logits else logits > 0
        out = (masks, scores.astype(np.float32), np.clip(low, -32.0, 32.0))
        return out if b > 1 else tuple(a[0] for a in out)
