"""Training clips from DAVIS-layout folders, SA-V (frames + masklet JSON), COCO JSON images (one-frame
clips) and the synthetic generators.

A *source* lists videos; each video gives frames (H, W, 3) uint8 and per-object masks on demand. The
`ClipSampler` draws a random window (contiguous, or every k-th frame) and up to max_objects objects visible in its
first frame (RandomUniformSampler); `ClipDataset` adds augmentation, square resize and ImageNet normalisation.
"""
from __future__ import annotations

import io
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from PIL import Image

from samstream.transforms import IMAGENET_MEAN, IMAGENET_STD

from .augment import AugmentConfig, augment_clip, resize_clip


class Video(Protocol):
    name: str

    def __len__(self) -> int: ...  # number of (annotated) frames

    def frame(self, t: int) -> np.ndarray: ...  # (H, W, 3) uint8

    def objects(self, t: int) -> dict[int, np.ndarray]: ...  # {object id: (H, W) bool}, present objects only


@dataclass
class Clip:
    """A sampled clip. images (T, 3, S, S) float normalised; masks (T, O, S, S) bool, all-zero where absent.

    A batch of clips (`batch_clips`) is a Clip too: images (B, T, 3, S, S), the objects of all clips along
    the masks' O axis, and clip_of (O,) saying which clip each object belongs to."""

    name: str
    images: torch.Tensor
    masks: torch.Tensor
    object_ids: list[int]
    frame_indices: list[int]  # of the (first) clip
    clip_of: torch.Tensor | None = None  # (O,) int64, only for a batch

    @property
    def num_frames(self) -> int:
        return self.masks.shape[0]


def batch_clips(clips: list[Clip]) -> Clip:
    """Clips of the same length as one batch (see Clip); one clip is returned as it is."""
    if len(clips) == 1:
        return clips[0]
    lengths = sorted({c.num_frames for c in clips})
    if len(lengths) > 1:
        raise ValueError(f"clips of one batch must have the same number of frames, got {lengths} "
                         f"({', '.join(c.name for c in clips)}): use videos of at least --frames frames")
    clip_of = torch.cat([torch.full((c.masks.shape[1],), i, dtype=torch.int64) for i, c in enumerate(clips)])
    return Clip("+".join(c.name for c in clips), torch.stack([c.images for c in clips]),
                torch.cat([c.masks for c in clips], dim=1), [o for c in clips for o in c.object_ids],
                clips[0].frame_indices, clip_of)


def _rgb(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


# ------------------------------------------------------------------------------------------ DAVIS
class DavisVideo:
    def __init__(self, name: str, frames: list[Path], labels: list[Path]):
        self.name, self._frames, self._labels = name, frames, labels

    def __len__(self) -> int:
        return len(self._frames)

    def frame(self, t: int) -> np.ndarray:
        return _rgb(self._frames[t])

    def objects(self, t: int) -> dict[int, np.ndarray]:
        from samstream.io import read_label_png

        lab, _ = read_label_png(self._labels[t])
        if lab.max() == 255 and len(np.unique(lab)) == 2:  # DAVIS 2016 binary masks saved as 0/255
            lab = (lab > 0).astype(np.uint8)
        return {int(k): lab == k for k in np.unique(lab) if k not in (0, 255)}


def davis_videos(root: str | os.PathLike, resolution: str = "480p") -> list[DavisVideo]:
    """root/JPEGImages/<res>/<seq>/*.jpg + root/Annotations/<res>/<seq>/*.png; frames without a PNG are dropped."""
    root = Path(root)
    img_root, ann_root = root / "JPEGImages" / resolution, root / "Annotations" / resolution
    if not img_root.is_dir() or not ann_root.is_dir():
        raise FileNotFoundError(f"{root} is not a DAVIS-layout folder: need {img_root} and {ann_root}")
    videos = []
    for seq in sorted(p for p in img_root.iterdir() if p.is_dir()):
        frames, labels = [], []
        for f in sorted(seq.glob("*.jpg")):
            png = ann_root / seq.name / (f.stem + ".png")
            if png.is_file():
                frames.append(f)
                labels.append(png)
        if frames:
            videos.append(DavisVideo(seq.name, frames, labels))
    if not videos:
        raise ValueError(f"no annotated sequences in {img_root}")
    return videos


# ------------------------------------------------------------------------------------------ COCO
class CocoImage:
    """One image of a COCO file as a one-frame video; object ids are annotation ids."""

    def __init__(self, path: Path, info: dict, anns: list[dict], source: str):
        self.name, self._path, self._info, self._anns, self._source = str(info["id"]), path, info, anns, source

    def __len__(self) -> int:
        return 1

    def frame(self, t: int) -> np.ndarray:
        return _rgb(self._path)

    def objects(self, t: int) -> dict[int, np.ndarray]:
        from samstream.io import segmentation_to_mask

        h, w = self._info["height"], self._info["width"]
        out = {}
        for i, a in enumerate(self._anns):
            if a.get("iscrowd", 0):
                continue
            m = segmentation_to_mask(a["segmentation"], h, w, path=self._source, field=f"annotation {a.get('id')}")
            if m.any():
                out[int(a.get("id", i + 1))] = m
        return out


def coco_videos(json_path: str | os.PathLike, image_dir: str | os.PathLike | None = None) -> list[CocoImage]:
    """Images of a COCO JSON file that have at least one annotation; image_dir defaults to the JSON's folder."""
    from samstream.io import read_coco_json

    json_path = Path(json_path)
    coco = read_coco_json(json_path)
    if not coco.images:
        raise ValueError(f"{json_path} is a results file (no 'images'); training needs a dataset file")
    image_dir = Path(image_dir) if image_dir else json_path.parent
    by_image: dict = {}
    for a in coco.annotations:
        by_image.setdefault(a["image_id"], []).append(a)
    videos = []
    for img_id, anns in by_image.items():
        info = coco.images[img_id]
        path = image_dir / info["file_name"]
        if not path.is_file():
            raise FileNotFoundError(f"{json_path}: image {info['file_name']!r} not found in {image_dir}")
        videos.append(CocoImage(path, info, anns, str(json_path)))
    return videos


# ------------------------------------------------------------------------------------------ SA-V
class SavVideo:
    """SA-V: frames extracted to <root>/<video>/<frame:05d>.jpg (24 fps index) + <root>/<video>_manual.json."""

    def __init__(self, name: str, frame_dir: Path, json_path: Path):
        from samstream.io import load_sav_json

        self.name, self._dir = name, frame_dir
        self._m = load_sav_json(json_path)
        # keep annotated frames whose JPEG exists (rm_unannotated)
        self._keep = [(t, fi) for t, fi in enumerate(self._m.frame_indices) if (frame_dir / f"{fi:05d}.jpg").is_file()]
        if not self._keep:
            first = f"{self._m.frame_indices[0]:05d}.jpg"
            raise FileNotFoundError(f"{frame_dir}: none of the annotated frames (e.g. {first}) was extracted")

    def __len__(self) -> int:
        return len(self._keep)

    def frame(self, t: int) -> np.ndarray:
        return _rgb(self._dir / f"{self._keep[t][1]:05d}.jpg")

    def objects(self, t: int) -> dict[int, np.ndarray]:
        at = self._keep[t][0]
        out = {}
        for k, oid in enumerate(self._m.masklet_ids):
            m = self._m.mask(at, k)
            if m.any():
                out[int(oid)] = m
        return out


def sav_videos(root: str | os.PathLike) -> list[SavVideo]:
    root = Path(root)
    jsons = sorted(root.glob("*_manual.json"))
    if not jsons:
        raise ValueError(f"{root} holds no SA-V '*_manual.json' files")
    return [SavVideo(j.name.removesuffix("_manual.json"), root / j.name.removesuffix("_manual.json"), j) for j in jsons]


# ------------------------------------------------------------------------------------------ synthetic
class SynthVideo:
    """A synthetic video rendered in memory from its seed by a generator of samstream.train.generators
    (default shapes). With jpeg_quality its frames go through the same JPEG encoding a written synthetic
    folder applies, so they equal the frames read back from that folder."""

    def __init__(self, seed: int, cfg=None, jpeg_quality: int | None = None, generator: str = "shapes"):
        from . import generators

        generators.check_config(generator, cfg)
        self.seed, self.generator = seed, generator
        self.cfg = cfg or generators.default_config(generator)
        self.name = generators.sequence_name(generator, seed)
        self.jpeg_quality = jpeg_quality
        self._vid = None

    def _load(self):
        if self._vid is None:  # render lazily, once
            from .generators import generate_video

            self._vid = generate_video(self.generator, self.seed, self.cfg)
        return self._vid

    def __len__(self) -> int:
        return self.cfg.num_frames

    def frame(self, t: int) -> np.ndarray:
        f = self._load().frames[t]
        if self.jpeg_quality is None:
            return f
        buf = io.BytesIO()
        Image.fromarray(f).save(buf, format="JPEG", quality=self.jpeg_quality)
        return np.asarray(Image.open(buf).convert("RGB"))

    def objects(self, t: int) -> dict[int, np.ndarray]:
        lab = self._load().labels[t]
        return {int(k): lab == k for k in np.unique(lab) if k != 0}


def synthetic_videos(seeds, cfg=None, generator: str = "shapes") -> list[SynthVideo]:
    return [SynthVideo(int(s), cfg, generator=generator) for s in seeds]


class SynthVideoRange(Sequence):
    """The synthetic videos of seeds [start, stop), as a training set that costs no disk: a video is rendered
    (in ~0.1-0.2 s) when a clip is drawn from it and dropped after, so the range can be far larger than any set
    written to disk, and almost every clip comes from a video never seen before. Frames are JPEG-encoded as a
    written folder's are (the same pixels as `samstream synth` writes for the same seed and generator)."""

    def __init__(self, start: int, stop: int, cfg=None, jpeg_quality: int | None = None, generator: str = "shapes"):
        from . import generators
        from .synthetic import JPEG_QUALITY

        if not 0 <= start < stop:
            raise ValueError(f"need 0 <= start < stop for a synthetic seed range, got [{start}, {stop})")
        generators.check_config(generator, cfg)
        self.start, self.stop, self.cfg, self.generator = start, stop, cfg, generator
        self.jpeg_quality = JPEG_QUALITY if jpeg_quality is None else jpeg_quality

    def __len__(self) -> int:
        return self.stop - self.start

    def __getitem__(self, i: int) -> SynthVideo:
        if not -len(self) <= i < len(self):
            raise IndexError(f"video {i} of a range of {len(self)}")
        return SynthVideo(self.start + i % len(self), self.cfg, self.jpeg_quality, self.generator)


def _generator_of_spec(spec: str) -> str | None:
    """The generator a data spec names ('synthetic[:A:B]' = shapes, 'NAME:A:B'), None for a path."""
    from .generators import NAMES

    head = spec.split(":", 1)[0]
    if spec == "synthetic" or head == "synthetic":
        return "shapes"
    return head if head in NAMES and ":" in spec else None


def synthetic_range(spec: str, cfg=None) -> SynthVideoRange:
    """'synthetic' (shapes seeds 0-63), 'synthetic:START:END' (shapes), or 'GENERATOR:START:END' for a generator of
    samstream.train.generators ('cutout:0:900000'; END excluded): videos rendered when drawn."""
    generator = _generator_of_spec(spec)
    if spec == "synthetic":
        return SynthVideoRange(0, 64, cfg)
    if generator is None:
        raise ValueError(f"bad synthetic data {spec!r}: expected 'synthetic[:START:END]' or 'GENERATOR:START:END'")
    parts = spec.split(":")[1:]
    try:
        start, stop = (int(p) for p in parts)
    except ValueError:
        raise ValueError(f"bad synthetic data {spec!r}: expected 'synthetic' or '{spec.split(':')[0]}:START:END'") \
            from None
    if not 0 <= start < stop:
        raise ValueError(f"bad synthetic data {spec!r}: need 0 <= START < END")
    return SynthVideoRange(start, stop, cfg, generator=generator)


class MixedVideos(Sequence):
    """Several video sequences as one, one after another: a sampler drawing an index uniformly draws from each
    part in proportion to its length ('cutout:0:600000+shapes:0:300000' is 2/3 cutout)."""

    def __init__(self, parts: Sequence[Sequence]):
        self.parts = list(parts)
        self._ends = np.cumsum([len(p) for p in self.parts])

    def __len__(self) -> int:
        return int(self._ends[-1]) if len(self._ends) else 0

    def __getitem__(self, i: int):
        if not -len(self) <= i < len(self):
            raise IndexError(f"video {i} of a mixture of {len(self)}")
        i %= len(self)
        k = int(np.searchsorted(self._ends, i, side="right"))
        return self.parts[k][i - (int(self._ends[k - 1]) if k else 0)]


def open_videos(spec: str, **kw) -> Sequence:
    """'synthetic[:START:END]', 'cutout:START:END' (or another generator's name), a DAVIS folder, a SA-V folder,
    or a COCO JSON file (layout detected); 'A+B' is the mixture of A and B (MixedVideos)."""
    if "+" in spec and all(_generator_of_spec(s) is not None for s in spec.split("+")):
        return MixedVideos([synthetic_range(s, kw.get("synth_cfg")) for s in spec.split("+")])
    if _generator_of_spec(spec) is not None:
        return synthetic_range(spec, kw.get("synth_cfg"))
    p = Path(spec)
    if p.is_file() and p.suffix == ".json":
        return coco_videos(p)
    if not p.exists():
        raise FileNotFoundError(f"training data not found: {p}")
    if (p / "JPEGImages").is_dir():
        return davis_videos(p)
    if any(p.glob("*_manual.json")):
        return sav_videos(p)
    raise ValueError(f"cannot tell the layout of {p}: expected JPEGImages/ + Annotations/ (DAVIS), "
                     f"*_manual.json (SA-V), a COCO .json file, 'synthetic[:START:END]' or 'cutout:START:END'")


# ------------------------------------------------------------------------------------------ sampling
class ClipSampler:
    """Random window of num_frames, every `stride`-th frame with stride drawn from 1..max_stride (longer
    strides teach larger motions and whole occlusions within a short clip), reversed with prob reverse_prob,
    and <= max_objects objects visible in its first frame; retries up to 1000 times.

    hard_prob: chance of drawing a *hard* window instead, one in which a chosen object loses at least
    (1 - hard_ratio) of its first-frame area on some later frame (covered, leaving, vanishing): the windows
    where trackers fail, found from the ground truth alone. Videos without one fall back to the plain draw.
    """

    def __init__(self, num_frames: int, max_objects: int, reverse_prob: float = 0.0, max_stride: int = 1,
                 hard_prob: float = 0.0, hard_ratio: float = 0.25):
        if num_frames < 1 or max_stride < 1:
            raise ValueError(f"frames per clip and max_stride must be >= 1, got {num_frames}, {max_stride}")
        if not 0.0 <= hard_prob <= 1.0 or not 0.0 < hard_ratio < 1.0:
            raise ValueError(f"need 0 <= hard_prob <= 1 and 0 < hard_ratio < 1, got {hard_prob}, {hard_ratio}")
        self.num_frames, self.max_objects, self.reverse_prob = num_frames, max_objects, reverse_prob
        self.max_stride, self.hard_prob, self.hard_ratio = max_stride, hard_prob, hard_ratio
        self._areas: dict[str, dict[int, np.ndarray]] = {}  # video name -> {object id: (n,) visible pixels}

    def areas(self, video) -> dict[int, np.ndarray]:
        """Visible area of every object on every frame, read once per video."""
        if video.name not in self._areas:
            per_frame = [{k: int(m.sum()) for k, m in video.objects(t).items()} for t in range(len(video))]
            ids = sorted({k for f in per_frame for k in f})
            self._areas[video.name] = {k: np.array([f.get(k, 0) for f in per_frame]) for k in ids}
        return self._areas[video.name]

    def _hard_windows(self, video, reverse: bool) -> list[tuple[list[int], list[int]]]:
        """Every window (frame indices, hard object ids) with at least one hard object."""
        n, t = len(video), min(self.num_frames, len(video))
        if t < 2:
            return []  # no later frame to lose area on (and no need to read the video's labels)
        areas = self.areas(video)
        out = []
        for stride in range(1, self.max_stride + 1):
            span = (t - 1) * stride + 1  # strides too long for the video give no window
            for start in range(n - span + 1):
                idx = list(range(start, start + span, stride))[::-1 if reverse else 1]
                hard = [k for k, a in areas.items() if a[idx[0]] > 0 and a[idx[1:]].min() < self.hard_ratio * a[idx[0]]]
                if hard:
                    out.append((idx, hard))
        return out

    def _hard_sample(self, video, rng: np.random.Generator):
        windows = self._hard_windows(video, bool(rng.random() < self.reverse_prob))
        if not windows:
            return None
        idx, hard = windows[int(rng.integers(len(windows)))]
        first = video.objects(idx[0])
        must = hard[int(rng.integers(len(hard)))]  # one hard object always, the rest drawn from all visible
        others = [k for k in sorted(first) if k != must]
        k = min(self.max_objects - 1, len(others))
        pick = [others[i] for i in rng.choice(len(others), size=k, replace=False).tolist()] if k else []
        return idx, sorted([must, *pick]), first

    def sample(self, video, rng: np.random.Generator) -> tuple[list[int], list[int], dict[int, np.ndarray]]:
        # no draw at hard_prob 0 (nor a stride draw at max_stride 1): the data stream of older runs is unchanged
        if self.hard_prob > 0 and rng.random() < self.hard_prob:
            got = self._hard_sample(video, rng)
            if got is not None:
                return got
        n = len(video)
        for _ in range(1000):
            t = min(self.num_frames, n)
            stride = 1
            if self.max_stride > 1 and t > 1:
                stride = min(int(rng.integers(1, self.max_stride + 1)), (n - 1) // (t - 1))
            span = (t - 1) * stride + 1
            start = int(rng.integers(0, n - span + 1))
            idx = list(range(start, start + span, stride))
            if rng.random() < self.reverse_prob:
                idx = idx[::-1]
            first = video.objects(idx[0])
            if first:
                ids = sorted(first)
                pick = sorted(rng.choice(len(ids), size=min(self.max_objects, len(ids)), replace=False).tolist())
                return idx, [ids[i] for i in pick], first
        raise ValueError(f"video {video.name}: no window with a visible object in its first frame")


DEFAULT_AUGMENT = AugmentConfig()  # pass None for no augmentation


class ClipDataset:
    """Draws clips from a list of videos. Randomness comes only from the rng passed in, so a trainer
    that saves that rng's state resumes the exact same data stream."""

    def __init__(self, videos: list, image_size: int, num_frames: int = 1, max_objects: int = 3,
                 augment: AugmentConfig | None = DEFAULT_AUGMENT, reverse_prob: float = 0.0, max_stride: int = 1,
                 hard_prob: float = 0.0):
        if not videos:
            raise ValueError("ClipDataset needs at least one video")
        self.videos, self.image_size = videos, image_size
        self.sampler = ClipSampler(num_frames, max_objects, reverse_prob, max_stride, hard_prob)
        self.augment = augment

    def __len__(self) -> int:
        return len(self.videos)

    def clip(self, i: int, rng: np.random.Generator) -> Clip:
        video = self.videos[i]
        idx, ids, first = self.sampler.sample(video, rng)
        frames = np.stack([video.frame(t) for t in idx])  # (T, H, W, 3)
        h, w = frames.shape[1:3]
        masks = np.zeros((len(idx), len(ids), h, w), bool)  # objects missing later get all-zero targets
        for j, t in enumerate(idx):
            objs = first if j == 0 else video.objects(t)
            for o, oid in enumerate(ids):
                if oid in objs:
                    masks[j, o] = objs[oid]
        if self.augment is not None:
            frames, masks = augment_clip(frames, masks, rng, self.augment)
        frames, masks = resize_clip(frames, masks, self.image_size)
        x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2) / 255.0  # (T, 3, S, S)
        mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
        return Clip(video.name, (x - mean) / std, torch.from_numpy(masks), ids, idx)

    def sample(self, rng: np.random.Generator) -> Clip:
        """A clip from a uniformly drawn video, skipping clips whose objects vanish under augmentation."""
        for _ in range(100):
            c = self.clip(int(rng.integers(len(self.videos))), rng)
            if c.masks[0].flatten(1).any(1).any():
                return c
        raise ValueError("could not sample a clip with a visible object in 100 tries")
