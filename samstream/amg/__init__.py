"""Automatic mask generation ("segment everything") for images, official SAM2AutomaticMaskGenerator semantics."""
from .crops import crop_boxes, layer_point_grids, point_grid
from .decoder import DecodedPrompts, PromptDecoder
from .generator import OUTPUT_MODES, GeneratedMasks, MaskGenerator
from .nms import box_iou, nms

__all__ = [
           "OUTPUT_MODES",
           "DecodedPrompts",
           "GeneratedMasks",
           "MaskGenerator",
           "PromptDecoder",
           "box_iou",
           "crop_boxes",
           "layer_point_grids",
           "nms",
           "point_grid",
]
