"""Deterministic synthetic videos with pixel-exact ground truth.

Textured objects (ellipse, rectangle, star, triangle, blob) move, rotate and scale over textured (or
photographic) backgrounds, occlude each other, leave the frame and come back; unannotated distractors
copy an object's shape and texture. Everything derives from one seed, so a video is reproducible.

Rendering is exact: an object's pixels are those whose centre falls inside its shape (no antialiasing),
painted back to front, so the indexed label map is precisely where each object is visible.
"""
from __future__ import annotations

import contextlib
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

SHAPES = ("ellipse", "rect", "star", "triangle", "blob")


JPEG_QUALITY = 95  # of the frames a synthetic folder holds (evaluation reads these, so training sees them too)


@dataclass
class SynthConfig:
    height: int = 240
    width: int = 320
    num_frames: int = 24
    min_objects: int = 1
    max_objects: int = 3
    num_distractors: int = 1
    p_occlusion: float = 0.5  # chance the video scripts a full occlusion of object 1
    p_leave: float = 0.5  # chance the video scripts object 1 leaving the frame and coming back
    background_dir: str | None = None  # optional folder of photos used as backgrounds


CONFIG_CLASS = SynthConfig  # for samstream.train.generators


@dataclass
class ObjectSpec:
    """One object's look and motion; position etc. are functions of time t (frames)."""

    shape: str
    size: float  # radius in pixels at scale 1
    aspect: float
    texture: dict
    centre0: tuple[float, float]
    velocity: tuple[float, float]
    swing: tuple[float, float, float, float]  # amplitude x, y, period, phase of a sinusoid on top of velocity
    angle0: float
    spin: float
    scale_amp: float
    scale_period: float
    depth: float  # larger = nearer the camera
    label: int  # 0 = unannotated distractor
    pause: tuple[int, int] | None = None  # frames [a, b) during which the object holds still (to be occluded)

    def pose(self, t: float) -> tuple[float, float, float, float]:
        """(cx, cy, angle, scale) at time t."""
        t, cx, cy = drift_and_swing(self.centre0, self.velocity, self.swing, self.pause, t)
        scale = 1.0 + self.scale_amp * math.sin(2 * math.pi * t / self.scale_period)
        return cx, cy, self.angle0 + self.spin * t, scale


def drift_and_swing(centre0, velocity, swing, pause, t: float) -> tuple[float, float, float]:
    """-> (motion time, cx, cy) at time t of a centre drifting at `velocity` with a sinusoidal `swing` (amplitude x,
    y, period, phase) on top; the motion holds still inside `pause` (frames [a, b), or None) and resumes after it."""
    if pause is not None:
        a, b = pause
        t = min(t, a) + max(0.0, t - b)
    ax, ay, period, phase = swing
    w = 2 * math.pi * t / period + phase
    return t, centre0[0] + velocity[0] * t + ax * math.sin(w), centre0[1] + velocity[1] * t + ay * math.sin(w)


@dataclass
class SyntheticVideo:
    name: str
    frames: np.ndarray  # (T, H, W, 3) uint8
    labels: np.ndarray  # (T, H, W) uint8, 0 = background, k = object k (distractors are background)
    object_ids: list[int]
    events: dict = field(default_factory=dict)  # {"occlusion": [obj...], "leave_return": [obj...]}

    def masks(self, obj: int) -> np.ndarray:
        """(T, H, W) bool visible mask of object obj."""
        return self.labels == obj


# ----------------------------------------------------------------------------------------- textures
def _random_texture(rng: np.random.Generator) -> dict:
    kind = rng.choice(["stripes", "checker", "rings", "noise"])
    c1, c2 = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    return {"kind": str(kind), "c1": c1.tolist(), "c2": c2.tolist(), "freq": float(rng.uniform(0.15, 0.6)),
            "seed": int(rng.integers(1 << 30))}


def _paint(tex: dict, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Colours (..., 3) of a texture at object-local coordinates u, v (pixels)."""
    f = tex["freq"]
    kind = tex["kind"]
    if kind == "stripes":
        w = (np.sin(u * f) > 0).astype(np.float32)
    elif kind == "checker":
        w = ((np.floor(u * f / 2) + np.floor(v * f / 2)) % 2).astype(np.float32)
    elif kind == "rings":
        w = 0.5 + 0.5 * np.sin(np.hypot(u, v) * f)
    else:  # smooth pseudo-noise from a few seeded sinusoids
        r = np.random.default_rng(tex["seed"])
        w = np.zeros_like(u, dtype=np.float32)
        for _ in range(4):
            a, b, p = r.uniform(-f, f), r.uniform(-f, f), r.uniform(0, 6.28)
            w += np.sin(a * u + b * v + p)
        w = (w / 8 + 0.5).clip(0, 1)
    c1, c2 = np.asarray(tex["c1"], np.float32), np.asarray(tex["c2"], np.float32)
    return (c1 * (1 - w[..., None]) + c2 * w[..., None]).astype(np.uint8)


def _background(rng: np.random.Generator, h: int, w: int, photos: list[Path]) -> np.ndarray:
    """(H, W, 3) uint8 background: a photo (random crop) when given, else a low-contrast texture."""
    if photos:
        from PIL import Image

        img = Image.open(photos[int(rng.integers(len(photos)))]).convert("RGB")
        s = max(h / img.height, w / img.width)
        img = img.resize((max(w, math.ceil(img.width * s)), max(h, math.ceil(img.height * s))), Image.BILINEAR)
        x0 = int(rng.integers(img.width - w + 1))
        y0 = int(rng.integers(img.height - h + 1))
        return np.asarray(img)[y0:y0 + h, x0:x0 + w].copy()
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    tex = _random_texture(rng)
    tex["freq"] *= 0.3
    base = _paint(tex, xx, yy).astype(np.float32)
    return (128 + (base - 128) * 0.5).astype(np.uint8)  # lower contrast than the objects


# ----------------------------------------------------------------------------------------- shapes
def _inside(shape: str, u: np.ndarray, v: np.ndarray, r: float, aspect: float, seed: int) -> np.ndarray:
    """Membership of object-local points (u, v) in a shape of radius r."""
    if shape == "ellipse":
        return (u / r) ** 2 + (v / (r * aspect)) ** 2 <= 1
    if shape == "rect":
        return (np.abs(u) <= r) & (np.abs(v) <= r * aspect)
    rho, phi = np.hypot(u, v * (1 / aspect)), np.arctan2(v, u)
    if shape == "star":
        return rho <= r * (0.65 + 0.35 * np.cos(5 * phi))
    if shape == "triangle":  # regular polygon with 3 sides in polar form
        k = 3
        return rho * np.cos((phi % (2 * np.pi / k)) - np.pi / k) <= r * 0.6
    rr = np.random.default_rng(seed)  # blob: random smooth radius function
    rad = np.full_like(phi, 0.75)
    for k in (2, 3, 4):
        rad += rr.uniform(-0.12, 0.12) * np.cos(k * phi + rr.uniform(0, 6.28))
    return rho <= r * rad


def render_object(obj: ObjectSpec, t: float, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Amodal mask (H, W) bool and colour (H, W, 3) uint8 (valid inside the mask) of obj at time t."""
    cx, cy, ang, scale = obj.pose(t)
    r = obj.size * scale
    ext = r * max(1.0, obj.aspect) * 1.5 + 2
    x0, x1 = max(0, int(cx - ext)), min(w, int(cx + ext) + 1)
    y0, y1 = max(0, int(cy - ext)), min(h, int(cy + ext) + 1)
    mask = np.zeros((h, w), bool)
    colour = np.zeros((h, w, 3), np.uint8)
    if x0 >= x1 or y0 >= y1:
        return mask, colour
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    dx, dy = xx + 0.5 - cx, yy + 0.5 - cy  # pixel centres
    c, s = math.cos(-ang), math.sin(-ang)
    u, v = c * dx - s * dy, s * dx + c * dy  # rotate into the object's frame
    m = _inside(obj.shape, u, v, r, obj.aspect, obj.texture["seed"])
    mask[y0:y1, x0:x1] = m
    colour[y0:y1, x0:x1] = _paint(obj.texture, u / scale, v / scale)  # texture scales with the object
    return mask, colour


# ----------------------------------------------------------------------------------------- scenes
def _photos(folder: str | None) -> list[Path]:
    if not folder:
        return []
    p = Path(folder)
    if not p.is_dir():
        raise FileNotFoundError(f"background folder not found: {p}")
    files = sorted(f for f in p.iterdir() if f.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if not files:
        raise ValueError(f"background folder {p} holds no .jpg/.png images")
    return files


def _make_objects(rng: np.random.Generator, cfg: SynthConfig) -> list[ObjectSpec]:
    h, w, T = cfg.height, cfg.width, cfg.num_frames
    n = int(rng.integers(cfg.min_objects, cfg.max_objects + 1))
    objs: list[ObjectSpec] = []

    def free_spot(size: float) -> tuple[float, float]:
        # start apart from the objects so far, so that none hides another from the first frame on
        for _ in range(50):
            c = (float(rng.uniform(0.15, 0.85) * w), float(rng.uniform(0.15, 0.85) * h))
            if all(math.dist(c, o.centre0) > 1.3 * (size + o.size) for o in objs):
                return c
        return c

    for k in range(n):
        size = float(rng.uniform(0.06, 0.16) * min(h, w))
        objs.append(ObjectSpec(
            shape=str(rng.choice(SHAPES)), size=size, aspect=float(rng.uniform(0.5, 1.0)),
            texture=_random_texture(rng), centre0=free_spot(size),
            velocity=(float(rng.uniform(-1.5, 1.5)), float(rng.uniform(-1.0, 1.0))),
            swing=(float(rng.uniform(0, 0.15) * w), float(rng.uniform(0, 0.15) * h), float(rng.uniform(12, 40)),
                   float(rng.uniform(0, 6.28))),
            angle0=float(rng.uniform(0, 6.28)), spin=float(rng.uniform(-0.08, 0.08)),
            scale_amp=float(rng.uniform(0, 0.25)), scale_period=float(rng.uniform(15, 50)),
            depth=float(rng.uniform(0, 1)), label=k + 1))
    main = objs[0]
    if rng.random() < cfg.p_leave:  # swing object 1 out through the nearest side edge and back
        # x(t) = cx + A sin(2 pi t / P): out of frame for a stretch around t = P/4, back by t = P/2
        period = T * 0.9
        cx = main.centre0[0]
        direction = 1 if cx > w / 2 else -1
        edge_dist = (w - cx) if direction > 0 else cx
        amp = edge_dist + main.size * 2.2 + 0.08 * w
        main.velocity = (0.0, float(rng.uniform(-0.3, 0.3)))
        main.swing = (direction * amp, 0.0, period, 0.0)
        main.scale_amp = min(main.scale_amp, 0.15)
    elif rng.random() < cfg.p_occlusion:  # a large nearer occluder sweeps over object 1 while it holds still
        t_mid = int(rng.integers(T // 3, 2 * T // 3))
        main.pause = (t_mid - 4, t_mid + 4)
        main.depth = 0.0
        main.scale_amp = 0.0
        main.swing = (0.0, 0.0, 30.0, 0.0)
        if main.shape == "rect":  # a rectangle's corners would stick out of the occluder
            main.shape = "ellipse"
        px, py, _, _ = main.pose(t_mid)
        # a square 1.6x the object's radius passes fast enough to cover it fully for a few frames only;
        # the object moves the other way so the two separate afterwards
        speed = float(rng.uniform(5.0, 7.0)) * (1 if rng.random() < 0.5 else -1)
        main.velocity = (-math.copysign(abs(main.velocity[0]) + 0.5, speed), main.velocity[1])
        px, py, _, _ = main.pose(t_mid)
        occ = ObjectSpec(
            shape="rect", size=main.size * 1.6, aspect=1.0,
            texture=_random_texture(rng), centre0=(px - speed * t_mid, py), velocity=(speed, 0.0),
            swing=(0.0, 0.0, 30.0, 0.0), angle0=0.0, spin=0.0, scale_amp=0.0, scale_period=30.0, depth=2.0,
            label=len(objs) + 1 if len(objs) < cfg.max_objects else 0)
        objs.append(occ)
    for _ in range(cfg.num_distractors):  # same look as a random annotated object, elsewhere
        src = objs[int(rng.integers(len(objs)))]
        size = src.size * float(rng.uniform(0.8, 1.2))
        objs.append(ObjectSpec(
            shape=src.shape, size=size, aspect=src.aspect, texture=src.texture, centre0=free_spot(size),
            velocity=(float(rng.uniform(-1.5, 1.5)), float(rng.uniform(-1.0, 1.0))),
            swing=(float(rng.uniform(0, 0.1) * w), float(rng.uniform(0, 0.1) * h), 30.0, float(rng.uniform(0, 6.28))),
            angle0=float(rng.uniform(0, 6.28)), spin=float(rng.uniform(-0.05, 0.05)), scale_amp=0.1,
            scale_period=30.0, depth=float(rng.uniform(0, 1)), label=0))
    return objs


def render_scene(objs: list[ObjectSpec], background: np.ndarray, t: float) -> tuple[np.ndarray, np.ndarray]:
    """Paint objects back to front: frame (H, W, 3) uint8 and label map (H, W) uint8."""
    h, w = background.shape[:2]
    frame = background.copy()
    labels = np.zeros((h, w), np.uint8)
    for obj in sorted(objs, key=lambda o: o.depth):
        m, col = render_object(obj, t, h, w)
        frame[m] = col[m]
        labels[m] = obj.label
    return frame, labels


def detect_events(labels: np.ndarray, objs: list[ObjectSpec], min_gap: int = 1) -> dict:
    """Which annotated objects vanish for >= min_gap frames and come back, split by cause (`gap_events`)."""
    _, h, w = labels.shape
    by_label = {o.label: o for o in objs if o.label}
    return gap_events(labels, list(by_label), lambda k, t: render_object(by_label[k], t, h, w)[0].any(), min_gap)


def gap_events(labels: np.ndarray, ids, inside, min_gap: int = 1) -> dict:
    """Which of the objects `ids` vanish for >= min_gap frames between their first and last visible frame of the
    label maps (T, H, W), split by cause: "occlusion" when on a frame of the gap the object's shape is inside the
    frame (covered), "leave_return" when it is outside (both if both). inside(id, t) -> bool, asked for gap frames."""
    T = labels.shape[0]
    events = {"occlusion": [], "leave_return": []}
    for k in ids:
        vis = np.array([(labels[t] == k).any() for t in range(T)])
        if not vis.any():
            continue
        first, last = int(np.argmax(vis)), T - 1 - int(np.argmax(vis[::-1]))
        gap = [t for t in range(first, last + 1) if not vis[t]]
        if len(gap) < min_gap:
            continue
        covered = [bool(inside(k, t)) for t in gap]
        if any(covered):
            events["occlusion"].append(k)
        if not all(covered):
            events["leave_return"].append(k)
    return events


def build_scene(seed: int, cfg: SynthConfig | None = None) -> tuple[np.ndarray, list[ObjectSpec], np.ndarray]:
    """Background (H, W, 3), objects, and the background's pan per frame (dx, dy), all from the seed."""
    cfg = cfg or SynthConfig()
    rng = np.random.default_rng(seed)
    bg = _background(rng, cfg.height, cfg.width, _photos(cfg.background_dir))
    objs = _make_objects(rng, cfg)
    drift = rng.uniform(-0.5, 0.5, 2)  # slow camera pan of the background
    return bg, objs, drift


def background_at(bg: np.ndarray, drift: np.ndarray, t: int) -> np.ndarray:
    return np.roll(bg, (round(drift[1] * t), round(drift[0] * t)), axis=(0, 1))


def generate_video(seed: int, cfg: SynthConfig | None = None, name: str | None = None) -> SyntheticVideo:
    """One video, fully determined by (seed, cfg)."""
    cfg = cfg or SynthConfig()
    bg, objs, drift = build_scene(seed, cfg)
    frames, labels = [], []
    for t in range(cfg.num_frames):
        f, lab = render_scene(objs, background_at(bg, drift, t), t)
        frames.append(f)
        labels.append(lab)
    labels_a = np.stack(labels)
    ids = sorted({o.label for o in objs if o.label > 0 and (labels_a == o.label).any()})
    return SyntheticVideo(name or f"synth{seed:06d}", np.stack(frames), labels_a, ids, detect_events(labels_a, objs))


def _write_video(task: tuple) -> tuple[str, dict]:
    """Write one video's frames and labels; returns (sequence name, events). Module-level: worker processes run it."""
    from PIL import Image

    from samstream.io import write_label_png

    root, seed, cfg, resolution, generator = task
    if generator == "shapes":
        vid = generate_video(seed, cfg)
    else:
        from .generators import generate_video as generate

        vid = generate(generator, seed, cfg)
    img_dir = root / "JPEGImages" / resolution / vid.name
    ann_dir = root / "Annotations" / resolution / vid.name
    img_dir.mkdir(parents=True, exist_ok=True)
    ann_dir.mkdir(parents=True, exist_ok=True)
    for t in range(len(vid.frames)):
        Image.fromarray(vid.frames[t]).save(img_dir / f"{t:05d}.jpg", quality=JPEG_QUALITY)
        write_label_png(ann_dir / f"{t:05d}.png", vid.labels[t])
    return vid.name, {"objects": vid.object_ids, **vid.events}


def write_davis_folder(root: str | os.PathLike, seeds, cfg: SynthConfig | None = None,
                       resolution: str = "480p", jobs: int = 1, progress: bool = False,
                       generator: str | None = None) -> dict[str, dict]:
    """Write videos as JPEGImages/<res>/<seq>/00000.jpg + Annotations/<res>/<seq>/00000.png (indexed).

    Returns {sequence: events} and writes it as events.json too, for evaluating the hard subsets.
    JPEG frames are lossy; the PNG labels stay exact. `jobs` > 1 renders in that many processes; every video
    depends on its seed alone, so the folder is the same byte for byte. `generator` names one of
    samstream.train.generators (default: the one cfg belongs to, shapes for None).
    """
    import json

    from tqdm import tqdm

    from .generators import check_config, name_of

    generator = generator or name_of(cfg)
    check_config(generator, cfg)
    tasks = [(Path(root), int(s), cfg, resolution, generator) for s in seeds]
    report = {}  # in seed order, however many jobs
    with contextlib.ExitStack() as stack:
        if jobs > 1 and len(tasks) > 1:
            from concurrent.futures import ProcessPoolExecutor
            from multiprocessing import get_context

            # spawn, not fork: the parent may hold torch threads, which a forked child must not inherit
            pool = stack.enter_context(ProcessPoolExecutor(min(jobs, len(tasks)), mp_context=get_context("spawn")))
            written = pool.map(_write_video, tasks, chunksize=4)
        else:
            written = map(_write_video, tasks)
        for name, events in tqdm(written, total=len(tasks), desc="synth", unit="video", disable=not progress):
            report[name] = events
    (Path(root) / "events.json").write_text(json.dumps(report, indent=1))
    return report
