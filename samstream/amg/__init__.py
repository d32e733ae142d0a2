"""Automatic mask generation ("segment everything") for images, official SAM2AutomaticMaskGenerator semantics."""
from .crops import crop_boxes, layer_point_grids, point_grid
from .decoder import DecodedPrompts, PromptDecoder
from .generator import OUTPUT_MODES, GeneratedMasks, MaskGenerator
from .nms import box_iou, nms

__all__ = ["MaskGenerator", "GeneratedMasks", "OUTPUT_MODES", "PromptDecoder", "DecodedPrompts", "crop_boxes",
           "layer_point_grids", "point_grid", "nms", "box_iou"]
