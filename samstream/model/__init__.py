"""The SAM 2 architecture in our own code: image encoder, prompt encoder, mask decoder, memory."""
from .config import OFFICIAL_CONFIGS, HieraConfig, SAM2Config, official_config
from .sam2 import NO_OBJ_SCORE, HeadOutput, ImageFeatures, SAM2Model

__all__ = ["OFFICIAL_CONFIGS", "HieraConfig", "SAM2Config", "official_config", "SAM2Model", "ImageFeatures",
           "HeadOutput", "NO_OBJ_SCORE"]
