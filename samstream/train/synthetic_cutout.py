"""Training videos with photographic appearance: objects cut out of real photos and clip frames, moving over
real footage.

Each video composites 1-3 annotated objects, look-alike distractors and unannotated occluders over a
background, from one seed:

* objects: regions cut out of the sam2-assets photos and clip frames along their colour edges
  (samstream.train.photo_sources), and a share of geometric shapes filled with a photo patch;
* look-alikes: the same cut-out again, or another from the same image (label 0);
* background: consecutive frames of a gallery clip (real camera pans and shake), or a still photo seen by a
  virtual camera (pan, zoom, roll, hand shake);
* motion: drift, swing, approach / recede (scale change), spin; motion blur along the motion (the layer is
  the mean of its sub-frame poses); exits and re-entries;
* events: about half the videos script a full occlusion of object 1 (a large cut-out sweeps over it while it
  holds still) or its leaving the frame and coming back;
* light: per-object and global gain / colour shift over time; JPEG artefacts (quality drawn per video).

Labels are exact: a layer's colour and alpha are warped and blurred together, the object is where its alpha
is >= 0.5, layers are painted back to front and the label map is written with them; global light and JPEG
touch the frames only. Events follow samstream.train.synthetic.detect_events: an annotated object invisible
for >= 1 frame between its first and last visible frame counts as "occlusion" while its own (unoccluded)
alpha reaches 0.5 inside the frame, "leave_return" while it does not.

Sources (SOURCES, from the sam2-assets folder, Apache-2.0: cfg.assets, $SAMSTREAM_ASSETS or
<repo>/../shared/data/sam2-assets): the photos cars, groceries, truck and the gallery clips 01-04. The
validation generator (samstream.train.synthetic_collage) uses none of them.
"""
from __future__ import annotations

import io
import math
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from . import photo_sources as ps
from .synthetic import SHAPES, SyntheticVideo, _inside, drift_and_swing, gap_events

SOURCES = (*ps.PHOTOS, *ps.CLIPS)


@dataclass
class CutoutConfig:
    height: int = 240
    width: int = 320
    num_frames: int = 24
    assets: str | None = None  # sam2-assets folder; default $SAMSTREAM_ASSETS, else <repo>/../shared/data/sam2-assets
    min_objects: int = 1
    max_objects: int = 3
    max_distractors: int = 2
    p_leave: float = 0.3  # chance object 1 leaves the frame and comes back
    p_occlusion: float = 0.35  # else, chance a large cut-out sweeps over object 1 (together about half the videos)
    p_occluder: float = 0.3  # chance of an extra unannotated occluder crossing the frame
    p_shape: float = 0.2  # share of objects that are geometric shapes filled with a photo patch
    p_still: float = 0.3  # chance the background is a still photo with a virtual camera, not a clip
    motion_blur: bool = True
    jpeg_min: int = 60  # frames are JPEG-compressed at a quality drawn from [jpeg_min, jpeg_max]; 0 = not at all
    jpeg_max: int = 95

    def check(self) -> None:
        if self.height < 32 or self.width < 32 or self.num_frames < 2:
            raise ValueError(f"cutout: need height, width >= 32 and num_frames >= 2, got {self.height}x"
                             f"{self.width}x{self.num_frames}")
        if not 1 <= self.min_objects <= self.max_objects <= 10 or self.max_distractors < 0:
            raise ValueError(f"cutout: need 1 <= min_objects <= max_objects <= 10 and max_distractors >= 0, got "
                             f"{self.min_objects}, {self.max_objects}, {self.max_distractors}")
        if self.jpeg_min and not 1 <= self.jpeg_min <= self.jpeg_max <= 100:
            raise ValueError(f"cutout: need 1 <= jpeg_min <= jpeg_max <= 100 (or jpeg_min 0), got "
                             f"{self.jpeg_min}, {self.jpeg_max}")


CONFIG_CLASS = CutoutConfig


# ----------------------------------------------------------------------------------------- layers
@dataclass
class Layer:
    """One cut-out and its motion; the pose is a function of time t (frames)."""

    sprite: Image.Image  # RGBA, alpha = soft mask, centred on the patch
    r_out: float  # sprite radius (pixels, at scale 1)
    label: int  # 0 = distractor / occluder
    depth: float  # larger = nearer the camera
    centre0: tuple[float, float]
    velocity: tuple[float, float]
    swing: tuple[float, float, float, float]  # amplitude x, y, period, phase of a sinusoid on top of the drift
    scale0: float
    ramp: float  # log-scale change over the video (approach > 0, recede < 0)
    wobble: tuple[float, float]  # amplitude and period of a scale oscillation
    angle0: float
    spin: float
    flip: bool
    gain: tuple[tuple[float, float, float], float, float]  # per-channel amplitude, period, phase of its light
    num_frames: int
    pause: tuple[int, int] | None = None  # frames [a, b) it holds still (to be occluded)
    source: str = ""
    inner: tuple[float, float] = (0.0, 0.0)

    def pose(self, t: float) -> tuple[float, float, float, float]:
        """(cx, cy, angle, scale) at time t."""
        t, cx, cy = drift_and_swing(self.centre0, self.velocity, self.swing, self.pause, t)
        amp, per = self.wobble
        scale = self.scale0 * math.exp(self.ramp * (t / self.num_frames - 0.5)) * (1 + amp * math.sin(6.283 * t / per))
        return cx, cy, self.angle0 + self.spin * t, scale

    def light(self, t: float) -> np.ndarray:
        amp, period, phase = self.gain
        return 1.0 + np.asarray(amp, np.float32) * math.sin(2 * math.pi * t / period + phase)


def render_layer(layer: Layer, t: float, h: int, w: int, exposure: float):
    """The layer at time t, blurred along its motion over `exposure` frames: (y0, x0, colour (bh, bw, 3)
    float32, alpha (bh, bw) float32), or None when it lies outside the frame. The sprite is warped once, at
    the pose of time t, and the blur is the mean of copies shifted along the motion (premultiplied)."""
    cx, cy, ang, scale = layer.pose(t)
    p0, p1 = layer.pose(t - exposure / 2), layer.pose(t + exposure / 2)
    mx, my = p1[0] - p0[0], p1[1] - p0[1]  # motion during the exposure (pixels)
    n = int(min(9, max(1, math.ceil(math.hypot(mx, my) / 1.5)))) if exposure > 0 else 1
    shifts = [(0, 0)] if n == 1 else sorted({(round(mx * (k / (n - 1) - 0.5)), round(my * (k / (n - 1) - 0.5)))
                                            for k in range(n)})
    ext = scale * layer.r_out + 2
    sx0, sx1 = min(s[0] for s in shifts), max(s[0] for s in shifts)
    sy0, sy1 = min(s[1] for s in shifts), max(s[1] for s in shifts)
    x0, x1 = max(0, int(cx - ext + sx0)), min(w, int(cx + ext + sx1) + 1)
    y0, y1 = max(0, int(cy - ext + sy0)), min(h, int(cy + ext + sy1) + 1)
    if x0 >= x1 or y0 >= y1:
        return None
    # the sharp layer on the box grown by the shifts, so that every shifted copy can be cut from it
    gx0, gy0 = x0 - sx1, y0 - sy1
    gw, gh = (x1 - sx0) - gx0, (y1 - sy0) - gy0
    sw, sh = layer.sprite.size
    c, s = math.cos(ang) / scale, math.sin(ang) / scale
    fx = -1.0 if layer.flip else 1.0
    ox, oy = gx0 - cx, gy0 - cy
    # output pixel (x, y) of the grown box -> sprite pixel: undo translation, rotation, scale (and flip)
    coeffs = (fx * c, fx * s, fx * (c * ox + s * oy) + sw / 2, -s, c, -s * ox + c * oy + sh / 2)
    sharp = np.asarray(layer.sprite.transform((gw, gh), Image.AFFINE, coeffs, resample=Image.BILINEAR),
                       np.float32)  # (gh, gw, 4)
    a = sharp[..., 3] / 255.0
    if len(shifts) == 1:
        return y0, x0, sharp[sy1:sy1 + y1 - y0, sx1:sx1 + x1 - x0, :3], a[sy1:sy1 + y1 - y0, sx1:sx1 + x1 - x0]
    pre = sharp[..., :3] * a[..., None]
    bh, bw = y1 - y0, x1 - x0
    acc_a = np.zeros((bh, bw), np.float32)
    acc_c = np.zeros((bh, bw, 3), np.float32)
    for dx, dy in shifts:  # frame pixel (x, y) of a copy shifted by (dx, dy) shows sharp pixel (x - dx, y - dy)
        ys, xs = sy1 - dy, sx1 - dx
        acc_a += a[ys:ys + bh, xs:xs + bw]
        acc_c += pre[ys:ys + bh, xs:xs + bw]
    alpha = acc_a / len(shifts)
    colour = acc_c / np.maximum(acc_a, 1e-6)[..., None]
    return y0, x0, colour, alpha


# ----------------------------------------------------------------------------------------- background
@dataclass
class Camera:
    """A virtual camera over a source: per frame, the source image and the view's centre, zoom and roll."""

    frames: list  # (H, W, 3) uint8 per video frame (the same still, or consecutive clip frames)
    centre: list[tuple[float, float]]
    zoom: list[float]
    roll: list[float]

    def view(self, t: int, h: int, w: int) -> np.ndarray:
        img = self.frames[t]
        (cx, cy), z, r = self.centre[t], self.zoom[t], self.roll[t]
        if r == 0:  # a crop and a resize: several times faster than the general warp
            bx0, by0 = max(0.0, cx - w / (2 * z)), max(0.0, cy - h / (2 * z))
            bx1, by1 = min(img.shape[1], cx + w / (2 * z)), min(img.shape[0], cy + h / (2 * z))
            ix0, iy0 = int(bx0), int(by0)
            crop = img[iy0:math.ceil(by1), ix0:math.ceil(bx1)]
            return np.asarray(Image.fromarray(crop).resize((w, h), Image.BILINEAR,
                                                           box=(bx0 - ix0, by0 - iy0, bx1 - ix0, by1 - iy0)))
        c, s = math.cos(r) / z, math.sin(r) / z
        ox, oy = -w / 2, -h / 2
        coeffs = (c, s, c * ox + s * oy + cx, -s, c, -s * ox + c * oy + cy)
        return np.asarray(Image.fromarray(img).transform((w, h), Image.AFFINE, coeffs, resample=Image.BILINEAR))


def _camera(rng: np.random.Generator, cfg: CutoutConfig, root: str) -> tuple[Camera, str]:
    h, w, T = cfg.height, cfg.width, cfg.num_frames
    if rng.random() < cfg.p_still:
        src = ps.PHOTOS[int(rng.integers(len(ps.PHOTOS)))]
        img = np.asarray(ps.photo(f"{root}/{src}"))
        frames = [img] * T
        z0 = ps.cover_scale(img.shape[1], img.shape[0], w, h) * float(rng.uniform(1.15, 2.0))
        z1 = z0 * math.exp(float(rng.uniform(-0.25, 0.25)))
        pan = rng.uniform(-1, 1, 2) * (0.25 * w / z0)  # over the video, in source pixels
        roll0, roll1 = (float(v) for v in rng.uniform(-0.05, 0.05, 2))
        shake = float(rng.uniform(0, 1.5))
    else:
        src = ps.CLIPS[int(rng.integers(len(ps.CLIPS)))]
        clip = ps.clip_frames(f"{root}/{src}")
        step = int(rng.integers(1, 3)) if len(clip) > 2 * T else 1
        start = int(rng.integers(max(1, len(clip) - step * (T - 1))))
        idx = [(start + step * t) % (2 * len(clip) - 2) for t in range(T)]
        idx = [i if i < len(clip) else 2 * len(clip) - 2 - i for i in idx]  # ping-pong past the end
        if rng.random() < 0.5:
            idx = idx[::-1]
        frames = [clip[i] for i in idx]
        img = frames[0]
        z0 = ps.cover_scale(img.shape[1], img.shape[0], w, h) * float(rng.uniform(1.0, 1.3))
        z1 = z0 * math.exp(float(rng.uniform(-0.08, 0.08)))
        pan = rng.uniform(-1, 1, 2) * (0.05 * w / z0)  # the footage moves already; a little more
        roll0 = roll1 = 0.0
        shake = float(rng.uniform(0, 0.6))
    ih, iw = img.shape[:2]
    c0 = rng.uniform(0.3, 0.7, 2) * (iw, ih)
    phase = rng.uniform(0, 6.28, 4)
    centre, zoom, roll = [], [], []
    for t in range(T):
        f = t / max(1, T - 1)
        z = z0 * (z1 / z0) ** f
        r = roll0 + (roll1 - roll0) * f
        jx = shake * (math.sin(1.7 * t + phase[0]) + 0.5 * math.sin(3.1 * t + phase[1]))
        jy = shake * (math.sin(1.3 * t + phase[2]) + 0.5 * math.sin(2.9 * t + phase[3]))
        # keep the (rotated) view inside the image
        hx = (w * abs(math.cos(r)) + h * abs(math.sin(r))) / (2 * z) + 1
        hy = (w * abs(math.sin(r)) + h * abs(math.cos(r))) / (2 * z) + 1
        cx = float(np.clip(c0[0] + pan[0] * (f - 0.5) + jx / z, hx, max(hx, iw - hx)))
        cy = float(np.clip(c0[1] + pan[1] * (f - 0.5) + jy / z, hy, max(hy, ih - hy)))
        centre.append((cx, cy))
        zoom.append(z)
        roll.append(r)
    return Camera(frames, centre, zoom, roll), src


# ----------------------------------------------------------------------------------------- scene
@dataclass
class Scene:
    camera: Camera
    layers: list[Layer]
    exposure: float
    light: tuple  # global: per-channel gain amplitude, period, phase, and a brightness ramp
    jpeg: int  # quality, 0 = none
    sources: list[str] = field(default_factory=list)  # every source its pixels come from


def _shape_sprite(rng: np.random.Generator, bank: ps.Bank) -> tuple[Image.Image, float, float, str]:
    """A geometric shape filled with a patch of a source image: (sprite, r_out, r_in, source)."""
    src, img = bank.images[int(rng.integers(len(bank.images)))]
    r = int(rng.integers(16, 40))
    aspect = float(rng.uniform(0.55, 1.0))
    shape = str(rng.choice(SHAPES))
    size = 2 * r + 8
    ih, iw = img.shape[:2]
    # the most textured of a few patches: a flat patch (wall, sky) would fill the shape with one colour
    spots = [(int(rng.integers(ih - size)), int(rng.integers(iw - size))) for _ in range(6)]
    y0, x0 = max(spots, key=lambda p: float(img[p[0]:p[0] + size:2, p[1]:p[1] + size:2].std()))
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    u, v = xx + 0.5 - size / 2, yy + 0.5 - size / 2
    blob = int(rng.integers(1 << 30))
    # a 2x supersampled membership gives the soft edge a real photo's object has
    sub = [_inside(shape, u + dx, v + dy, r, aspect, blob)
           for dx in (-0.25, 0.25) for dy in (-0.25, 0.25)]
    alpha = np.mean(sub, 0)
    rgba = np.dstack([img[y0:y0 + size, x0:x0 + size], (alpha * 255).round().astype(np.uint8)])
    r_in = r * aspect * (0.6 if shape in ("star", "triangle") else 0.75)
    return Image.fromarray(rgba, "RGBA"), r * max(1.0, aspect) * 1.5 + 2, r_in, src


def _light(rng: np.random.Generator, strength: float) -> tuple:
    base = float(rng.uniform(0, strength))
    amp = tuple(float(base + rng.uniform(-0.3, 0.3) * base) for _ in range(3))  # a colour shift, not only gain
    return amp, float(rng.uniform(12, 60)), float(rng.uniform(0, 6.28))


def _free_spot(rng, layers, r, h, w):
    for _ in range(50):
        c = (float(rng.uniform(0.15, 0.85) * w), float(rng.uniform(0.15, 0.85) * h))
        if all(math.dist(c, o.centre0) > 1.1 * (r + o.r_out * o.scale0) for o in layers):
            return c
    return c


def _layer(rng: np.random.Generator, cfg: CutoutConfig, sprite, r_out, label, source, centre, radius,
           calm: bool = False) -> Layer:
    h, w, T = cfg.height, cfg.width, cfg.num_frames
    k = w / 320
    speed = 0.5 if calm else 1.0
    return Layer(
        sprite=sprite, r_out=r_out, label=label, depth=float(rng.uniform(0, 1)), centre0=centre,
        velocity=(float(rng.uniform(-2.5, 2.5) * k * speed), float(rng.uniform(-1.5, 1.5) * k * speed)),
        swing=(float(rng.uniform(0, 0.15) * w * speed), float(rng.uniform(0, 0.12) * h * speed),
               float(rng.uniform(10, 40)), float(rng.uniform(0, 6.28))),
        scale0=radius / r_out, ramp=float(rng.uniform(-0.7, 0.7)) * speed,
        wobble=(float(rng.uniform(0, 0.12)), float(rng.uniform(12, 40))),
        angle0=float(rng.uniform(-0.35, 0.35)), spin=float(rng.uniform(-0.03, 0.03)), flip=bool(rng.random() < 0.5),
        gain=_light(rng, 0.25), num_frames=T, source=source)


def _draw_scene(rng: np.random.Generator, cfg: CutoutConfig, bank: ps.Bank, root: str) -> Scene:
    h, w, T = cfg.height, cfg.width, cfg.num_frames
    camera, bg_src = _camera(rng, cfg, root)
    segs = bank.segments
    n = int(rng.integers(cfg.min_objects, cfg.max_objects + 1))
    layers: list[Layer] = []
    picked: list[ps.Segment | None] = []
    for k in range(n):
        radius = float(rng.uniform(0.09, 0.22) * min(h, w))
        if rng.random() < cfg.p_shape:
            sprite, r_out, _, src = _shape_sprite(rng, bank)
            seg = None
        else:
            seg = segs[int(rng.integers(len(segs)))]
            sprite, r_out, src = seg.rgba, seg.r_out, seg.source
        layers.append(_layer(rng, cfg, sprite, r_out, k + 1, src, _free_spot(rng, layers, radius, h, w), radius))
        picked.append(seg)
    main = layers[0]
    if rng.random() < cfg.p_leave:  # swing object 1 out through the nearest side edge and back
        period = T * float(rng.uniform(0.9, 1.4))
        cx = main.centre0[0]
        direction = 1 if cx > w / 2 else -1
        edge = (w - cx) if direction > 0 else cx
        main.ramp, main.wobble = main.ramp * 0.3, (0.0, 30.0)
        r_max = main.r_out * main.scale0 * math.exp(abs(main.ramp) / 2)
        main.velocity = (0.0, float(rng.uniform(-0.3, 0.3)))
        main.swing = (direction * (edge + r_max + 0.1 * w), 0.0, period, 0.0)
    elif rng.random() < cfg.p_occlusion:  # a large nearer cut-out sweeps over object 1 while it holds still
        t_mid = int(rng.integers(T // 3, max(T // 3 + 1, 2 * T // 3)))
        main.pause = (t_mid - 4, t_mid + 4)
        main.depth, main.ramp, main.wobble, main.spin = -1.0, 0.0, (0.0, 30.0), 0.0
        main.scale0 = min(main.scale0, 0.12 * min(h, w) / main.r_out)
        r_obj = main.r_out * main.scale0
        px, py, _, _ = main.pose(t_mid)  # keep the held pose inside the frame
        dx = float(np.clip(px, r_obj + 2, w - r_obj - 2) - px)
        dy = float(np.clip(py, r_obj + 2, h - r_obj - 2) - py)
        main.centre0 = (main.centre0[0] + dx, main.centre0[1] + dy)
        px, py, _, _ = main.pose(t_mid)
        speed = float(rng.uniform(4.0, 7.0)) * w / 320 * (1 if rng.random() < 0.5 else -1)
        main.velocity = (-math.copysign(abs(main.velocity[0]) + 0.5, speed), main.velocity[1])
        roundish = [s for s in segs if s.r_in > 0.45 * s.r_out]
        if roundish and rng.random() < 0.7:
            occ = roundish[int(rng.integers(len(roundish)))]
            sprite, r_out, r_in, inner, src = occ.rgba, occ.r_out, occ.r_in, occ.inner, occ.source
        else:
            sprite, r_out, r_in, src = _shape_sprite(rng, bank)
            inner = (0.0, 0.0)
        # its inner disk must hold object 1 and its motion blur for a few frames of the sweep
        scale = (r_obj + abs(speed) * 2.5 + 3) / max(r_in, 1.0)
        label = n + 1 if n < cfg.max_objects and rng.random() < 0.3 else 0
        ox, oy = px - inner[0] * scale, py - inner[1] * scale
        layer = Layer(sprite=sprite, r_out=r_out, label=label, depth=3.0, centre0=(ox - speed * t_mid, oy),
                      velocity=(speed, 0.0), swing=(0.0, 0.0, 30.0, 0.0), scale0=scale, ramp=0.0, wobble=(0.0, 30.0),
                      angle0=0.0, spin=0.0, flip=False, gain=_light(rng, 0.15), num_frames=T, source=src,
                      inner=inner)
        layers.append(layer)
    for _ in range(int(rng.integers(0, cfg.max_distractors + 1))):  # look-alikes of a random annotated object
        i = int(rng.integers(n))
        src_layer, seg = layers[i], picked[i]
        if seg is not None and rng.random() < 0.5:  # another region of the same image
            same = [s for s in segs if s.image == seg.image and s is not seg]
            seg = same[int(rng.integers(len(same)))] if same else seg
            sprite, r_out = seg.rgba, seg.r_out
        else:
            sprite, r_out = src_layer.sprite, src_layer.r_out
        radius = src_layer.r_out * src_layer.scale0 * float(rng.uniform(0.8, 1.2))
        d = _layer(rng, cfg, sprite, r_out, 0, src_layer.source, _free_spot(rng, layers, radius, h, w), radius)
        layers.append(d)
    if rng.random() < cfg.p_occluder:  # something unannotated crossing the whole frame in front
        seg = segs[int(rng.integers(len(segs)))]
        radius = float(rng.uniform(0.15, 0.3) * min(h, w))
        side = 1 if rng.random() < 0.5 else -1
        speed = float(rng.uniform(w + 2 * radius, 2 * (w + 2 * radius)) / T)
        y = float(rng.uniform(0.2, 0.8) * h)
        x_start = w / 2 - side * (w / 2 + radius) - side * float(rng.uniform(0, 0.5)) * speed * T / 2
        layers.append(Layer(sprite=seg.rgba, r_out=seg.r_out, label=0, depth=2.0 + float(rng.random()),
                            centre0=(x_start, y), velocity=(side * speed, float(rng.uniform(-1, 1))),
                            swing=(0.0, float(rng.uniform(0, 0.05) * h), 30.0, 0.0), scale0=radius / seg.r_out,
                            ramp=0.0, wobble=(0.0, 30.0), angle0=float(rng.uniform(-0.3, 0.3)), spin=0.0,
                            flip=bool(rng.random() < 0.5), gain=_light(rng, 0.15), num_frames=T, source=seg.source))
    exposure = float(rng.uniform(0.2, 0.9)) if cfg.motion_blur else 0.0
    amp, period, phase = _light(rng, 0.2)
    light = (amp, period, phase, float(rng.uniform(-0.2, 0.2)))
    jpeg = int(rng.integers(cfg.jpeg_min, cfg.jpeg_max + 1)) if cfg.jpeg_min else 0
    return Scene(camera, layers, exposure, light, jpeg, sorted({bg_src, *(ly.source for ly in layers)}))


def layer_exposure(layer: Layer, t: float, exposure: float) -> float:
    """The video's exposure, shortened so that a layer's blur never spans more than its own size (a thin
    smear would fade below alpha 0.5 everywhere: invisible while in the frame)."""
    c0, c1 = layer.pose(t - 0.5), layer.pose(t + 0.5)
    step = math.hypot(c1[0] - c0[0], c1[1] - c0[1])
    return min(exposure, 0.8 * layer.r_out * c1[3] / step) if step > 0 else exposure


def _composite(scene: Scene, t: int, cfg: CutoutConfig) -> tuple[np.ndarray, np.ndarray, dict[int, bool]]:
    """Frame (H, W, 3) uint8, label map (H, W) uint8, and {label: its own alpha reaches 0.5 in the frame}."""
    h, w = cfg.height, cfg.width
    frame = scene.camera.view(t, h, w).astype(np.float32)
    labels = np.zeros((h, w), np.uint8)
    in_frame: dict[int, bool] = {}
    for layer in sorted(scene.layers, key=lambda ly: ly.depth):
        got = render_layer(layer, t, h, w, layer_exposure(layer, t, scene.exposure))
        seen = False
        if got is not None:
            y0, x0, colour, alpha = got
            bh, bw = alpha.shape
            region = frame[y0:y0 + bh, x0:x0 + bw]
            region += (colour * layer.light(t) - region) * alpha[..., None]
            hard = alpha >= 0.5
            labels[y0:y0 + bh, x0:x0 + bw][hard] = layer.label
            seen = bool(hard.any())
        if layer.label:
            in_frame[layer.label] = in_frame.get(layer.label, False) or seen
    amp, period, phase, ramp = scene.light
    gain = (1 + np.asarray(amp, np.float32) * math.sin(2 * math.pi * t / period + phase)) * \
        math.exp(ramp * (t / max(1, cfg.num_frames - 1) - 0.5))
    frame *= gain
    frame += 0.5
    frame = frame.clip(0, 255, out=frame).astype(np.uint8)
    if scene.jpeg:
        buf = io.BytesIO()
        Image.fromarray(frame).save(buf, format="JPEG", quality=scene.jpeg)
        frame = np.asarray(Image.open(buf).convert("RGB"))
    return frame, labels, in_frame


def events_of(labels: np.ndarray, in_frame: dict[int, np.ndarray], min_gap: int = 1) -> dict:
    """detect_events' rule from the label maps (T, H, W) and each object's per-frame in-frame flags (T,)."""
    return gap_events(labels, sorted(in_frame), lambda k, t: in_frame[k][t], min_gap)


def build_scene(seed: int, cfg: CutoutConfig | None = None, attempt: int = 0) -> Scene:
    """The scene of `seed`; `attempt` > 0 draws it again from another stream (see generate_video)."""
    cfg = cfg or CutoutConfig()
    cfg.check()
    root = ps.assets_root(cfg.assets)
    bank = ps.segment_bank(str(root))
    rng = np.random.default_rng(seed if attempt == 0 else (seed, attempt))
    return _draw_scene(rng, cfg, bank, str(root))


def generate_video(seed: int, cfg: CutoutConfig | None = None, name: str | None = None) -> SyntheticVideo:
    """One video, fully determined by (seed, cfg) (and the assets). As in DAVIS, every annotated object is
    visible on frame 0, where the evaluation prompts it: a scene with an object hidden there (about 1 in 20: it
    enters later, or a large occluder covers it) is drawn again."""
    cfg = cfg or CutoutConfig()
    for attempt in range(50):
        video = _render(build_scene(seed, cfg, attempt), cfg, name or f"cutout{seed:07d}")
        if video.object_ids and all((video.labels[0] == k).any() for k in video.object_ids):
            return video
    raise RuntimeError(f"cutout seed {seed}: no scene with every object visible on frame 0 in 50 draws")


def _render(scene: Scene, cfg: CutoutConfig, name: str) -> SyntheticVideo:
    frames, labels, flags = [], [], {}
    for t in range(cfg.num_frames):
        f, lab, inside = _composite(scene, t, cfg)
        frames.append(f)
        labels.append(lab)
        for k, v in inside.items():
            flags.setdefault(k, []).append(v)
    labels_a = np.stack(labels)
    in_frame = {k: np.array(v) for k, v in flags.items()}
    ids = sorted(k for k in in_frame if (labels_a == k).any())
    return SyntheticVideo(name, np.stack(frames), labels_a, ids, events_of(labels_a, in_frame))
