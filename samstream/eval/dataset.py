"""Finding sequences and reading masks for VOS evaluation, in the DAVIS and the SA-V layouts.

* DAVIS layout: `<root>/<seq>/<frame>.png`, indexed multi-object PNGs (a DAVIS root with
  `Annotations/480p` is accepted too). Frames are the ground-truth PNGs, sorted by name.
* SA-V layout: `<root>/<video>/<obj>/<frame>.png`, one binary PNG per object per annotated frame
  (an SA-V split root with `Annotations_6fps` is accepted too). Each object is scored on the
  frames present in its ground-truth folder; extra predicted frames are ignored.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..io.errors import FormatError
from ..io.folders import list_pngs, list_subdirs
from ..io.png import read_binary_png, read_label_png
from .errors import EvaluationError
from .sequence import FrameScores, score_davis_protocol, score_sav_protocol, split_void

LAYOUTS = ("davis", "sav")
PROTOCOLS = ("davis", "sav")

# Sub-folders that hold the masks when a dataset root (not the mask folder itself) is given.
_ANNOTATION_SUBDIRS = ("Annotations/480p", "Annotations_6fps", "Annotations")


def resolve_mask_root(root: str | os.PathLike) -> Path:
    """The folder holding one sub-folder per sequence: `root` itself, or its Annotations/480p,
    Annotations_6fps or Annotations folder when `root` is a dataset root."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"not a folder: {root}")
    for sub in _ANNOTATION_SUBDIRS:
        cand = root / sub
        if cand.is_dir() and list_subdirs(cand):
            # DAVIS roots also hold JPEGImages/ and ImageSets/, which are not sequences.
            return cand
    return root


def detect_layout(video_dir: str | os.PathLike) -> str:
    """"davis" when a video folder holds only PNG files, "sav" when it holds object sub-folders
    (the SA-V evaluator's rule; we skip hidden files such as .DS_Store, which would flip it)."""
    video_dir = Path(video_dir)
    entries = [n for n in os.listdir(video_dir) if not n.startswith(".")]
    if not entries:
        raise EvaluationError(f"{video_dir}: empty folder, no masks to evaluate")
    if all(n.endswith(".png") for n in entries):
        return "davis"
    if any((video_dir / n).is_dir() for n in entries):
        return "sav"
    raise EvaluationError(f"{video_dir}: neither PNG frames (DAVIS layout) nor object folders (SA-V layout)")


def read_labels(path: str | os.PathLike) -> np.ndarray:
    """(H, W) uint8 object ids of a mask PNG.

    A grayscale (non-palette) PNG holding only 0 and 255 is a binary single-object mask (the
    DAVIS 2016 annotations are such files) and reads as ids 0/1; otherwise values are ids, and in
    the ground truth 255 is void. The DAVIS 2017 toolkit would turn those 255s into background
    and find no object; the SA-V evaluator would score an object with id 255.
    """
    labels, palette = read_label_png(path)
    if palette is None:
        present = np.flatnonzero(np.bincount(labels.ravel(), minlength=256))
        if present[-1] == 255 and set(present.tolist()) <= {0, 255}:
            return (labels == 255).astype(np.uint8)
    return labels


@dataclass(frozen=True)
class SequenceTask:
    """Everything a worker needs to score one sequence (picklable)."""

    name: str
    layout: str
    gt_dir: str
    pred_dir: str
    protocol: str = "davis"
    skip_first_last: bool = True
    void: str = "background"
    bound_th: float = 0.008
    allow_missing: bool = False


@dataclass
class SequenceScores:
    """Result of one sequence: {object name: FrameScores} and notes for the user."""

    name: str
    objects: dict[str, FrameScores]
    warnings: list[str]


def _pred_or_empty(path: Path, shape, allow_missing: bool, read) -> np.ndarray:
    if path.is_file():
        pred = read(path)
    elif allow_missing:
        return np.zeros(shape, dtype=np.uint8)
    else:
        raise EvaluationError(f"missing prediction {path} (every evaluated ground-truth frame needs one)")
    if pred.shape != tuple(shape):
        raise EvaluationError(f"shape mismatch: prediction {path} is {pred.shape[1]}x{pred.shape[0]}, "
                              f"ground truth is {shape[1]}x{shape[0]}")
    return pred


def _davis_sequence(task: SequenceTask) -> SequenceScores:
    gt_dir, pred_dir = Path(task.gt_dir), Path(task.pred_dir)
    names = list_pngs(gt_dir)
    if not names:
        raise EvaluationError(f"{gt_dir}: no PNG frames (is this an SA-V-layout video?)")
    warnings: list[str] = []
    if task.protocol == "davis":
        # The toolkit's objects: 1..max id of the first ground-truth frame (void excluded).
        first, _ = split_void(read_labels(gt_dir / names[0]), "background")
        n_objects = int(first.max()) if first.size else 0
        if n_objects == 0:
            warnings.append(f"{task.name}: no object in the first ground-truth frame {names[0]}")
    evaluated = names[1:-1] if task.skip_first_last else names
    if not evaluated:
        warnings.append(f"{task.name}: {len(names)} frame(s), none left to evaluate")

    def frames():
        for name in evaluated:
            gt = read_labels(gt_dir / name)
            pred = _pred_or_empty(pred_dir / name, gt.shape, task.allow_missing, read_labels)
            if task.protocol == "davis" and pred.size and int(pred.max()) > n_objects:
                # Same rule as the toolkit, which stops with "an index higher than the number of objects".
                raise EvaluationError(f"prediction {pred_dir / name} holds id {int(pred.max())} but the "
                                      f"sequence has {n_objects} object(s) in its first frame")
            yield name[:-4], gt, pred

    if task.protocol == "davis":
        scores = score_davis_protocol(frames(), n_objects, void=task.void, bound_th=task.bound_th)
    else:
        scores = score_sav_protocol(frames(), void=task.void, bound_th=task.bound_th)
    return SequenceScores(task.name, {str(k): v for k, v in scores.items()}, warnings)


def _read_binary01(path) -> np.ndarray:
    return read_binary_png(path).astype(np.uint8)  # (H, W) 0/1, the object is id 1


def _sav_sequence(task: SequenceTask) -> SequenceScores:
    gt_dir, pred_dir = Path(task.gt_dir), Path(task.pred_dir)
    objects: dict[str, FrameScores] = {}
    warnings: list[str] = []
    obj_dirs = list_subdirs(gt_dir)
    if not obj_dirs:
        raise EvaluationError(f"{gt_dir}: no object folders (is this a DAVIS-layout sequence?)")
    for obj in obj_dirs:
        names = list_pngs(gt_dir / obj)
        evaluated = names[1:-1] if task.skip_first_last else names
        if not (pred_dir / obj).is_dir() and not task.allow_missing:
            raise EvaluationError(f"missing prediction folder {pred_dir / obj} for object {obj} of {task.name}")

        def frames(obj=obj, evaluated=evaluated):
            for name in evaluated:
                gt = _read_binary01(gt_dir / obj / name)
                pred = _pred_or_empty(pred_dir / obj / name, gt.shape, task.allow_missing, _read_binary01)
                yield name[:-4], gt, pred

        if task.protocol == "sav":
            scores = score_sav_protocol(frames(), void=task.void, bound_th=task.bound_th)
        else:  # DAVIS rules on a one-object sequence: the object exists because its folder does
            scores = score_davis_protocol(frames(), 1, void=task.void, bound_th=task.bound_th)
        if 1 in scores:
            objects[obj] = scores[1]
        else:
            # The SA-V evaluator fails on an assertion here; we leave the object out and say so.
            warnings.append(f"{task.name}/{obj}: empty ground truth on every evaluated frame, not scored")
    return SequenceScores(task.name, objects, warnings)


def evaluate_sequence(task: SequenceTask) -> SequenceScores:
    """Score one sequence (runs in a worker process). Unreadable files raise FormatError."""
    if task.layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {task.layout!r}")
    if task.protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got {task.protocol!r}")
    try:
        return _davis_sequence(task) if task.layout == "davis" else _sav_sequence(task)
    except (FormatError, EvaluationError):
        raise
    except FileNotFoundError as e:
        raise EvaluationError(f"{task.name}: {e}") from None
