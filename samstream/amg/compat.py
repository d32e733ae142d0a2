"""Meta's `SAM2AutomaticMaskGenerator` name and signature on top of MaskGenerator (exported by samstream.compat)."""
from __future__ import annotations

import numpy as np

from ..model import SAM2Model
from .generator import MaskGenerator


class SAM2AutomaticMaskGenerator(MaskGenerator):
    """Drop-in for `sam2.automatic_mask_generator.SAM2AutomaticMaskGenerator`: same arguments, defaults and
    records. Extra keyword arguments are accepted and ignored, as the official constructor does."""

    def __init__(self, model: SAM2Model, points_per_side: int | None = 32, points_per_batch: int = 64,
                 pred_iou_thresh: float = 0.8, stability_score_thresh: float = 0.95,
                 stability_score_offset: float = 1.0, mask_threshold: float = 0.0, box_nms_thresh: float = 0.7,
                 crop_n_layers: int = 0, crop_nms_thresh: float = 0.7, crop_overlap_ratio: float = 512 / 1500,
                 crop_n_points_downscale_factor: int = 1, point_grids: list[np.ndarray] | None = None,
                 min_mask_region_area: int = 0, output_mode: str = "binary_mask", use_m2m: bool = False,
                 multimask_output: bool = True, **kwargs) -> None:
        super().__init__(model, points_per_side, points_per_batch, pred_iou_thresh, stability_score_thresh,
                         stability_score_offset, mask_threshold, box_nms_thresh, crop_n_layers, crop_nms_thresh,
                         crop_overlap_ratio, crop_n_points_downscale_factor, point_grids, min_mask_region_area,
                         output_mode, use_m2m, multimask_output)
        from ..predictor import ImagePredictor

        # what the official generator prompts with (scripts reach the model through it)
        area = int(min_mask_region_area)
        self.predictor = ImagePredictor(model, model.inference_defaults.override(max_hole_area=area,
                                                                                 max_sprinkle_area=area))

    @classmethod
    def from_pretrained(cls, model_id: str, **kwargs) -> SAM2AutomaticMaskGenerator:
        """Official model ids ("facebook/sam2.1-hiera-large") or names; downloads into samstream's cache."""
        from ..load import load_model

        model = load_model(model_id, device=kwargs.get("device", "cpu"),
                           postprocessing=kwargs.get("apply_postprocessing", True))
        return cls(model, **kwargs)

    def generate(self, image: np.ndarray) -> list[dict]:
        return super().generate(image)
