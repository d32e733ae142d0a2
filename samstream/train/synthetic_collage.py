"""Validation videos: photo-filled sprites over real footage or a hand-held camera on a still photo.

An independent second generator (the training one is samstream.train.synthetic_cutout) for choosing
between model releases: other shape sources, other motion, other photos. Each video composites 1-3
annotated objects plus unannotated look-alikes, posts and thin bars / branches over a background:

* shapes (samstream.train.collage_shapes): smooth random closed curves and letter-like strokes filled with
  a photo patch, the horse silhouette, and coins cut out of their photo by a threshold;
* motion: spline paths through keys at uneven times (acceleration, braking), ballistic bounces off the
  frame's walls, approach / recede (scale x2-3), accelerating rotation;
* events: about half the videos script a full occlusion of object 1 (a post or a large object sweeps over
  it) or its leaving the frame and coming back; objects also cross each other;
* background: consecutive frames of the bedroom clip or the juggling clip (real camera motion), or a still
  photo seen by a virtual camera (zoom, roll, drift and hand shake, which the objects share);
* soft shadows under some objects; camera effects: flicker, colour cast, blur, sensor noise, JPEG artefacts.

Labels are exact: a sprite's colour and its alpha are warped by the same affine map, the object is where the
warped alpha is >= 0.5, layers are painted back to front and the label map is written with them; the
camera effects touch the frames only. Events follow samstream.train.synthetic.detect_events: an annotated
object invisible for >= 1 frame between its first and last visible frame counts as "occlusion" while its
unoccluded shape is inside the frame, "leave_return" while it is outside.

Sources (SOURCES), all allowing redistribution of derived data:
* sam2-assets (Apache-2.0, Meta's SAM 2 demo assets; folder from cfg.assets, $SAMSTREAM_ASSETS or
  <repo>/../shared/data/sam2-assets): videos/bedroom/ (JPEG frames), videos/gallery/05_default_juggle.mp4;
* scikit-image's bundled data (skimage/data; licences from skimage.data's docstrings): astronaut.png (NASA,
  public domain), coffee.png (CC0, Rachel Michetti), chelsea.png (CC0, Stefan van der Walt), rocket.jpg
  (SpaceX, public domain), hubble_deep_field.jpg (NASA, public domain), camera.png (CC0, Lav Varshney),
  horse.png (CC0, Andreas Preuss, openclipart), coins.png (Brooklyn Museum, no known copyright
  restrictions), brick.png, grass.png, gravel.png (CC0 textures);
* matplotlib's sample data: grace_hopper.jpg (a US Navy photograph, public domain as a work of the US
  government; matplotlib's sample_data README names no licence).
Not used: scikit-image's motorcycle stereo pair (Middlebury, no licence stated) and the other files.
The package photos are read as files from the installed packages (nothing is downloaded or imported). A
missing package's photos are skipped (the clips alone suffice), but that changes the videos: write a
validation set that must match an earlier one with scikit-image and matplotlib installed (the test extra).
"""
from __future__ import annotations

import importlib.util
import io
import math
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from . import collage_shapes as cs
from .synthetic import SyntheticVideo

BEDROOM, JUGGLE = "videos/bedroom", "videos/gallery/05_default_juggle.mp4"
_SK = ("astronaut.png", "coffee.png", "chelsea.png", "rocket.jpg", "hubble_deep_field.jpg", "camera.png",
       "horse.png", "coins.png", "brick.png", "grass.png", "gravel.png")
SOURCES = (BEDROOM, JUGGLE, *(f"pkg:skimage/{f}" for f in _SK), "pkg:matplotlib/grace_hopper.jpg")
HORSE, COINS = "pkg:skimage/horse.png", "pkg:skimage/coins.png"
STILLS = tuple(s for s in SOURCES[2:] if s not in (HORSE, COINS))  # backgrounds and sprite fills
TEXTURES = tuple(f"pkg:skimage/{f}" for f in ("brick.png", "grass.png", "gravel.png"))
_PKG_DATA = {"skimage": "data", "matplotlib": "mpl-data/sample_data"}


@dataclass
class CollageConfig:
    height: int = 240
    width: int = 320
    num_frames: int = 24
    assets: str | None = None  # sam2-assets folder; default $SAMSTREAM_ASSETS, else <repo>/../shared/data/sam2-assets
    min_objects: int = 1
    max_objects: int = 3
    max_distractors: int = 2
    p_event: float = 0.5  # chance of a scripted full occlusion or leave-and-return of object 1 (>= 12 frames)
    p_thin: float = 0.35  # chance of bars / branches in front
    degrade: bool = True  # flicker, blur, noise, JPEG artefacts on the frames (labels never change)

    def check(self) -> None:
        if self.height < 32 or self.width < 32 or self.num_frames < 2:
            raise ValueError(f"collage: need height, width >= 32 and num_frames >= 2, got {self.height}x"
                             f"{self.width}x{self.num_frames}")
        if not 1 <= self.min_objects <= self.max_objects <= 10 or self.max_distractors < 0:
            raise ValueError(f"collage: need 1 <= min_objects <= max_objects <= 10 and max_distractors >= 0, got "
                             f"{self.min_objects}, {self.max_objects}, {self.max_distractors}")
        if not (0 <= self.p_event <= 1 and 0 <= self.p_thin <= 1):
            raise ValueError("collage: p_event and p_thin must lie in [0, 1]")


CONFIG_CLASS = CollageConfig


# ----------------------------------------------------------------------------------------- sources
def assets_root(cfg: CollageConfig) -> Path:
    """The sam2-assets folder, holding both clips; FileNotFoundError (one line) naming where it looked."""
    given = cfg.assets or os.environ.get("SAMSTREAM_ASSETS")
    root = Path(given) if given else Path(__file__).resolve().parents[2].parent / "shared" / "data" / "sam2-assets"
    missing = [s for s in (BEDROOM, JUGGLE) if not (root / s).exists()]
    if missing:
        raise FileNotFoundError(f"collage: no {' or '.join(missing)} under the assets folder {root}; set the config "
                                "field `assets` or $SAMSTREAM_ASSETS to the sam2-assets folder")
    return root


def source_path(src: str, root: Path) -> Path | None:
    """Where a SOURCES id lies; None for a package photo whose package is not installed."""
    if not src.startswith("pkg:"):
        return root / src
    pkg, name = src[4:].split("/", 1)
    spec = importlib.util.find_spec(pkg)  # locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / _PKG_DATA[pkg] / name
    return path if path.is_file() else None


@lru_cache(maxsize=32)
def _photo(path: str) -> np.ndarray:
    """(H, W, 3) uint8 of an image file (grey and RGBA made RGB)."""
    return np.asarray(Image.open(path).convert("RGB"))


@lru_cache(maxsize=600)
def _bedroom_frame(path: str, h: int, w: int) -> np.ndarray:
    """(h', w', 3) uint8: one JPEG frame scaled to cover (h, w)."""
    img = Image.open(path)
    img.draft("RGB", (w, h))  # JPEG decodes at a reduced scale directly
    return _cover(img.convert("RGB"), h, w)


@lru_cache(maxsize=2)
def _juggle_frames(path: str, h: int, w: int) -> tuple[np.ndarray, ...]:
    """Every frame of the clip, each (h', w', 3) uint8 scaled to cover (h, w); decoded once per process."""
    import av

    with av.open(path) as container:
        container.streams.video[0].thread_type = "AUTO"  # frame-parallel decoding: the same frames, sooner
        return tuple(_cover(f.to_image(), h, w) for f in container.decode(video=0))


def _cover(img: Image.Image, h: int, w: int) -> np.ndarray:
    s = max(h / img.height, w / img.width)
    return np.asarray(img.resize((max(w, math.ceil(img.width * s)), max(h, math.ceil(img.height * s))),
                                 Image.BILINEAR))


def clear_cache() -> None:
    """Forget the decoded sources (the next video reads them from disk again)."""
    for f in (_photo, _bedroom_frame, _juggle_frames, _coins):
        f.cache_clear()


def _clip(rng: np.random.Generator, src: str, root: Path, cfg: CollageConfig) -> cs.ClipBackground:
    h, w, T = cfg.height, cfg.width, cfg.num_frames
    ch, cw = math.ceil(h * 1.15), math.ceil(w * 1.15)  # room for a random crop
    if src == BEDROOM:
        files = sorted((root / BEDROOM).glob("*.jpg"))
        if not files:
            raise FileNotFoundError(f"collage: no .jpg frames in {root / BEDROOM}")
        loaders = [lambda f=f: _bedroom_frame(str(f), ch, cw) for f in files]
    else:
        n = len(_juggle_frames(str(root / JUGGLE), ch, cw))
        loaders = [lambda i=i: _juggle_frames(str(root / JUGGLE), ch, cw)[i] for i in range(n)]
    stride = int(rng.integers(1, max(1, min(3, (len(loaders) - 1) // max(1, T - 1))) + 1))
    idx = [(int(rng.integers(max(1, len(loaders) - stride * (T - 1)))) + stride * t) for t in range(T)]
    idx = [cs.pingpong(i, len(loaders)) for i in idx]
    if rng.random() < 0.5:
        idx = idx[::-1]
    first = loaders[idx[0]]()
    return cs.ClipBackground([loaders[i] for i in idx], int(rng.integers(first.shape[1] - w + 1)),
                          int(rng.integers(first.shape[0] - h + 1)), bool(rng.random() < 0.5))


# ----------------------------------------------------------------------------------------- scene
@dataclass
class Layer:
    sprite: cs.Sprite
    motion: cs.Waypoints | cs.Bounce | cs.Sweep
    depth: float  # larger = nearer the camera
    label: int  # 0 = not annotated
    shadow: bool = False


@dataclass
class Scene:
    background: cs.ClipBackground | cs.StillBackground
    layers: list[Layer]  # back to front
    effects: dict = field(default_factory=dict)


def render_layer(layer: Layer, t: float, h: int, w: int, shift=(0.0, 0.0)) -> tuple[np.ndarray, np.ndarray]:
    """Amodal mask (H, W) bool and colour (H, W, 3) uint8 of a layer at time t, moved by shift (the camera's)."""
    cx, cy, scale, ang = layer.motion.pose(t)
    cx, cy = cx - shift[0], cy - shift[1]
    sw, sh = layer.sprite.alpha.size
    c, s = math.cos(ang) / scale, math.sin(ang) / scale
    # screen (x, y) -> sprite (u, v) = R(-ang) (x - cx, y - cy) / scale + sprite centre
    data = (c, s, sw / 2 - c * cx - s * cy, -s, c, sh / 2 + s * cx - c * cy)
    alpha = np.asarray(layer.sprite.alpha.transform((w, h), Image.AFFINE, data, resample=Image.BILINEAR))
    colour = np.asarray(layer.sprite.colour.transform((w, h), Image.AFFINE, data, resample=Image.BILINEAR))
    return alpha >= 0.5, colour


def _sources(cfg: CollageConfig) -> tuple[Path, list[str]]:
    """The assets folder and the package photos installed (STILLS order)."""
    root = assets_root(cfg)
    return root, [s for s in STILLS if source_path(s, root) is not None]


def _photo_of(src: str, root: Path) -> np.ndarray:
    return _photo(str(source_path(src, root)))


def _object(rng: np.random.Generator, kind: str, fill_seed: int, photo: np.ndarray, radius: int, root: Path):
    fill = np.random.default_rng(fill_seed)  # appearance only: a look-alike reuses it with another shape
    if kind == "horse":
        return cs.horse(rng, fill, _photo_of(HORSE, root)[..., 0] < 128, photo, radius)
    if kind == "coin":
        gray = _photo_of(COINS, root)[..., 0]
        return cs.coin(rng, fill, gray, _coins(str(source_path(COINS, root))), radius)
    return (cs.stroke if kind == "stroke" else cs.fourier_blob)(rng, fill, photo, radius)


@lru_cache(maxsize=1)
def _coins(path: str) -> list:
    return cs.coin_masks(_photo(path)[..., 0])


def _motion(rng: np.random.Generator, start, r: float, cfg: CollageConfig, spin: cs.Spin, calm: bool = False):
    """A spline through keys at uneven times, or (not calm) a bounce off the walls."""
    h, w, T = cfg.height, cfg.width, cfg.num_frames
    if not calm and rng.random() < 0.35:
        v = rng.uniform(2, 6) * np.array([math.cos(a := rng.uniform(0, 2 * np.pi)), math.sin(a)])
        g = (0.0, float(rng.choice([0.0, rng.uniform(0.2, 0.6)])))  # some fall and bounce on the floor
        return cs.Bounce(start, (float(v[0]), float(v[1])), g, (r, r, w - r, h - r), spin)
    n = int(rng.integers(3, 6))
    # keys at uneven times (bunched towards one end): the speed changes between them
    inner = np.sort(rng.uniform(0.05, 0.95, n - 2) ** float(rng.uniform(0.5, 2.0))) * (T - 1)
    times = [0.0, *(float(x) + 1e-3 * i for i, x in enumerate(inner, 1)), float(T - 1) + 1e-2]
    step = 0.25 if calm else 0.6  # how far a key may lie from the previous one, in frame sizes
    xy = [tuple(start)]
    for dt in np.diff(times):
        # at most `step` frame sizes and ~12 px / frame from the previous key
        p = np.array(xy[-1]) + rng.uniform(-1, 1, 2) * np.minimum(np.array([step * w, step * h]), 12 * dt)
        xy.append((float(np.clip(p[0], r, w - r)), float(np.clip(p[1], r, h - r))))
    return cs.Waypoints(times, xy, spin)


def _spin(rng: np.random.Generator, cfg: CollageConfig, approach: bool, calm: bool = False) -> tuple[cs.Spin, float]:
    """Scale/rotation and the largest scale it reaches (relative to scale0 = 1)."""
    T = cfg.num_frames
    growth = (math.log(rng.uniform(1.8, 3.0)) * rng.choice([1, -1]) if approach else rng.uniform(-0.4, 0.4)) / T
    k = 0.3 if calm else 1.0
    sp = cs.Spin(1.0, float(growth), float(rng.uniform(0, 2 * np.pi)), float(rng.uniform(-0.07, 0.07) * k),
                 float(rng.uniform(-0.004, 0.004) * k))
    return sp, math.exp(max(0.0, growth) * (T - 1))


def _leave_path(rng: np.random.Generator, start, r_out: float, cfg: CollageConfig, spin: cs.Spin) -> cs.Waypoints:
    """Out through a side of the frame (fully, for a few frames) and back in."""
    h, w, T = cfg.height, cfg.width, cfg.num_frames
    ta = float(rng.uniform(0.25, 0.45) * (T - 1))
    tb = min(T - 4.0, ta + float(rng.uniform(1, 4)))
    tc = min(T - 1.5, tb + float(rng.uniform(3, 6)))
    side = int(rng.integers(4))

    def out(f: float) -> tuple[float, float]:  # a point r_out beyond that side, a fraction f along it
        return [(-r_out, f * h), (w + r_out, f * h), (f * w, -r_out), (f * w, h + r_out)][side]

    back = (float(rng.uniform(0.25, 0.75) * w), float(rng.uniform(0.25, 0.75) * h))
    keys = [(0.0, tuple(start)), (ta, out(rng.uniform(0.2, 0.8))), (tb, out(rng.uniform(0.2, 0.8))), (tc, back)]
    if tc < T - 1:
        keys.append((float(T - 1), (back[0] + rng.uniform(-0.1, 0.1) * w, back[1] + rng.uniform(-0.1, 0.1) * h)))
    return cs.Waypoints([k[0] for k in keys], [k[1] for k in keys], spin)


def _draw_scene(rng: np.random.Generator, cfg: CollageConfig, root: Path, stills: list[str],
                script: str | None) -> tuple[Scene, dict]:
    h, w, T = cfg.height, cfg.width, cfg.num_frames
    side = min(h, w)
    have = {"horse": source_path(HORSE, root) is not None, "coin": source_path(COINS, root) is not None}
    kinds = [k for k in ("blob", "blob", "stroke", "horse", "coin") if have.get(k, True)]
    clips = [BEDROOM, JUGGLE]
    bg_src = str(rng.choice(clips)) if not stills or rng.random() < 0.6 else str(rng.choice(stills))
    if bg_src in clips:
        background = _clip(rng, bg_src, root, cfg)
    else:
        background = cs.still_camera(rng, _photo_of(bg_src, root), h, w, T)
    # not the background's photo, nor the deep field (mostly black sky: it would make black objects)
    fills = [s for s in stills if s not in (bg_src, "pkg:skimage/hubble_deep_field.jpg")] or stills
    fill_photos = [_photo_of(s, root) for s in fills]
    if not fill_photos:  # no package photos: fill with a frame of the clip the background does not use
        other = BEDROOM if bg_src == JUGGLE else JUGGLE
        fill_photos = [_clip(np.random.default_rng(0), other, root, cfg).at(0, h, w)]

    def photo():
        return fill_photos[int(rng.integers(len(fill_photos)))]

    n = int(rng.integers(cfg.min_objects, cfg.max_objects + 1))
    cells = rng.permutation(6)  # objects start in different cells of a 3 x 2 grid
    layers: list[Layer] = []
    looks = []
    for k in range(n):
        kind = str(rng.choice(kinds))
        approach = script is None and rng.random() < 0.25
        spin, grow = _spin(rng, cfg, approach, calm=k == 0 and script == "occlusion")
        r_screen = float(rng.uniform(0.09, 0.2) * side)
        r_screen = min(r_screen, 0.38 * side / grow)
        fill_seed, p = int(rng.integers(1 << 31)), photo()
        sprite = _object(rng, kind, fill_seed, p, max(8, min(160, round(r_screen * grow))), root)
        spin.scale0 = r_screen / sprite.radius
        cell = int(cells[k % 6])
        start = ((cell % 3 + rng.uniform(0.3, 0.7)) * w / 3, (cell // 3 + rng.uniform(0.3, 0.7)) * h / 2)
        r_now = min(r_screen, 0.16 * side)
        if k == 0 and script == "leave":
            motion = _leave_path(rng, start, sprite.radius * spin.scale0 * grow * 1.15 + 3, cfg, spin)
        else:
            motion = _motion(rng, start, r_now, cfg, spin, calm=k == 0 and script == "occlusion")
        layers.append(Layer(sprite, motion, float(rng.uniform(0, 1)), k + 1, shadow=bool(rng.random() < 0.5)))
        looks.append((kind, fill_seed, p, r_screen))
    meta = {"script": script}
    if script == "occlusion":
        textures = [_photo_of(s, root) for s in TEXTURES if s in fills]  # posts look like wood, stone, plants
        post_photo = textures[int(rng.integers(len(textures)))] if textures else photo()
        layers.append(_occluder(rng, layers, cfg, post_photo, photo(), meta))
    for _ in range(int(rng.integers(0, cfg.max_distractors + 1))):  # look-alikes: same appearance, other shape
        kind, fill_seed, p, r_screen = looks[int(rng.integers(len(looks)))]
        sprite = _object(rng, kind, fill_seed, p, max(8, round(r_screen)), root)
        spin, _ = _spin(rng, cfg, False)
        spin.scale0 = r_screen * float(rng.uniform(0.8, 1.2)) / sprite.radius
        start = (float(rng.uniform(0.1, 0.9) * w), float(rng.uniform(0.1, 0.9) * h))
        layers.append(Layer(sprite, _motion(rng, start, r_screen * 0.5, cfg, spin), float(rng.uniform(0, 1)), 0,
                            shadow=bool(rng.random() < 0.5)))
    if rng.random() < cfg.p_thin:
        thin = cs.thin_structure(rng, photo(), h, w)
        drift = rng.uniform(-1.5, 1.5, 2)
        c = (w / 2, h / 2)
        motion = cs.Waypoints([0.0, float(T - 1)], [c, (c[0] + drift[0] * T, c[1] + drift[1] * T)],
                              cs.Spin(1.0, 0.0, float(rng.uniform(-0.1, 0.1)), float(rng.uniform(-0.004, 0.004))))
        layers.append(Layer(thin, motion, 3.0, 0))
    layers.sort(key=lambda lay: lay.depth)
    effects = {"flicker": float(rng.uniform(0, 0.06)), "flicker_period": float(rng.uniform(3, 12)),
               "phase": float(rng.uniform(0, 6.3)), "cast": rng.uniform(0.92, 1.08, 3).tolist(),
               "blur": float(rng.uniform(0, 0.9)), "noise": float(rng.uniform(1, 5)),
               "jpeg": int(rng.integers(40, 91)), "seed": int(rng.integers(1 << 31)),
               "shadow": (float(rng.uniform(-8, 8)), float(rng.uniform(2, 9)))}
    return Scene(background, layers, effects), meta


def _occluder(rng: np.random.Generator, layers: list[Layer], cfg: CollageConfig, post_photo: np.ndarray,
              photo: np.ndarray, meta: dict) -> Layer:
    """A post or a large blob that sweeps over object 1 and covers it fully around frame t_meet."""
    T, side = cfg.num_frames, min(cfg.height, cfg.width)
    target = layers[0]
    t_meet = float(rng.integers(T // 3, max(T // 3 + 1, 2 * T // 3)))
    scale = target.motion.spin.at(t_meet)[0]
    r1 = target.sprite.radius * scale * 1.08 + 2  # object 1's extent around t_meet
    k = float(rng.uniform(4, 7))  # frames from touching to covered
    sign = float(rng.choice([-1, 1]))
    meta["t_meet"] = t_meet
    if rng.random() < 0.6:
        hw = r1 * (k + 1.5) / (k - 1.5)
        v = (r1 + hw) / k
        sprite = cs.post(rng, post_photo, hw, int(2.2 * max(cfg.height, cfg.width)))
        spin = cs.Spin(1.0, 0.0, float(rng.uniform(-0.15, 0.15)), 0.0)
        return Layer(sprite, cs.Sweep(target.motion, t_meet, (0.0, 0.0), (sign * v, 0.0), spin), 2.0, 0)
    from scipy import ndimage

    sprite = cs.fourier_blob(rng, rng, photo, round(0.35 * side))
    inside = np.asarray(sprite.alpha) >= 0.5
    sh, sw = inside.shape
    r_in = max(2.0, float(ndimage.distance_transform_edt(inside)[sh // 2, sw // 2]) - 1.5)
    v = r1 * float(rng.uniform(0.3, 0.6))
    spin = cs.Spin((r1 + 1.5 * v) / r_in, 0.0, float(rng.uniform(0, 6.3)), float(rng.uniform(-0.03, 0.03)))
    ang = rng.uniform(0, 2 * np.pi)
    label = len([lay for lay in layers if lay.label]) + 1
    meta["occluder"] = label if label <= cfg.max_objects else 0
    return Layer(sprite, cs.Sweep(target.motion, t_meet, (0.0, 0.0), (v * math.cos(ang), v * math.sin(ang)), spin),
                 2.0, label if label <= cfg.max_objects else 0, shadow=True)


def _composite(scene: Scene, t: int, cfg: CollageConfig) -> tuple[np.ndarray, np.ndarray, dict[int, bool]]:
    """Frame (H, W, 3) float32 before camera effects, label map (H, W) uint8, and per annotated label
    whether its unoccluded shape reaches into the frame."""
    h, w = cfg.height, cfg.width
    frame = scene.background.at(t, h, w).astype(np.float32)
    labels = np.zeros((h, w), np.uint8)
    in_frame = {}
    shift = scene.background.shake(t)
    for lay in scene.layers:
        m, col = render_layer(lay, t, h, w, shift)
        if lay.label:
            in_frame[lay.label] = bool(m.any())
        if lay.shadow:
            dx, dy = scene.effects["shadow"]
            sh = Image.fromarray(m.astype(np.uint8) * 255).filter(ImageFilter.GaussianBlur(4))
            sh = np.asarray(sh.transform((w, h), Image.AFFINE, (1, 0, -dx, 0, 1, -dy)), np.float32) / 255
            frame *= 1 - 0.45 * sh[..., None]
        frame[m] = col[m]
        labels[m] = lay.label
    return frame, labels, in_frame


def _camera(frame: np.ndarray, t: int, fx: dict, rng: np.random.Generator) -> np.ndarray:
    """Flicker, colour cast, blur, sensor noise and a JPEG round trip: frame (H, W, 3) float -> uint8."""
    gain = 1 + fx["flicker"] * math.sin(2 * math.pi * t / fx["flicker_period"] + fx["phase"])
    f = frame * (gain * np.asarray(fx["cast"], np.float32))
    img = Image.fromarray(np.clip(f, 0, 255).astype(np.uint8))
    if fx["blur"] > 0.3:
        img = img.filter(ImageFilter.GaussianBlur(fx["blur"]))
    f = np.asarray(img, np.float32) + rng.normal(0, fx["noise"], f.shape).astype(np.float32)
    buf = io.BytesIO()
    Image.fromarray(np.clip(f, 0, 255).astype(np.uint8)).save(buf, "JPEG", quality=fx["jpeg"])
    return np.asarray(Image.open(buf).convert("RGB"))


def events_of(labels: np.ndarray, in_frame: dict[int, np.ndarray], min_gap: int = 1) -> dict:
    """detect_events' rule on rendered layers: labels (T, H, W) and per label (T,) bool 'shape in frame'."""
    events = {"occlusion": [], "leave_return": []}
    for lab, inside in sorted(in_frame.items()):
        vis = (labels == lab).any(axis=(1, 2))
        if not vis.any():
            continue
        first, last = int(np.argmax(vis)), len(vis) - 1 - int(np.argmax(vis[::-1]))
        gap = [t for t in range(first, last + 1) if not vis[t]]
        if len(gap) < min_gap:
            continue
        if any(inside[t] for t in gap):
            events["occlusion"].append(lab)
        if not all(inside[t] for t in gap):
            events["leave_return"].append(lab)
    return events


def build_scene(seed: int, cfg: CollageConfig | None = None) -> tuple[Scene, dict]:
    """The scene of a seed: redrawn (deterministically) until every annotated object shows well in frame 0
    and a scripted occlusion really covers object 1."""
    cfg = cfg or CollageConfig()
    cfg.check()
    root, stills = _sources(cfg)
    pick = np.random.default_rng([seed, 1 << 20])  # the script stays when a scene is redrawn
    script = ("occlusion" if pick.random() < 0.5 else "leave") if pick.random() < cfg.p_event else None
    if cfg.num_frames < 12:  # too short to go out, stay out and come back in
        script = None
    for attempt in range(8):
        scene, meta = _draw_scene(np.random.default_rng([seed, attempt]), cfg, root, stills, script)
        if _acceptable(scene, meta, cfg):
            break
    return scene, meta


def _acceptable(scene: Scene, meta: dict, cfg: CollageConfig) -> bool:
    h, w = cfg.height, cfg.width
    _, labels, _ = _composite(scene, 0, cfg)
    shift = scene.background.shake(0)
    for lay in scene.layers:
        if lay.label:
            area = render_layer(lay, 0, h, w, shift)[0].sum()
            seen = (labels == lay.label).sum()
            if seen < 0.004 * h * w or seen < 0.5 * area:
                if lay.label != meta.get("occluder"):
                    return False
                lay.label = 0  # an occluder that enters later is not prompted on frame 0: leave it unannotated
    if meta["script"] == "occlusion":
        _, labels, inside = _composite(scene, int(meta["t_meet"]), cfg)
        return bool(inside[1]) and not (labels == 1).any()
    return True


def generate_video(seed: int, cfg: CollageConfig | None = None, name: str | None = None) -> SyntheticVideo:
    """One video, fully determined by (seed, cfg) (and which package photos are installed)."""
    cfg = cfg or CollageConfig()
    scene, _ = build_scene(seed, cfg)
    noise = np.random.default_rng(scene.effects["seed"])
    frames, labels, inside = [], [], {}
    for t in range(cfg.num_frames):
        f, lab, inf = _composite(scene, t, cfg)
        frames.append(_camera(f, t, scene.effects, noise) if cfg.degrade else np.clip(f, 0, 255).astype(np.uint8))
        labels.append(lab)
        for k, v in inf.items():
            inside.setdefault(k, []).append(v)
    labels_a = np.stack(labels)
    ids = sorted(k for k in inside if (labels_a == k).any())
    events = events_of(labels_a, {k: np.asarray(v) for k, v in inside.items()})
    return SyntheticVideo(name or f"collage{seed:07d}", np.stack(frames), labels_a, ids, events)
