"""Real pixels for the cutout generator: the sam2-assets clips and photos, decoded once per process, and the
object cut-outs found in them.

Cut-outs follow the photos' own edges: colour quantisation (k-means), connected components of each colour,
morphological smoothing, then a soft (antialiased) alpha. Everything here is deterministic (fixed seeds) and
cached per process, so a video depends on (seed, config) alone.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

CLIPS = ("videos/gallery/01_dog.mp4", "videos/gallery/02_cups.mp4", "videos/gallery/03_blocks.mp4",
         "videos/gallery/04_coffee.mp4")
PHOTOS = ("images/cars.jpg", "images/groceries.jpg", "images/truck.jpg")
CLIP_HEIGHT = 240  # clips are cached at this height (16:9, ~427 wide): ~180 MB for all four
CLIP_STEP = 2  # every 2nd frame (15 fps): half the memory; the motion per frame stays that of a real camera
PHOTO_WIDTH = 640  # photos are cached at most this wide
SEGMENT_FRAMES = 8  # frames per clip that are cut into objects


def assets_root(given: str | None = None) -> Path:
    """The sam2-assets folder: `given`, else $SAMSTREAM_ASSETS, else <repo>/../shared/data/sam2-assets."""
    given = given or os.environ.get("SAMSTREAM_ASSETS")
    root = Path(given) if given else Path(__file__).resolve().parents[2].parent / "shared" / "data" / "sam2-assets"
    missing = [s for s in (*CLIPS, *PHOTOS) if not (root / s).is_file()]
    if missing:
        raise FileNotFoundError(f"cutout: the assets folder {root} lacks {missing[0]}"
                                f"{f' (and {len(missing) - 1} more)' if len(missing) > 1 else ''}; set the config "
                                "field `assets` or $SAMSTREAM_ASSETS to the sam2-assets folder")
    return root


@lru_cache(maxsize=len(CLIPS))
def clip_frames(path: str) -> tuple[np.ndarray, ...]:
    """Every CLIP_STEP-th frame of a clip, (CLIP_HEIGHT, W, 3) uint8 each; decoded on first use. Arrays, not
    PIL images: those hold 4 bytes a pixel."""
    import av

    out = []
    with av.open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for i, f in enumerate(container.decode(stream)):
            if i % CLIP_STEP == 0:
                w = round(f.width * CLIP_HEIGHT / f.height)
                out.append(f.reformat(width=w, height=CLIP_HEIGHT, format="rgb24").to_ndarray())  # swscale: fast
    if len(out) < 2:
        raise ValueError(f"cutout: clip {path} has fewer than {2 * CLIP_STEP} frames")
    return tuple(out)


@lru_cache(maxsize=len(PHOTOS))
def photo(path: str) -> Image.Image:
    img = Image.open(path).convert("RGB")
    if img.width > PHOTO_WIDTH:
        img = img.resize((PHOTO_WIDTH, round(img.height * PHOTO_WIDTH / img.width)), Image.BILINEAR)
    return img


@dataclass
class Segment:
    """An object cut out of a source image: the patch around it and its soft mask, centred on the patch."""

    rgba: Image.Image  # RGBA, alpha = the soft mask; colour outside the mask = the real surroundings
    source: str  # SOURCES id it came from (e.g. "images/cars.jpg" or "videos/gallery/01_dog.mp4")
    image: int  # index of the source image in the bank (look-alikes come from the same one)
    r_out: float  # largest distance of a mask pixel from the patch centre (pixels)
    r_in: float  # radius of the largest disk inside the mask
    inner: tuple[float, float]  # that disk's centre, relative to the patch centre (x, y)
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 of the patch in its source image


def _kmeans(px: np.ndarray, k: int, rng: np.random.Generator, iters: int = 8) -> np.ndarray:
    """Cluster centres (k, C) of the points px (N, C), from a subsample."""
    sub = px[rng.choice(len(px), size=min(len(px), 4000), replace=False)]
    centres = sub[rng.choice(len(sub), size=k, replace=False)]
    for _ in range(iters):
        near = ((sub[:, None, :] - centres[None]) ** 2).sum(-1).argmin(1)
        for c in range(k):
            if (near == c).any():
                centres[c] = sub[near == c].mean(0)
    return centres


def segment_image(img: np.ndarray, seed: int, max_segments: int = 40) -> list[tuple[np.ndarray, tuple]]:
    """Object-like regions of an (H, W, 3) uint8 image along its colour edges: [(soft mask (h, w) float32 0..1,
    (x0, y0, x1, y1))], the box being the patch the mask covers."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    h, w = img.shape[:2]
    smooth = ndimage.gaussian_filter(img.astype(np.float32), (1.5, 1.5, 0))
    # colour plus a little position: regions of one colour far apart stay apart, large flat areas split
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    feats = np.concatenate([smooth, (xx * (60.0 / w))[..., None], (yy * (60.0 / w))[..., None]], -1).reshape(-1, 5)
    k = int(rng.integers(6, 11))
    centres = _kmeans(feats, k, rng)
    quant = np.empty(h * w, np.int32)
    for a in range(0, h * w, 65536):  # in chunks: (chunk, k, 5) stays small
        quant[a:a + 65536] = ((feats[a:a + 65536, None, :] - centres[None]) ** 2).sum(-1).argmin(1)
    quant = quant.reshape(h, w)
    area_min, area_max = 0.003 * h * w, 0.15 * h * w
    found = []
    for c in range(k):
        m = ndimage.binary_opening(quant == c, iterations=2)
        comp, n = ndimage.label(m)
        if n == 0:
            continue
        sizes = np.bincount(comp.ravel())
        for i, sl in enumerate(ndimage.find_objects(comp), start=1):
            if sl is None or not area_min <= sizes[i] <= area_max:
                continue
            y0, y1, x0, x1 = sl[0].start, sl[0].stop, sl[1].start, sl[1].stop
            if y0 == 0 or x0 == 0 or y1 == h or x1 == w:
                continue  # cut by the image border: a straight edge no real object has
            pad = 6
            y0, x0, y1, x1 = max(0, y0 - pad), max(0, x0 - pad), min(h, y1 + pad), min(w, x1 + pad)
            sub = comp[y0:y1, x0:x1] == i
            sub = ndimage.binary_fill_holes(ndimage.binary_closing(sub, iterations=3))
            sub = ndimage.gaussian_filter(sub.astype(np.float32), 2.0) > 0.5  # round off pixel staircases
            area = sub.sum()
            if area < area_min or area / sub.size < 0.3:
                continue  # thin or ragged: more likely a shadow line than an object
            found.append((float(area), ndimage.gaussian_filter(sub.astype(np.float32), 0.7), (x0, y0, x1, y1)))
    found.sort(key=lambda f: -f[0])
    return [(m, box) for _, m, box in found[:max_segments]]


def _segment(rgb: np.ndarray, mask: np.ndarray, box: tuple, source: str, image: int) -> Segment:
    from scipy import ndimage

    x0, y0, x1, y1 = box
    hard = mask >= 0.5
    ph, pw = mask.shape
    yy, xx = np.nonzero(hard)
    cx, cy = pw / 2, ph / 2
    r_out = float(np.sqrt(((xx + 0.5 - cx) ** 2 + (yy + 0.5 - cy) ** 2).max())) + 1.0
    dist = ndimage.distance_transform_edt(hard)
    iy, ix = np.unravel_index(int(dist.argmax()), dist.shape)
    rgba = np.dstack([rgb[y0:y1, x0:x1], (mask * 255).round().astype(np.uint8)])
    return Segment(Image.fromarray(rgba, "RGBA"), source, image, r_out, float(dist.max()) - 1.0,
                   (ix + 0.5 - cx, iy + 0.5 - cy), box)


def _textured(img: np.ndarray, mask: np.ndarray, box: tuple) -> bool:
    """Whether a region has the texture or colour of an object; flat pale regions (walls, paper, sky)
    make poor objects to track and would dominate the bank."""
    x0, y0, x1, y1 = box
    px = img[y0:y1, x0:x1][mask >= 0.5].astype(np.float32)  # (N, 3)
    grey = px.mean(1)
    saturation = (px.max(1) - px.min(1)).mean()
    return bool(grey.std() >= 14 or saturation >= 60)


@dataclass
class Bank:
    segments: list[Segment]
    images: list[tuple[str, np.ndarray]]  # (source id, (H, W, 3) uint8): the images cut from, for textures


@lru_cache(maxsize=2)
def segment_bank(root: str) -> Bank:
    """Cut-outs of the photos and of SEGMENT_FRAMES frames of every clip; built once per process."""
    images: list[tuple[str, np.ndarray]] = [(p, np.asarray(photo(str(Path(root) / p)))) for p in PHOTOS]
    for c in CLIPS:
        frames = clip_frames(str(Path(root) / c))
        for j in range(SEGMENT_FRAMES):
            images.append((c, frames[(j * len(frames)) // SEGMENT_FRAMES]))
    segments = []
    for k, (src, img) in enumerate(images):
        for mask, box in segment_image(img, seed=k):
            if _textured(img, mask, box):
                segments.append(_segment(img, mask, box, src, k))
    if not segments:
        raise ValueError(f"cutout: found no object regions in the sources under {root}")
    return Bank(segments, images)


def clear_cache() -> None:
    """Forget every decoded source (frees the memory; the next video decodes again)."""
    for f in (clip_frames, photo, segment_bank):
        f.cache_clear()


def cover_scale(src_w: int, src_h: int, w: int, h: int) -> float:
    """The zoom at which a src_w x src_h image just covers a w x h frame."""
    return max(w / src_w, h / src_h) * (1 + 1e-6) if src_w and src_h else math.inf
