"""samstream: SAM 2 / 2.1 promptable segmentation of images and videos."""
from .checkpoint import CheckpointError, download_checkpoint, load_model, save_model
from .model import OFFICIAL_CONFIGS, SAM2Config, SAM2Model, official_config
from .predictor import ImagePredictor

__version__ = "0.1.0"
__all__ = ["load_model", "save_model", "download_checkpoint", "CheckpointError", "ImagePredictor", "SAM2Model",
           "SAM2Config", "OFFICIAL_CONFIGS", "official_config"]
