"""Clip-consistent augmentations (one random draw per clip): hflip, affine, colour jitter, grayscale, resize.

Images are float32 (T, H, W, 3) in [0, 255]; masks bool (T, O, H, W). Geometric transforms use bilinear
for images and nearest for masks, so masks stay binary.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

FILL = (123, 116, 103)  # ImageNet mean in 0..255, the official affine fill colour


@dataclass
class AugmentConfig:
    hflip: float = 0.5
    affine: float = 1.0  # probability of applying RandomAffine
    degrees: float = 25.0
    shear: float = 20.0
    scale: tuple[float, float] = (0.9, 1.1)
    brightness: float = 0.1
    contrast: float = 0.03
    saturation: float = 0.03
    grayscale: float = 0.05
    frame_brightness: float = 0.1  # per-frame jitter on top of the clip-wide one
    frame_contrast: float = 0.05
    frame_saturation: float = 0.05


def _affine_coeffs(angle: float, shear: float, scale: float, w: int, h: int) -> tuple:
    """PIL's inverse affine (output -> input) for a rotation/shear/scale about the image centre."""
    a, s = math.radians(angle), math.radians(shear)
    # forward matrix M = R(a) @ Shear_x(s) * scale
    m = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]]) @ np.array([[1, math.tan(s)], [0, 1]])
    m = m * scale
    inv = np.linalg.inv(m)
    cx, cy = w / 2, h / 2
    off = np.array([cx, cy]) - inv @ np.array([cx, cy])
    return (inv[0, 0], inv[0, 1], off[0], inv[1, 0], inv[1, 1], off[1])


def _warp(arr: np.ndarray, coeffs: tuple, resample, fill) -> np.ndarray:
    img = Image.fromarray(arr)
    return np.asarray(img.transform(img.size, Image.AFFINE, coeffs, resample=resample, fillcolor=fill))


def _jitter(img: np.ndarray, rng: np.random.Generator, b: float, c: float, s: float) -> np.ndarray:
    """Brightness, contrast, saturation factors drawn from [1-x, 1+x]; img (..., H, W, 3) float."""
    img = img * rng.uniform(1 - b, 1 + b)
    gray = img @ np.array([0.299, 0.587, 0.114], np.float32)
    img = (img - gray.mean()) * rng.uniform(1 - c, 1 + c) + gray.mean()
    gray = (img @ np.array([0.299, 0.587, 0.114], np.float32))[..., None]
    img = (img - gray) * rng.uniform(1 - s, 1 + s) + gray
    return img.clip(0, 255)


def augment_clip(frames: np.ndarray, masks: np.ndarray, rng: np.random.Generator,
                 cfg: AugmentConfig | None = None) -> tuple[np.ndarray, np.ndarray]:
    """frames (T, H, W, 3) uint8, masks (T, O, H, W) bool -> same shapes; frames become float32."""
    cfg = cfg or AugmentConfig()
    frames = frames.copy()
    masks = masks.copy()
    if rng.random() < cfg.hflip:
        frames, masks = frames[:, :, ::-1].copy(), masks[..., ::-1].copy()
    if rng.random() < cfg.affine:
        h, w = frames.shape[1:3]
        coeffs = _affine_coeffs(rng.uniform(-cfg.degrees, cfg.degrees), rng.uniform(-cfg.shear, cfg.shear),
                                rng.uniform(*cfg.scale), w, h)
        new_masks = np.stack([np.stack([_warp(m.astype(np.uint8) * 255, coeffs, Image.NEAREST, 0) > 127
                                        for m in fm]) for fm in masks]) if masks.size else masks
        # as in the official transform: skip the affine if it wipes out an object of the first frame
        if not masks.size or new_masks[0].reshape(len(new_masks[0]), -1).any(1).all() \
                or not masks[0].reshape(masks.shape[1], -1).any(1).all():
            frames = np.stack([_warp(f, coeffs, Image.BILINEAR, FILL) for f in frames])
            masks = new_masks
    out = frames.astype(np.float32)
    out = _jitter(out, rng, cfg.brightness, cfg.contrast, cfg.saturation)
    if rng.random() < cfg.grayscale:
        out = np.repeat((out @ np.array([0.299, 0.587, 0.114], np.float32))[..., None], 3, axis=-1)
    out = np.stack([_jitter(f, rng, cfg.frame_brightness, cfg.frame_contrast, cfg.frame_saturation) for f in out])
    return out.astype(np.float32), masks


def resize_clip(frames: np.ndarray, masks: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Square resize (aspect not kept, as RandomResizeAPI(square=True)): (T, H, W, 3), (T, O, H, W) -> size."""
    if frames.shape[1:3] == (size, size):
        return frames.astype(np.float32), masks
    planes = [Image.fromarray(f.astype(np.float32)[..., c], mode="F") for f in frames for c in range(3)]
    fr = np.stack([np.asarray(p.resize((size, size), Image.BILINEAR)) for p in planes])
    fr = fr.reshape(len(frames), 3, size, size).transpose(0, 2, 3, 1)
    ms = np.zeros((masks.shape[0], masks.shape[1], size, size), bool)
    for t in range(masks.shape[0]):
        for o in range(masks.shape[1]):
            ms[t, o] = np.asarray(Image.fromarray(masks[t, o].astype(np.uint8)).resize((size, size), Image.NEAREST)) > 0
    return fr.astype(np.float32), ms
