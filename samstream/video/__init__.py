"""Video object tracking with SAM 2's memory: lazy frame sources, bounded state, batched objects."""
from .compat import SAM2VideoPredictor, build_sam2_video_predictor
from .predictor import FrameResult, ObjectResult, VideoPredictor
from .sources import FrameReadError, FrameUnavailableError, open_source

__all__ = ["VideoPredictor", "FrameResult", "ObjectResult", "SAM2VideoPredictor", "build_sam2_video_predictor",
           "FrameReadError", "FrameUnavailableError", "open_source"]
