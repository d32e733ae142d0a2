"""Interactive image evaluation of a promptable model with simulated clicks (SAM / SAM 2 protocol).

Per object, click k (1-based) sends the predictor *all* clicks so far and, from the second click
on, the low-res logits of the mask it chose at the previous click as `mask_input` (SAM's mask
prompt). The first click asks for three masks (`multimask_output=True`) and keeps the one with the
highest predicted IoU score; later clicks ask for a single mask. The click positions and the
metrics (mIoU@1, mIoU@5, NoC@85, NoC@90 with at most 20 clicks) come from `clicks.py`.

Datasets:
* DAVIS layout (`davis_image_samples`): every annotated frame of every sequence is an image and
  each object id in it a separate sample (ids 1..254; 255 is void and counts as background).
  `every=N` keeps frames 0, N, 2N, ... of each sequence's sorted annotated frames.
* COCO JSON + image folder (`coco_image_samples`): one sample per annotation (crowd annotations
  and empty masks skipped); `every=N` keeps every N-th image.
Samples are `(image, gt_mask, name)`: image a path or HxWx3 uint8 array, gt a (H, W) bool mask.
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..io.atomic import atomic_write_text
from ..io.folders import list_pngs, list_subdirs
from ..plotting import pyplot, save_figure
from .clicks import ClickTrace, simulate_clicks, summarize_clicks
from .dataset import read_labels, resolve_mask_root

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".JPG", ".JPEG", ".PNG")


# ------------------------------------------------------------------------------------------ protocol
def sam_click_predictor(predictor, multimask_first: bool = True):
    """Wrap an image predictor (image already set) as the `predict(points, labels, prev_logits)` that
    `simulate_clicks` calls: returns (chosen mask (H, W) bool, its low-res logits (1, L, L))."""

    def predict(points: np.ndarray, labels: np.ndarray, prev_logits):
        first = prev_logits is None
        masks, scores, low = predictor.predict(points, labels, mask_input=prev_logits,
                                               multimask_output=multimask_first and first)
        masks, scores, low = np.asarray(masks), np.asarray(scores).reshape(-1), np.asarray(low)
        best = int(np.argmax(scores))  # the single mask when multimask_output=False
        return masks[best], low[best: best + 1]

    return predict


@dataclass
class ImageClickResults:
    """Per-object IoU traces and their summary (keys of `summarize_clicks`)."""

    names: list[str]
    traces: list[ClickTrace]
    summary: dict[str, float]
    max_clicks: int
    settings: dict = field(default_factory=dict)

    @property
    def mean_iou_per_click(self) -> list[float]:
        """Mean IoU over objects after 1, 2, ..., max_clicks clicks."""
        return np.mean([t.ious for t in self.traces], axis=0).astype(float).tolist()

    def to_dict(self) -> dict:
        return {
            **self.summary,
            "max_clicks": self.max_clicks,
            "mean_iou_per_click": self.mean_iou_per_click,
            "settings": self.settings,
            "samples": [{"name": n, "ious": [float(v) for v in t.ious],
                         "clicks": [[c.x, c.y, int(c.positive)] for c in t.clicks]}
                        for n, t in zip(self.names, self.traces)],
        }


def _same_image(a, b) -> bool:
    if a is b:
        return True
    if isinstance(a, (str, os.PathLike)) and isinstance(b, (str, os.PathLike)):
        return Path(a) == Path(b)
    return False


def evaluate_image_clicks(
    predictor,
    samples: Iterable[tuple[object, np.ndarray, str]],
    max_clicks: int = 20,
    *,
    at: Sequence[int] = (1, 5),
    thresholds: Sequence[float] = (0.85, 0.90),
    multimask_first: bool = True,
    progress: bool = True,
    total: int | None = None,
) -> ImageClickResults:
    """Simulate `max_clicks` clicks on every (image, gt mask, name) sample with an ImagePredictor-like
    object (`set_image(image)`, `predict(points, labels, mask_input=, multimask_output=)`).

    The image embedding is computed once for consecutive samples of the same image (same path, or
    the same array object).
    """
    if max_clicks < max(at, default=1):
        raise ValueError(f"max_clicks={max_clicks} is fewer than the mIoU@{max(at)} needs")
    if total is None and hasattr(samples, "__len__"):
        total = len(samples)
    names: list[str] = []
    traces: list[ClickTrace] = []
    current = None
    bar = tqdm(samples, total=total, desc="image clicks", unit="obj", disable=not progress)
    for image, gt, name in bar:
        gt = np.asarray(gt, dtype=bool)
        if current is None or not _same_image(image, current[0]):
            predictor.set_image(image)
            current = (image,)
        hw = getattr(predictor, "orig_hw", None)
        if hw and tuple(hw[0]) != gt.shape:
            raise ValueError(f"{name}: image size {tuple(hw[0])} differs from its mask size {gt.shape}")
        try:
            trace = simulate_clicks(sam_click_predictor(predictor, multimask_first), gt, max_clicks)
        except ValueError as e:
            raise ValueError(f"{name}: {e}") from e
        names.append(str(name))
        traces.append(trace)
        if progress and traces:
            bar.set_postfix(mIoU1=f"{np.mean([t.ious[0] for t in traces]):.3f}")
    if not traces:
        raise ValueError("no samples to evaluate")
    summary = summarize_clicks(traces, at=at, thresholds=thresholds, max_clicks=max_clicks)
    settings = {"max_clicks": max_clicks, "multimask_first": multimask_first, "at": list(at),
                "thresholds": list(thresholds)}
    return ImageClickResults(names, traces, summary, max_clicks, settings)


# ------------------------------------------------------------------------------------------ datasets
def _find_image(folder: Path, stem: str) -> Path:
    for ext in IMAGE_EXTENSIONS:
        p = folder / f"{stem}{ext}"
        if p.is_file():
            return p
    raise FileNotFoundError(f"no image for frame {stem} in {folder} (looked for {', '.join(IMAGE_EXTENSIONS[:3])})")


def _davis_image_root(root: Path, mask_root: Path) -> Path:
    if mask_root != root:  # <root>/Annotations[/<res>] -> <root>/JPEGImages[/<res>]
        rel = mask_root.relative_to(root)
        parts = ("JPEGImages",) + rel.parts[1:]
        cand = root.joinpath(*parts)
        if cand.is_dir():
            return cand
        if (root / "JPEGImages").is_dir():
            return root / "JPEGImages"
    raise FileNotFoundError(f"{root}: no JPEGImages folder beside the annotations; pass the image folder "
                            f"(one sub-folder of frames per sequence) as images= (--images on the command line)")


class DavisImageSamples:
    """Image samples of a DAVIS-layout dataset: (image path, object mask, "seq/frame/obj")."""

    def __init__(self, root: str | os.PathLike, images: str | os.PathLike | None = None, every: int = 1,
                 sequences: Sequence[str] | None = None):
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        root = Path(root)
        self.mask_root = resolve_mask_root(root)
        self.image_root = Path(images) if images is not None else _davis_image_root(root, self.mask_root)
        seqs = list_subdirs(self.mask_root)
        if sequences is not None:
            missing = sorted(set(sequences) - set(seqs))
            if missing:
                raise FileNotFoundError(f"{self.mask_root}: no sequence(s) {', '.join(missing)}")
            seqs = [s for s in seqs if s in set(sequences)]
        if not seqs:
            raise FileNotFoundError(f"{self.mask_root}: no sequence folders")
        # (seq, frame stem, mask path, object ids); reading each PNG once here gives the count for tqdm
        self.items: list[tuple[str, str, Path, list[int]]] = []
        for seq in seqs:
            for name in list_pngs(self.mask_root / seq)[::every]:
                path = self.mask_root / seq / name
                ids = [int(i) for i in np.unique(read_labels(path)) if 0 < i < 255]
                if ids:
                    self.items.append((seq, Path(name).stem, path, ids))

    def __len__(self) -> int:
        return sum(len(ids) for *_, ids in self.items)

    def __iter__(self) -> Iterator[tuple[Path, np.ndarray, str]]:
        for seq, stem, path, ids in self.items:
            image = _find_image(self.image_root / seq, stem)
            labels = read_labels(path)
            for i in ids:
                yield image, labels == i, f"{seq}/{stem}/{i}"


def davis_image_samples(root, images=None, every: int = 1, sequences=None) -> DavisImageSamples:
    """See `DavisImageSamples`."""
    return DavisImageSamples(root, images=images, every=every, sequences=sequences)


class CocoImageSamples:
    """Image samples of a COCO JSON: (image path, annotation mask, "file_name/annotation id")."""

    def __init__(self, coco_json: str | os.PathLike, images: str | os.PathLike, every: int = 1,
                 include_crowd: bool = False):
        from ..io.coco import read_coco_json

        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        self.coco = read_coco_json(coco_json)
        if not self.coco.images:
            raise ValueError(f"{coco_json}: a results file (no 'images'); image evaluation needs a dataset file")
        self.image_root = Path(images)
        by_image: dict[int, list[dict]] = {}
        for ann in self.coco.annotations:
            if ann.get("segmentation") is None or (ann.get("iscrowd", 0) and not include_crowd):
                continue
            by_image.setdefault(ann["image_id"], []).append(ann)
        ids = [i for i in sorted(self.coco.images) if i in by_image][::every]
        self.items = [(i, by_image[i]) for i in ids]

    def __len__(self) -> int:  # an upper bound: annotations with empty masks are skipped when read
        return sum(len(anns) for _, anns in self.items)

    def __iter__(self) -> Iterator[tuple[Path, np.ndarray, str]]:
        for image_id, anns in self.items:
            img = self.coco.images[image_id]
            file_name = img.get("file_name")
            if not file_name:
                raise ValueError(f"{self.coco.path}: image {image_id} has no 'file_name'")
            path = self.image_root / file_name
            if not path.is_file():
                raise FileNotFoundError(f"image {file_name} (id {image_id}) not found in {self.image_root}")
            for ann in anns:
                mask = self.coco.mask(ann)
                if mask.any():
                    yield path, mask, f"{file_name}/{ann.get('id', '?')}"


def coco_image_samples(coco_json, images, every: int = 1, include_crowd: bool = False) -> CocoImageSamples:
    """See `CocoImageSamples`."""
    return CocoImageSamples(coco_json, images, every=every, include_crowd=include_crowd)


# ------------------------------------------------------------------------------------------ reports
def format_click_table(results: ImageClickResults) -> str:
    s = results.summary
    mc = results.max_clicks
    nocs = [k for k in s if k.startswith("NoC@") and not k.endswith("_failed")]
    mious = [k for k in s if k.startswith("mIoU@")]
    head = f"{'objects':>8}" + "".join(f"  {k:>7}" for k in mious) + "".join(
        f"  {k:>7}  {'>' + str(mc):>4}" for k in nocs)
    row = f"{int(s['num_objects']):>8}" + "".join(f"  {100 * s[k]:>7.2f}" for k in mious) + "".join(
        f"  {s[k]:>7.2f}  {int(s[k + '_failed']):>4}" for k in nocs)
    curve = results.mean_iou_per_click
    ks = [k for k in (1, 2, 3, 5, 10, 15, 20) if k <= mc] + ([mc] if mc not in (1, 2, 3, 5, 10, 15, 20) else [])
    lines = [head, row, "", "mean IoU after k clicks:",
             "  ".join(f"k={k}: {100 * curve[k - 1]:.2f}" for k in ks),
             f"({'>' + str(mc)}: objects never reaching the threshold within {mc} clicks, counted as {mc})"]
    return "\n".join(lines)


def write_click_json(results: ImageClickResults, path: str | os.PathLike) -> Path:
    return atomic_write_text(path, json.dumps(results.to_dict(), indent=1) + "\n")


def plot_click_curve(results: ImageClickResults, path: str | os.PathLike) -> Path:
    """Line plot of mean IoU against the number of clicks. Needs matplotlib."""
    plt = pyplot()

    curve = results.mean_iou_per_click
    ks = list(range(1, len(curve) + 1))
    fig, ax = plt.subplots(figsize=(5.0, 3.8))
    try:
        ax.plot(ks, curve, marker="o", markersize=3, color="#4c72b0",
                label=f"{int(results.summary['num_objects'])} objects")
        for t, style in ((0.85, ":"), (0.90, "--")):
            ax.axhline(t, color="#c44e52", linestyle=style, linewidth=0.8, label=f"IoU {t:.2f}")
        ax.set_xlabel("clicks")
        ax.set_ylabel("mean IoU")
        ax.set_xlim(1, max(ks[-1], 2))
        ax.set_ylim(0, 1)
        ax.set_xticks(ks if len(ks) <= 20 else ks[::max(1, len(ks) // 20)])
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize=8)
    except BaseException:
        plt.close(fig)
        raise
    return save_figure(fig, path)
