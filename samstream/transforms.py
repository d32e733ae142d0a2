"""Turning user images into model input, and model output back into image-sized masks."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def to_rgb_array(image, name: str = "image") -> np.ndarray:
    """numpy HxWx3 uint8 RGB, a PIL image, or a path -> HxWx3 uint8 RGB array (a clear error otherwise)."""
    if isinstance(image, (str, os.PathLike)):
        path = Path(image)
        if not path.is_file():
            raise FileNotFoundError(f"{name} not found: {path}")
        try:
            with Image.open(path) as im:
                return np.asarray(im.convert("RGB"))
        except OSError as e:
            raise ValueError(f"{path}: cannot be decoded as an image ({e})") from e
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB"))
    if isinstance(image, torch.Tensor):
        raise TypeError(f"{name} must be a numpy array (H, W, 3) uint8, a PIL image or a path, not a torch tensor")
    if not isinstance(image, np.ndarray):
        raise TypeError(f"{name} must be a numpy array (H, W, 3) uint8, a PIL image or a path, got {type(image)}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"{name} must have shape (H, W, 3) (RGB, channels last), got {image.shape}")
    if image.dtype != np.uint8:
        raise ValueError(f"{name} must be uint8 in 0..255, got dtype {image.dtype}")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"{name} is empty: shape {image.shape}")
    return image


def normalize(x: torch.Tensor) -> torch.Tensor:
    """(..., 3, H, W) in [0, 1] -> ImageNet-normalised."""
    mean = torch.tensor(IMAGENET_MEAN, device=x.device, dtype=x.dtype).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=x.device, dtype=x.dtype).view(3, 1, 1)
    return (x - mean) / std


def preprocess_image(image: np.ndarray, size: int, device: torch.device | str = "cpu",
                     dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """HxWx3 uint8 -> (1, 3, size, size) normalised; bilinear antialiased resize without keeping the aspect
    ratio (what SAM 2's image predictor does)."""
    x = torch.from_numpy(np.array(image, copy=True)).to(device).permute(2, 0, 1).float().div(255.0)
    x = F.interpolate(x[None], size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return normalize(x).to(dtype)


def preprocess_frame(image: np.ndarray, size: int) -> torch.Tensor:
    """HxWx3 uint8 -> (3, size, size) normalised, resized with PIL bicubic (what SAM 2's video loader does)."""
    resized = np.asarray(Image.fromarray(image).resize((size, size), Image.BICUBIC))
    x = torch.from_numpy(resized.copy()).permute(2, 0, 1).float() / 255.0
    return normalize(x)


def resize_logits(logits: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    """(B, M, h, w) logits -> (B, M, H, W), bilinear."""
    return F.interpolate(logits.float(), size=hw, mode="bilinear", align_corners=False)


def mirror_points(pts: tuple[torch.Tensor, torch.Tensor], size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Prompts (coords (B, N, 2) in model-input pixels, labels (B, N)) -> the same prompts on the input flipped
    left-right: x -> size - x (pixel i's centre i + 0.5 goes to size - 1 - i's). A box keeps its corner labels
    (2 = top-left, 3 = bottom-right), so its two corners exchange their x."""
    coords, labels = pts
    c = coords.clone()
    x = c[..., 0]  # a view: writes go to c
    x.copy_(size - x)
    tl, br = labels == 2, labels == 3
    x_tl, x_br = x[tl].clone(), x[br].clone()
    x[tl], x[br] = x_br, x_tl
    return c, labels
