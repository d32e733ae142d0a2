"""Sprites, trajectories and camera backgrounds of the collage generator (samstream.train.synthetic_collage).

A sprite is a colour image with a soft alpha in its own pixel grid; a trajectory gives its pose (centre,
scale, angle) at any time. Rendering warps both with one affine map, and the object is exactly where the
warped alpha reaches 0.5, so the colour painted and the label written come from the same samples.

Shape sources: smooth random closed curves (low-order Fourier radius), thick letter-like Bezier strokes,
the horse silhouette and coins cut from their plain background by a global threshold, tall posts (the full
occluders) and thin bars / branches. All but the coins are filled with a patch of a photo.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

SUPER = 4  # supersampling of rasterised outlines: the alpha's edge is an area fraction, so warps stay smooth


@dataclass
class Sprite:
    colour: Image.Image  # RGB, (h, w)
    alpha: Image.Image  # mode "F", (h, w), 0..1
    radius: float  # farthest object pixel from the sprite centre, in sprite pixels

    @classmethod
    def of(cls, colour: np.ndarray, alpha: np.ndarray) -> Sprite:
        """From (h, w, 3) uint8 colour and (h, w) float alpha; shades the colour so it reads as a solid."""
        h, w = alpha.shape
        yy, xx = np.nonzero(alpha >= 0.5)
        radius = float(np.hypot(xx + 0.5 - w / 2, yy + 0.5 - h / 2).max()) if len(xx) else 1.0
        # darker towards the outline (blurred alpha as a cheap bevel) so flat photo patches look curved
        blur = np.asarray(Image.fromarray((alpha * 255).astype(np.uint8)).filter(
            ImageFilter.GaussianBlur(max(1.0, 0.12 * radius))), np.float32) / 255
        shade = 0.7 + 0.3 * np.clip(blur * 1.6 - 0.3, 0, 1)
        col = np.clip(colour.astype(np.float32) * shade[..., None], 0, 255).astype(np.uint8)
        return cls(Image.fromarray(col), Image.fromarray(alpha.astype(np.float32), "F"), radius)


def _raster(draw_fn, h: int, w: int) -> np.ndarray:
    """(h, w) float alpha of what draw_fn(ImageDraw, k) paints at SUPER x resolution (k = the factor)."""
    big = Image.new("L", (w * SUPER, h * SUPER), 0)
    draw_fn(ImageDraw.Draw(big), SUPER)
    return np.asarray(big.resize((w, h), Image.BOX), np.float32) / 255


def fill_patch(rng: np.random.Generator, photo: np.ndarray, h: int, w: int) -> np.ndarray:
    """(h, w, 3) uint8: a random crop of photo (H, W, 3), zoomed by a random factor, maybe mirrored."""
    ph, pw = photo.shape[:2]
    z = float(rng.uniform(0.6, 1.6))
    ch, cw = min(ph, max(8, int(h * z))), min(pw, max(8, int(w * z)))
    for _ in range(4):  # prefer a crop that is neither near black nor blown out: objects keep some texture
        y0, x0 = int(rng.integers(ph - ch + 1)), int(rng.integers(pw - cw + 1))
        if 45 <= photo[y0:y0 + ch:4, x0:x0 + cw:4].mean() <= 215:
            break
    patch = Image.fromarray(photo[y0:y0 + ch, x0:x0 + cw]).resize((w, h), Image.BILINEAR)
    out = np.asarray(patch)
    return out[:, ::-1].copy() if rng.random() < 0.5 else out.copy()


def tint(img: np.ndarray, colour, amount: float) -> np.ndarray:
    """Blend img (..., 3) towards its luminance times colour (3,): recolours a patch, keeps its detail."""
    f = img.astype(np.float32)
    lum = f.mean(-1, keepdims=True) / 128
    return np.clip(f * (1 - amount) + lum * np.asarray(colour, np.float32) * amount, 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------------------- shapes
def fourier_blob(rng: np.random.Generator, fill: np.random.Generator, photo: np.ndarray, radius: int) -> Sprite:
    """A smooth random closed curve: radius 1 + low harmonics, stretched and bent, filled with photo."""
    n = 256
    th = np.linspace(0, 2 * np.pi, n, endpoint=False)
    r = np.ones(n)
    for k in range(2, 7):
        r += rng.uniform(-0.45, 0.45) / k * np.cos(k * th + rng.uniform(0, 2 * np.pi))
    r = np.clip(r, 0.35, None)
    aspect = rng.uniform(0.5, 1.0)
    x, y = r * np.cos(th), r * np.sin(th) * aspect
    x = x + rng.uniform(-0.4, 0.4) * y ** 2  # bend: beans and kidneys, not only star-shaped outlines
    scale = radius / max(np.abs(x).max(), np.abs(y).max())
    size = 2 * radius + 4
    pts = np.stack([x * scale + size / 2, y * scale + size / 2], 1)
    alpha = _raster(lambda d, k: d.polygon([tuple(p) for p in pts * k], fill=255), size, size)
    return Sprite.of(fill_patch(fill, photo, size, size), alpha)


def stroke(rng: np.random.Generator, fill: np.random.Generator, photo: np.ndarray, radius: int) -> Sprite:
    """A letter-like glyph: 1-3 thick Bezier strokes with round caps and joints, one colour family."""
    size = 2 * radius + 4
    width = float(rng.uniform(0.22, 0.38)) * radius
    reach = radius - width / 2 - 1
    strokes = []
    for _ in range(int(rng.integers(1, 4))):
        ctrl = rng.uniform(-reach, reach, (4, 2))
        s = np.linspace(0, 1, 24)[:, None]
        curve = ((1 - s) ** 3 * ctrl[0] + 3 * (1 - s) ** 2 * s * ctrl[1] + 3 * (1 - s) * s ** 2 * ctrl[2]
                 + s ** 3 * ctrl[3])
        strokes.append(curve + size / 2)

    def draw(d, k):
        for c in strokes:
            d.line([tuple(p) for p in c * k], fill=255, width=int(width * k), joint="curve")
            for p in (c[0], c[-1]):
                d.ellipse([*(p * k - width * k / 2), *(p * k + width * k / 2)], fill=255)

    alpha = _raster(draw, size, size)
    colour = tint(fill_patch(fill, photo, size, size), fill.integers(40, 256, 3), float(fill.uniform(0.4, 0.9)))
    return Sprite.of(colour, alpha)


def horse(rng: np.random.Generator, fill: np.random.Generator, silhouette: np.ndarray, photo: np.ndarray,
          radius: int) -> Sprite:
    """The horse silhouette (bool (H, W), True = horse), scaled to radius, mirrored or not, photo-filled."""
    yy, xx = np.nonzero(silhouette)
    crop = silhouette[yy.min():yy.max() + 1, xx.min():xx.max() + 1].astype(np.float32)
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    h, w = crop.shape
    s = 2 * radius / math.hypot(h, w)
    nh, nw = max(4, round(h * s)), max(4, round(w * s))
    alpha = np.zeros((nh + 4, nw + 4), np.float32)
    alpha[2:-2, 2:-2] = np.asarray(Image.fromarray(crop * 255).resize((nw, nh), Image.BOX), np.float32) / 255
    colour = tint(fill_patch(fill, photo, nh + 4, nw + 4), fill.integers(60, 220, 3), float(fill.uniform(0.3, 0.7)))
    return Sprite.of(colour, alpha)


def coin_masks(gray: np.ndarray) -> list[tuple[slice, slice, np.ndarray]]:
    """Coins of a grey image on a plainer background: (rows, cols, bool mask) per coin, by a global
    (Otsu) threshold, hole filling and connected components. Components touching the border or far
    from coin-sized are dropped."""
    from scipy import ndimage

    hist = np.bincount(gray.ravel(), minlength=256).astype(np.float64)
    p = hist / hist.sum()
    w0, mu = np.cumsum(p), np.cumsum(p * np.arange(256))
    between = (mu[-1] * w0 - mu) ** 2 / np.maximum(w0 * (1 - w0), 1e-12)
    fg = ndimage.binary_opening(ndimage.binary_fill_holes(gray > int(np.argmax(between))), iterations=2)
    lab, _ = ndimage.label(fg)
    out = []
    for i, sl in enumerate(ndimage.find_objects(lab), 1):
        m = lab[sl] == i
        h, w = m.shape
        touches = sl[0].start == 0 or sl[1].start == 0 or sl[0].stop == gray.shape[0] or sl[1].stop == gray.shape[1]
        if not touches and 15 <= min(h, w) and max(h, w) <= 2 * min(h, w) and m.mean() > 0.6:
            out.append((sl[0], sl[1], m))
    return out


def coin(rng: np.random.Generator, fill: np.random.Generator, gray: np.ndarray, coins: list, radius: int) -> Sprite:
    """One coin of the coins photo (its own pixels, given a metal tint), scaled to radius."""
    rows, cols, m = coins[int(rng.integers(len(coins)))]
    h, w = m.shape
    s = 2 * radius / math.hypot(h, w) * 1.35  # coins are round: their radius is ~ the half-width, not half-diagonal
    nh, nw = max(4, round(h * s)), max(4, round(w * s))
    alpha = np.zeros((nh + 4, nw + 4), np.float32)
    alpha[2:-2, 2:-2] = np.asarray(Image.fromarray(m.astype(np.float32) * 255).resize((nw, nh), Image.BILINEAR),
                                   np.float32) / 255
    g = np.zeros((nh + 4, nw + 4), np.uint8)
    g[2:-2, 2:-2] = np.asarray(Image.fromarray(gray[rows, cols]).resize((nw, nh), Image.BILINEAR))
    metal = [(205, 150, 90), (200, 200, 205), (225, 190, 90)][int(fill.integers(3))]
    colour = tint(np.repeat(g[..., None], 3, -1), metal, float(fill.uniform(0.6, 0.95)))
    return Sprite.of(colour, alpha)


def post(rng: np.random.Generator, photo: np.ndarray, half_width: float, height: int) -> Sprite:
    """A tall post / trunk with slightly wavy sides and cylindrical shading (a full occluder)."""
    w = int(2 * half_width * 1.12) + 6
    yy = np.arange(height)[:, None] + 0.5
    xx = np.arange(w)[None, :] + 0.5 - w / 2
    wave = half_width * (1.06 + 0.04 * np.sin(yy / height * rng.uniform(3, 9) + rng.uniform(0, 6.3)))
    alpha = np.clip(wave - np.abs(xx) + 0.5, 0, 1).astype(np.float32)
    colour = tint(fill_patch(rng, photo, height, w), rng.integers(60, 200, 3), float(rng.uniform(0.2, 0.6)))
    cyl = 0.55 + 0.45 * np.sqrt(np.clip(1 - (xx / (half_width * 1.1)) ** 2, 0, 1))  # round, lit from the front
    colour = (colour * cyl[..., None]).astype(np.uint8)
    return Sprite(Image.fromarray(colour), Image.fromarray(alpha, "F"), math.hypot(w, height) / 2)


def thin_structure(rng: np.random.Generator, photo: np.ndarray, h: int, w: int) -> Sprite:
    """Bars (a fence, blinds) or branches over a canvas larger than the frame (it drifts and turns)."""
    size = int(1.5 * math.hypot(h, w))
    lines = []
    if rng.random() < 0.5:
        gap, thick, ang = float(rng.uniform(30, 70)), float(rng.uniform(2, 6)), float(rng.uniform(-0.5, 0.5))
        c, s = math.cos(ang), math.sin(ang)
        for off in np.arange(-size / 2, size / 2, gap) + rng.uniform(0, gap):
            a, b = np.array([off * c, off * s]), np.array([-s, c]) * size
            lines.append((a - b + size / 2, a + b + size / 2, thick))
    else:
        def branch(p, ang, length, thick, depth):
            q = p + length * np.array([math.cos(ang), math.sin(ang)])
            lines.append((p, q, thick))
            if depth < 4:
                for _ in range(2):
                    branch(q, ang + rng.uniform(-0.8, 0.8), length * rng.uniform(0.55, 0.8), max(1.5, thick * 0.65),
                           depth + 1)

        for _ in range(int(rng.integers(1, 3))):
            side = rng.uniform(0, 2 * np.pi)
            start = size / 2 + 0.45 * min(h, w) * np.array([math.cos(side), math.sin(side)]) * 1.4
            branch(start, side + np.pi + rng.uniform(-0.5, 0.5), min(h, w) * rng.uniform(0.3, 0.5),
                   float(rng.uniform(4, 9)), 0)

    def draw(d, k):
        for a, b, t in lines:
            d.line([tuple(a * k), tuple(b * k)], fill=255, width=max(1, int(t * k)), joint="curve")

    alpha = _raster(draw, size, size)
    colour = tint(fill_patch(rng, photo, size, size), rng.integers(20, 140, 3), float(rng.uniform(0.5, 0.9)))
    return Sprite(Image.fromarray(colour), Image.fromarray(alpha, "F"), size / 2)


# ----------------------------------------------------------------------------------------- motion
@dataclass
class Spin:
    """Scale and angle over time: exponential growth (approach / recede) and accelerating rotation."""

    scale0: float = 1.0
    growth: float = 0.0  # log scale change per frame
    angle0: float = 0.0
    spin: float = 0.0  # rad / frame
    spin_acc: float = 0.0  # rad / frame^2

    def at(self, t: float) -> tuple[float, float]:
        return self.scale0 * math.exp(self.growth * t), self.angle0 + self.spin * t + 0.5 * self.spin_acc * t * t


@dataclass
class Waypoints:
    """Centre through (time, x, y) keys by a cubic Hermite spline with Catmull-Rom tangents: uneven key
    spacing gives acceleration and braking; times outside the keys hold the end keys' motion linearly."""

    times: list[float]
    xy: list[tuple[float, float]]
    spin: Spin

    def pose(self, t: float) -> tuple[float, float, float, float]:
        ts, p = np.asarray(self.times, float), np.asarray(self.xy, float)
        m = np.gradient(p, ts, axis=0)
        i = int(np.clip(np.searchsorted(ts, t, side="right") - 1, 0, len(ts) - 2))
        dt = ts[i + 1] - ts[i]
        u = (t - ts[i]) / dt
        if u < 0 or u > 1:  # linear beyond the ends
            j = 0 if u < 0 else i + 1
            c = p[j] + m[j] * (t - ts[j])
        else:
            h00, h10, h01, h11 = 2 * u**3 - 3 * u**2 + 1, u**3 - 2 * u**2 + u, -2 * u**3 + 3 * u**2, u**3 - u**2
            c = h00 * p[i] + h10 * dt * m[i] + h01 * p[i + 1] + h11 * dt * m[i + 1]
        return (float(c[0]), float(c[1]), *self.spin.at(t))


def _fold(x: float, lo: float, hi: float) -> float:
    """x reflected into [lo, hi] (a bounce off each wall it reaches)."""
    span = max(hi - lo, 1e-6)
    y = (x - lo) % (2 * span)
    return lo + (y if y <= span else 2 * span - y)


@dataclass
class Bounce:
    """Ballistic centre (velocity + constant acceleration) that bounces off the walls of a box."""

    start: tuple[float, float]
    velocity: tuple[float, float]
    accel: tuple[float, float]
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 the centre stays in
    spin: Spin

    def pose(self, t: float) -> tuple[float, float, float, float]:
        x = self.start[0] + self.velocity[0] * t + 0.5 * self.accel[0] * t * t
        y = self.start[1] + self.velocity[1] * t + 0.5 * self.accel[1] * t * t
        return (_fold(x, self.box[0], self.box[2]), _fold(y, self.box[1], self.box[3]), *self.spin.at(t))


@dataclass
class Sweep:
    """Passes over another trajectory: its centre plus offset + velocity * (t - t_meet) (so it sits exactly
    on the target at t_meet)."""

    target: Waypoints | Bounce
    t_meet: float
    offset: tuple[float, float]
    velocity: tuple[float, float]
    spin: Spin

    def pose(self, t: float) -> tuple[float, float, float, float]:
        x, y, _, _ = self.target.pose(t)
        dt = t - self.t_meet
        return (x + self.offset[0] + self.velocity[0] * dt, y + self.offset[1] + self.velocity[1] * dt,
                *self.spin.at(t))


# ----------------------------------------------------------------------------------------- backgrounds
@dataclass
class ClipBackground:
    """Consecutive real frames (every `stride`-th, maybe reversed), one fixed crop; no added camera motion."""

    frames: list  # callables () -> (h', w', 3) uint8, one per clip frame used
    x0: int
    y0: int
    flip: bool

    def at(self, t: int, h: int, w: int) -> np.ndarray:
        f = self.frames[t]()[self.y0:self.y0 + h, self.x0:self.x0 + w]
        return f[:, ::-1] if self.flip else f

    def shake(self, t: float) -> tuple[float, float]:
        return 0.0, 0.0


@dataclass
class StillBackground:
    """A still photo seen by a virtual camera: centre drift, zoom, roll and hand shake (in screen pixels)."""

    photo: Image.Image
    c0: tuple[float, float]
    c1: tuple[float, float]  # photo point at the frame centre at the first / last frame
    zoom: tuple[float, float]  # screen pixels per photo pixel, first / last frame
    roll: tuple[float, float]  # radians
    shake_amp: float
    shake_phase: np.ndarray  # (2, 3) phases of three sinusoids per axis
    num_frames: int

    def shake(self, t: float) -> tuple[float, float]:
        f = (0.9, 2.1, 3.7)  # rad / frame: a slow sway and a faster tremor
        s = [sum(math.sin(fk * t + p) / (k + 1) for k, (fk, p) in enumerate(zip(f, ph))) for ph in self.shake_phase]
        return self.shake_amp * s[0], self.shake_amp * s[1]

    def at(self, t: int, h: int, w: int) -> np.ndarray:
        u = t / max(1, self.num_frames - 1)
        z = self.zoom[0] * (self.zoom[1] / self.zoom[0]) ** u
        a = self.roll[0] + (self.roll[1] - self.roll[0]) * u
        sx, sy = self.shake(t)
        cx = self.c0[0] + (self.c1[0] - self.c0[0]) * u
        cy = self.c0[1] + (self.c1[1] - self.c0[1]) * u
        c, s = math.cos(a) / z, math.sin(a) / z
        # photo point = centre + R(a) (screen - frame centre + shake) / z: the content moves against the shake
        ox, oy = -w / 2 + sx, -h / 2 + sy
        data = (c, -s, cx + c * ox - s * oy, s, c, cy + s * ox + c * oy)
        return np.asarray(self.photo.transform((w, h), Image.AFFINE, data, resample=Image.BILINEAR))


def still_camera(rng: np.random.Generator, photo: np.ndarray, h: int, w: int, num_frames: int) -> StillBackground:
    """A virtual camera's path over photo (H, W, 3) that keeps the frame (h, w) inside the photo."""
    ph, pw = photo.shape[:2]
    roll = tuple(float(x) for x in rng.uniform(-0.12, 0.12, 2))
    amp = float(rng.uniform(0.5, 3.0))
    # zoom at least what keeps the rotated, shaken frame inside the photo
    ext_w = w * math.cos(0.12) + h * math.sin(0.12) + 8 * amp
    ext_h = w * math.sin(0.12) + h * math.cos(0.12) + 8 * amp
    zmin = 1.02 * max(ext_w / pw, ext_h / ph)
    z0 = zmin * float(rng.uniform(1.0, 1.8))
    z1 = max(zmin, z0 * float(np.exp(rng.uniform(-0.4, 0.4))))
    zlo = min(z0, z1)
    mx, my = ext_w / zlo / 2, ext_h / zlo / 2  # half extent in photo pixels at the widest view

    def spot():
        return (float(rng.uniform(mx, max(mx, pw - mx))), float(rng.uniform(my, max(my, ph - my))))

    c0 = spot()
    c1 = c0 if rng.random() < 0.3 else spot()
    c1 = (c0[0] + (c1[0] - c0[0]) * 0.4, c0[1] + (c1[1] - c0[1]) * 0.4)  # a pan, not a jump
    return StillBackground(Image.fromarray(photo), c0, c1, (z0, z1), roll, amp, rng.uniform(0, 6.3, (2, 3)),
                           num_frames)


def pingpong(i: int, n: int) -> int:
    """Index i of an endless forth-and-back playback of n frames."""
    i %= max(1, 2 * n - 2)
    return i if i < n else 2 * n - 2 - i
