"""SAM 2 on ONNX Runtime: image prediction and video tracking from a `samstream export` folder, with numpy and
onnxruntime only (importing this package does not import torch). Install with `pip install samstream[onnx]`.

    from samstream.runtime import OnnxModel, ImagePredictor, VideoPredictor
    model = OnnxModel("export/")
    video = VideoPredictor(model, frames)            # (T, H, W, 3) uint8, a list of frames or a folder of images
    video.add_points(0, obj_id=1, points=[[210, 350]])
    for frame in video.propagate(direction="both"): frame.masks
"""
from ..results import FrameResult, ObjectResult
from .image import ImagePredictor
from .manifest import ExportFolderError, read_manifest
from .model import OnnxModel, RuntimeConfig
from .video import VideoPredictor

__all__ = ["ExportFolderError", "FrameResult", "ImagePredictor", "ObjectResult", "OnnxModel", "RuntimeConfig",
           "VideoPredictor", "read_manifest"]
