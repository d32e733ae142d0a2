"""Turning user images into model input, and model output back into image-sized masks."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .io.images import open_image

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def to_rgb_array(image, name: str = "image") -> np.ndarray:
    """numpy HxWx3 uint8 RGB, a PIL image, or a path -> HxWx3 uint8 RGB array (a clear error otherwise).

    Files open within samstream's pixel limit (`samstream.io.max_image_pixels`); 16-bit images keep their
    content (see `pil_to_rgb`); an animated image (several frames) is refused: read it as a video.
    """
    if isinstance(image, (str, os.PathLike)):
        path = Path(image)
        if not path.is_file():
            raise FileNotFoundError(f"{name} not found: {path}")
        with open_image(path) as im:
            return pil_to_rgb(im, str(path))
    if isinstance(image, Image.Image):
        return pil_to_rgb(image, name)
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


# Formats whose extra frames are not a sequence: a multi-picture JPEG (MPO) holds the photo first, then
# previews or a second view.
STILL_FORMATS = {"MPO"}


def pil_to_rgb(im: Image.Image, name: str = "image") -> np.ndarray:
    """A PIL image -> HxWx3 uint8 RGB.

    16-bit data ('I;16*', and 'I' holding 0..65535) keeps its range: value >> 8 (65535 -> 255), where PIL's
    own conversion clips at 255 and makes the image white. Float images ('F') must hold 0..1 (scaled by 255).
    Alpha is dropped. Raises ValueError for an animated image and for values these rules cannot map.
    """
    frames = getattr(im, "n_frames", 1)
    if frames > 1 and im.format not in STILL_FORMATS:
        raise ValueError(f"{name} is a {im.format or 'multi-frame'} image of {frames} frames (an animation or a "
                         "stack), not one still image: read it as a video to use every frame")
    if im.mode.startswith("I;16") or im.mode == "I":
        gray = np.asarray(im)
        if gray.size and (gray.min() < 0 or gray.max() > 65535):
            raise ValueError(f"{name}: 32-bit integer image with values {int(gray.min())}..{int(gray.max())}; "
                             "expected 8- or 16-bit data (0..65535)")
        return np.repeat((gray.astype(np.uint16) >> 8).astype(np.uint8)[..., None], 3, axis=2)
    if im.mode == "F":
        gray = np.asarray(im)
        if gray.size and not (np.isfinite(gray).all() and gray.min() >= 0 and gray.max() <= 1):
            raise ValueError(f"{name}: float image with values {float(np.nanmin(gray))}..{float(np.nanmax(gray))}"
                             f"{' and NaN/inf' if not np.isfinite(gray).all() else ''}; expected 0..1 "
                             "(or save it as an 8- or 16-bit image)")
        return np.repeat(np.round(gray * 255).astype(np.uint8)[..., None], 3, axis=2)
    try:
        return np.asarray(im.convert("RGB"))
    except (ValueError, OSError) as e:
        raise ValueError(f"{name}: image mode {im.mode!r} cannot be converted to RGB ({e})") from e


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
