"""Drop-in names and signatures of Meta's `sam2` package, so an existing script ports by changing its import.

    from samstream.compat import build_sam2, SAM2ImagePredictor
    predictor = SAM2ImagePredictor(build_sam2("configs/sam2.1/sam2.1_hiera_l.yaml", "sam2.1_hiera_large.pt"))

    from samstream.compat import build_sam2_video_predictor
    predictor = build_sam2_video_predictor("configs/sam2.1/sam2.1_hiera_l.yaml", "sam2.1_hiera_large.pt")
"""
from __future__ import annotations

import dataclasses

import numpy as np
import torch

from .amg.compat import SAM2AutomaticMaskGenerator  # noqa: F401  (re-exported)
from .checkpoint import detect_config, load_into, read_state_dict
from .model import SAM2Model, official_config
from .predictor import ImagePredictor
from .video.compat import SAM2VideoPredictor, build_sam2_video_predictor  # noqa: F401  (re-exported)


def _build_model(config_file: str, ckpt_path: str | None, device, mode: str, apply_postprocessing: bool) -> SAM2Model:
    cfg = official_config(config_file).with_postprocessing(apply_postprocessing)
    model = SAM2Model(cfg)
    if ckpt_path is not None:
        sd, _ = read_state_dict(ckpt_path)
        found = detect_config(sd, str(ckpt_path))
        if dataclasses.replace(found.with_postprocessing(apply_postprocessing), name=cfg.name) != cfg:
            raise ValueError(f"{ckpt_path} holds a {found.name} model, but the config asks for {cfg.name}")
        load_into(model, sd, str(ckpt_path))
    model = model.to(device)
    return model.eval() if mode == "eval" else model.train()


def build_sam2(config_file: str, ckpt_path: str | None = None, device: str | torch.device = "cuda",
               mode: str = "eval", hydra_overrides_extra: list[str] | None = None,
               apply_postprocessing: bool = True, **kwargs) -> SAM2Model:
    """Official `build_sam2`: config names as "configs/sam2.1/sam2.1_hiera_t.yaml" (or "sam2.1_hiera_t")."""
    if hydra_overrides_extra:
        raise ValueError("hydra overrides are not supported: build a samstream SAM2Config instead")
    return _build_model(config_file, ckpt_path, device, mode, apply_postprocessing)


class SAM2ImagePredictor(ImagePredictor):
    """Official `SAM2ImagePredictor` argument names on top of ImagePredictor: its three output arguments are
    those fields of the model's inference defaults (`MaskPostprocess`)."""

    def __init__(self, sam_model: SAM2Model, mask_threshold: float = 0.0, max_hole_area: float = 0.0,
                 max_sprinkle_area: float = 0.0, **kwargs):
        super().__init__(sam_model, sam_model.inference_defaults.override(
            mask_threshold=mask_threshold, max_hole_area=int(max_hole_area), max_sprinkle_area=int(max_sprinkle_area)))

    def _predict(self, *args, **kwargs):
        masks, scores, low = super()._predict(*args, **kwargs)
        return masks.astype(np.float32), scores, low  # Meta's predictor returns 0/1 float masks

    def predict(self, point_coords=None, point_labels=None, box=None, mask_input=None, multimask_output=True,
                return_logits=False, normalize_coords=True):
        return super().predict(point_coords, point_labels, box, mask_input, multimask_output, return_logits,
                               normalize_coords)

    def predict_batch(self, point_coords_batch=None, point_labels_batch=None, box_batch=None,
                      mask_input_batch=None, multimask_output=True, return_logits=False, normalize_coords=True):
        return super().predict_batch(point_coords_batch, point_labels_batch, box_batch, mask_input_batch,
                                     multimask_output, return_logits, normalize_coords)

    def reset_predictor(self) -> None:
        self.reset()

    @property
    def _is_image_set(self) -> bool:
        return self.is_image_set
