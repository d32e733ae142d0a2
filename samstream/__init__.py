"""samstream: SAM 2 / 2.1 promptable segmentation of images and videos.

Top-level names are imported on first use, so `import samstream.io` or `samstream.eval` stays light.
"""
from importlib import import_module

__version__ = "0.1.0"

_EXPORTS = {
    "load_model": "load", "save_model": "checkpoint", "download_checkpoint": "download",
    "CheckpointError": "checkpoint",
    "SAM2Model": "model", "SAM2Config": "model", "HieraConfig": "model", "OFFICIAL_CONFIGS": "model",
    "official_config": "model",
    "ImagePredictor": "predictor", "MaskPostprocess": "postprocess",
    "VideoPredictor": "video", "FrameResult": "video",
    "MaskGenerator": "amg", "track_all": "amg.video", "TrackAll": "amg.video",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'samstream' has no attribute {name!r}")
