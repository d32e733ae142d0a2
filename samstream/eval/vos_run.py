"""Semi-supervised VOS with a model: prompt each object on the first frame it appears in, track, write, score.

In DAVIS every object is in the first frame; an object that first appears later (as in some synthetic sets) is
prompted on its first annotated frame and reported from there on, as SAM 2's evaluation does when it tracks
objects appearing later in the video.

Prompt protocols (SAM 2's): "mask" (the first-frame ground-truth mask), "click1"/"click3"/"click5"
(simulated clicks on the first frame: first at the interior point farthest from the boundary, each next
one at the centre of the largest error region), "box" (the mask's bounding box).
"""
from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..io.folders import list_subdirs
from ..io.png import write_label_png
from .clicks import first_click, next_click
from .dataset import read_labels, resolve_mask_root

PROMPTS = ("mask", "click1", "click3", "click5", "box")
_IMAGE_EXT = (".jpg", ".jpeg", ".png", ".webp", ".bmp")


def images_root(data: str | os.PathLike) -> Path:
    """JPEGImages/480p, JPEGImages or JPEGImages_24fps of a dataset root."""
    data = Path(data)
    for sub in ("JPEGImages/480p", "JPEGImages", "JPEGImages_24fps"):
        if (data / sub).is_dir():
            return data / sub
    raise FileNotFoundError(f"{data}: no JPEGImages/480p, JPEGImages or JPEGImages_24fps folder")


def check_prompt(prompt: str) -> None:
    if prompt not in PROMPTS:
        raise ValueError(f"prompt must be one of {PROMPTS}, got {prompt!r}")


def prompt_object(vp, obj_id: int, gt: np.ndarray, prompt: str, frame: int = 0) -> None:
    """Prompt one object on `frame` of a VideoPredictor from its ground-truth mask gt (H, W) bool, by one of
    PROMPTS, as `run_vos` does: the protocol shared by the eval and the tools that study a tracked object."""
    check_prompt(prompt)
    if not gt.any():
        raise ValueError(f"object {obj_id}: its ground-truth mask on frame {frame} is empty, nothing to prompt")
    if prompt == "mask":
        vp.add_mask(frame, obj_id, gt)
    elif prompt == "box":
        ys, xs = np.nonzero(gt)
        vp.add_box(frame, obj_id, [xs.min(), ys.min(), xs.max(), ys.max()])
    else:
        clicks = [first_click(gt)]
        for _ in range(int(prompt[len("click"):])):
            pts = [[c.x, c.y] for c in clicks]
            res = vp.add_points(frame, obj_id, pts, [int(c.positive) for c in clicks])
            if len(clicks) == int(prompt[len("click"):]):
                return
            nxt = next_click(gt, res.mask)
            if nxt is None:  # already perfect
                return
            clicks.append(nxt)


def run_vos(model, data: str | os.PathLike, out: str | os.PathLike, prompt: str = "mask",
            sequences: list[str] | None = None, progress: bool = True, static: bool = False,
            **predictor_kwargs) -> Path:
    """Track every sequence of a DAVIS-layout folder from first-frame prompts; writes <out>/<seq>/<frame>.png
    (indexed, pixel value = object id) named like the ground truth. Returns `out`.

    static: the baseline a tracker must beat: the first frame's masks (with prompt "mask", the ground truth)
    written to every frame, as if nothing moved; nothing is tracked."""
    from ..video import VideoPredictor

    check_prompt(prompt)
    ann, imgs, out = resolve_mask_root(data), images_root(data), Path(out)
    seqs = sequences or list_subdirs(ann)
    unknown = sorted(set(seqs) - set(list_subdirs(ann)))
    if unknown:
        raise ValueError(f"sequences not in {ann}: {unknown}")
    for seq in tqdm(seqs, desc=f"vos ({prompt})", unit="seq", disable=not progress):
        frames = sorted(p for p in (imgs / seq).iterdir() if p.suffix.lower() in _IMAGE_EXT)
        if not frames:
            raise FileNotFoundError(f"{imgs / seq}: no frames")
        gt_path = ann / seq / f"{frames[0].stem}.png"
        if not gt_path.is_file():
            raise FileNotFoundError(f"{gt_path}: the first frame's annotation is missing")
        first = first_appearances(ann / seq, frames, static)
        if not first and not static:
            raise ValueError(f"{ann / seq}: no object in any annotated frame, nothing to prompt")
        # frames before any object appears are empty (for the static baseline with none on frame 0: all of them)
        start = min((t for t, _ in first.values()), default=len(frames))
        empty = np.zeros(read_labels(gt_path).shape, np.uint8)
        for f in frames[:start]:
            write_label_png(out / seq / f"{f.stem}.png", empty)
        if not first:
            continue
        with VideoPredictor(model, [str(f) for f in frames], progress=False, **predictor_kwargs) as vp:
            for obj_id, (t, gt) in first.items():
                prompt_object(vp, obj_id, gt, prompt, t)
            for res in vp.propagate(start, "forward"):
                labels = _label_map(res, {o for o, (t, _) in first.items() if t > res.frame_idx})
                if static:
                    for f in frames:
                        write_label_png(out / seq / f"{f.stem}.png", labels)
                    break
                write_label_png(out / seq / f"{frames[res.frame_idx].stem}.png", labels)
    return out


def first_appearances(ann_dir: Path, frames: list[Path], first_frame_only: bool = False) -> dict:
    """{object id: (frame index, its ground-truth mask there (H, W) bool)} of each object's first annotated frame,
    in id order (first_frame_only: the objects of frame 0 only). Frames without an annotation file are skipped."""
    found: dict[int, tuple[int, np.ndarray]] = {}
    for t, f in enumerate(frames[:1] if first_frame_only else frames):
        path = ann_dir / f"{f.stem}.png"
        if not path.is_file():
            continue
        labels = read_labels(path)
        for i in np.unique(labels):
            if i not in (0, 255) and int(i) not in found:  # 255: DAVIS's void
                found[int(i)] = (t, labels == i)
    return dict(sorted(found.items()))


def _label_map(res, hidden: set) -> np.ndarray:
    """The result's label map (uint8) without the objects in `hidden` (not yet appeared on this frame)."""
    if hidden:
        keep = [i for i, o in enumerate(res.obj_ids) if o not in hidden]
        res = replace(res, obj_ids=[res.obj_ids[i] for i in keep], logits=res.logits[keep], scores=res.scores[keep])
    return res.label_map().astype(np.uint8)


__all__ = ["PROMPTS", "images_root", "prompt_object", "run_vos"]
