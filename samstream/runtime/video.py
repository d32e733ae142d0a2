"""VideoPredictor on ONNX Runtime: samstream's tracking loop (prompts, conditioning frames, memory selection,
corrections, both directions, live input) over the exported graphs, with numpy.

It follows samstream.video (VideoPredictor, Tracker, TrackingState) step for step; memories are stored in
bfloat16 by default, as there. Differences in this first version: every tracked frame's output is kept
(VideoPredictor's history="all"), no mirror view, and the outputs are the bilinearly upsampled logits (the
output options of MaskPostprocess, edge refinement included, are not applied).
"""
from __future__ import annotations

import os
import re
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..memory import max_pointers, select_memory
from ..results import FrameResult, ObjectResult
from .heads import NO_OBJ_SCORE, pad_points, sam_heads
from .image import open_model
from .model import OnnxModel
from .ops import fill_holes, from_bfloat16_bits, preprocess_frame, resize, to_bfloat16_bits
from .prompts import prepare_points, to_rgb

DIRECTIONS = ("forward", "backward", "both")
HOLE_FILL_VALUE = 0.1  # as samstream.video.tracker
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


@dataclass
class FrameOutput:
    pred_masks: np.ndarray  # (1, 1, L, L) float32 low-res logits, small holes filled
    obj_ptr: np.ndarray  # (1, C)
    score: np.ndarray  # (1, 1)
    maskmem: np.ndarray | None = None  # (1, Cm, E, E) as stored (bfloat16 bits in uint16, or float32)


class ObjectState:
    def __init__(self, obj_id):
        self.obj_id = obj_id
        self.points: dict = {}  # frame -> (coords (1, N, 2), labels (1, N)) model-input pixels
        self.masks: dict = {}  # frame -> (1, 1, S, S) {0, 1}
        self.cond: dict[int, FrameOutput] = {}
        self.non_cond: dict[int, FrameOutput] = {}
        self.pending: dict[int, tuple[FrameOutput, bool]] = {}  # frame -> (output, becomes conditioning)
        self.tracked: dict[int, bool] = {}  # frame -> reverse flag of the pass that last tracked it


def _natural(name: str):
    return [int(p) if p.isdigit() else p.lower() for p in re.split(r"(\d+)", name)]


class _Frames:
    """Frames of an array (T, H, W, 3), a list of frames, a folder of images, a sequence read on demand (any
    object with len() and [i] -> a frame, e.g. a video decoder), or live input (None)."""

    def __init__(self, source):
        self.live = source is None
        self.paths = None
        self.lazy = None
        self.items: list = []
        if source is None:
            return
        if isinstance(source, (str, os.PathLike)):
            folder = Path(source)
            if not folder.is_dir():
                raise FileNotFoundError(f"video frames folder not found: {folder} (the ONNX runtime reads folders of "
                                        f"images and arrays of frames)")
            self.paths = sorted((p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES),
                                key=lambda p: _natural(p.name))
            if not self.paths:
                raise ValueError(f"{folder} holds no images")
        elif not isinstance(source, (list, tuple, np.ndarray)) and hasattr(source, "__len__") and \
                hasattr(source, "__getitem__"):
            self.lazy = source  # not read here: a long video file would not fit in memory
            if not len(source):
                raise ValueError("the video has no frames")
        else:
            self.items = [to_rgb(f, f"frame {i}") for i, f in enumerate(source)]
            if not self.items:
                raise ValueError("the video has no frames")

    def __len__(self) -> int:
        if self.lazy is not None:
            return len(self.lazy)
        return len(self.paths) if self.paths is not None else len(self.items)

    def __getitem__(self, i: int) -> np.ndarray:
        if self.lazy is not None:
            return to_rgb(self.lazy[i], f"frame {i}")
        return to_rgb(self.paths[i]) if self.paths is not None else self.items[i]


class VideoPredictor:
    """A tracking session on one video, samstream.VideoPredictor's API on an export folder.

    model: an OnnxModel or an export folder. source: (T, H, W, 3) uint8 array, a list of frames, a folder of
    images, a sequence read on demand (len() and [i] -> (H, W, 3) uint8), or None for live input (`step`).
    memory_dtype: "bfloat16" (as samstream stores them) or "float32".
    """

    def __init__(self, model: OnnxModel | str | os.PathLike, source=None, *, memory_dtype: str = "bfloat16",
                 corrections_as_cond: bool = True, fill_hole_area: int | None = None, feature_cache: int = 4):
        if memory_dtype not in ("bfloat16", "float32"):
            raise ValueError(f"memory_dtype must be 'bfloat16' or 'float32', got {memory_dtype!r}")
        self.model = open_model(model)
        self.cfg = self.model.cfg
        self.frames = _Frames(source)
        self.memory_dtype = memory_dtype
        self.corrections_as_cond = corrections_as_cond
        self.fill_hole_area = self.cfg.fill_hole_area if fill_hole_area is None else fill_hole_area
        self.objects: OrderedDict = OrderedDict()
        self._features: OrderedDict = OrderedDict()
        self._feature_cache = max(1, feature_cache)
        self._edited: set[int] = set()
        self.encode_count = 0

    # ------------------------------------------------------------------------------ frames
    @property
    def num_frames(self) -> int | None:
        return None if self.frames.live else len(self.frames)

    @property
    def obj_ids(self) -> list:
        return list(self.objects)

    @property
    def video_size(self) -> tuple[int, int]:
        if not len(self.frames):
            raise ValueError("no frame yet: push one with step(frame)")
        return self.frames[0].shape[:2]

    def _check_frame(self, idx) -> int:
        if isinstance(idx, bool) or not isinstance(idx, (int, np.integer)):
            raise TypeError(f"frame index must be an int, got {idx!r}")
        n = len(self.frames)
        if not 0 <= idx < n:
            raise ValueError(f"frame {idx} is out of range: the video has frames 0..{n - 1}" if n else
                             f"frame {idx}: no frame yet")
        return int(idx)

    def features(self, idx: int) -> dict[str, np.ndarray]:
        f = self._features.get(idx)
        if f is None:
            f = self.model.encode_image(preprocess_frame(self.frames[idx], self.cfg.image_size))
            self.encode_count += 1
            self._features[idx] = f
            while len(self._features) > self._feature_cache:
                self._features.popitem(last=False)
        else:
            self._features.move_to_end(idx)
        return f

    # ------------------------------------------------------------------------------ memory
    def _store_mem(self, mem: np.ndarray) -> np.ndarray:
        return to_bfloat16_bits(mem) if self.memory_dtype == "bfloat16" else mem.astype(np.float32)

    @staticmethod
    def _load_mem(mem: np.ndarray) -> np.ndarray:
        return from_bfloat16_bits(mem) if mem.dtype == np.uint16 else mem

    def _conditioned(self, feats, objs: list[ObjectState], t: int, reverse: bool) -> np.ndarray:
        """Frame features attended to each object's memory -> (B, C, E, E), one object per call (as on a CPU)."""
        out = []
        p_max = max_pointers(self.cfg, self.num_frames)
        for o in objs:
            sel = select_memory(t, reverse, o.cond, o.non_cond, self.cfg, self.num_frames)
            if not sel.spatial:
                raise RuntimeError(f"object {o.obj_id!r} has no memory on frame {t}: it needs a prompt first")
            mem = np.stack([self._load_mem(x.maskmem)[0] for _, x, _ in sel.spatial])[None]  # (1, Nm, Cm, E, E)
            slots = np.array([[s for _, _, s in sel.spatial]], dtype=np.int64)
            c = self.cfg.hidden_dim
            if sel.pointers:
                ptrs = np.stack([x.obj_ptr[0] for _, x, _ in sel.pointers])[None]  # (1, P, C)
                tpos = (np.array([p for _, _, p in sel.pointers], np.float32) / np.float32(max(p_max - 1, 1)))[None]
            else:
                ptrs, tpos = np.zeros((1, 0, c), np.float32), np.zeros((1, 0), np.float32)
            out.append(self.model.attend_memory(feats["embed"], feats["pos"], mem, slots, ptrs, tpos))
        return np.concatenate(out)

    def _multimask(self, num_points: int) -> bool:
        return self.cfg.multimask_min_pt_num <= num_points <= self.cfg.multimask_max_pt_num

    def _postprocess(self, low: np.ndarray) -> np.ndarray:
        return fill_holes(low.astype(np.float32), self.fill_hole_area, HOLE_FILL_VALUE)

    def _predict_prompt(self, feats, obj, t, pts, mask, prev, init_cond, reverse) -> FrameOutput:
        m = self.model
        if mask is not None:  # the mask itself is the output; the pointer comes from the decoder on the raw features
            high = mask * np.float32(20.0) - np.float32(10.0)
            low = resize(high, (self.cfg.low_res,) * 2, antialias=True)
            mask_input, no_obj_ptr = m.mask_prompt(mask)
            coords, labels = pad_points(None, None, 1)
            outs = m.decode(feats["embed"], feats["high_res_0"], feats["high_res_1"], coords, labels, mask_input)
            _, ptr, _ = sam_heads(outs, False, self.cfg)
            present = bool((mask > 0).any())
            score = np.full((1, 1), 10.0 if present else -10.0, np.float32)
            return FrameOutput(self._postprocess(low), ptr if present else no_obj_ptr, score)
        pix = feats["embed_no_mem"] if init_cond else self._conditioned(feats, [obj], t, reverse)
        n = 0 if pts is None else pts[1].shape[1]
        coords, labels = pad_points(*(pts if pts is not None else (None, None)))
        mask_in = None if prev is None else np.clip(prev, -32.0, 32.0)
        outs = m.decode(pix, feats["high_res_0"], feats["high_res_1"], coords, labels, mask_in)
        low, ptr, score = sam_heads(outs, self._multimask(n), self.cfg)
        return FrameOutput(self._postprocess(low), ptr, score)

    def _commit(self) -> None:
        if not self.objects:
            raise ValueError("no objects to track: add points, a box or a mask first")
        by_frame: dict[int, list[ObjectState]] = {}
        for o in self.objects.values():
            for t, (out, _) in o.pending.items():
                if out.maskmem is None:
                    by_frame.setdefault(t, []).append(o)
        for t, group in sorted(by_frame.items()):
            feats = self.features(t)
            outs = [o.pending[t][0] for o in group]
            low = np.concatenate([x.pred_masks for x in outs])
            scores = np.concatenate([x.score for x in outs])
            mem = self.model.encode_memory(feats["embed"], low, scores, self.cfg.binarize_mask_from_pts_for_mem_enc)
            for i, x in enumerate(outs):
                x.maskmem = self._store_mem(mem[i: i + 1])
        for o in self.objects.values():
            for t, (out, as_cond) in sorted(o.pending.items()):
                if as_cond:
                    o.cond[t] = out
                    o.non_cond.pop(t, None)
                else:
                    o.non_cond[t] = out
            o.pending.clear()
        for o in self.objects.values():
            if not o.cond:
                raise ValueError(f"object {o.obj_id!r} has no prompt on any frame: add points, a box or a mask, or "
                                 f"remove it")

    def _track(self, t: int, objs: list[ObjectState], reverse: bool) -> None:
        feats = self.features(t)
        pix = self._conditioned(feats, objs, t, reverse)
        b = len(objs)
        coords, labels = pad_points(None, None, b)
        outs = self.model.decode(pix, feats["high_res_0"], feats["high_res_1"], coords, labels)
        low, ptr, score = sam_heads(outs, self._multimask(0), self.cfg)
        # tracked frames feed the memory the raw (not hole-filled) prediction, as a soft mask
        mem = self.model.encode_memory(feats["embed"], low, score, False)
        filled = self._postprocess(low)
        for i, o in enumerate(objs):
            o.non_cond[t] = FrameOutput(filled[i: i + 1], ptr[i: i + 1], score[i: i + 1],
                                        self._store_mem(mem[i: i + 1]))
            o.tracked[t] = reverse

    # ------------------------------------------------------------------------------ prompts
    def _output(self, obj: ObjectState, t: int, pending_cond: bool | None = None) -> FrameOutput | None:
        if t in obj.pending and (pending_cond is None or obj.pending[t][1] == pending_cond):
            return obj.pending[t][0]
        return obj.cond.get(t) or obj.non_cond.get(t)

    def add_points(self, frame_idx: int, obj_id, points=None, labels=None, *, box=None, clear: bool = True,
                   normalize_coords: bool = True) -> ObjectResult:
        """Clicks (and/or a box) for one object on one frame -> the object's mask there."""
        return self._add_prompt(frame_idx, obj_id, points=points, labels=labels, box=box, clear=clear,
                                normalize_coords=normalize_coords)

    def add_box(self, frame_idx: int, obj_id, box, points=None, labels=None, *,
                normalize_coords: bool = True) -> ObjectResult:
        return self.add_points(frame_idx, obj_id, points, labels, box=box, normalize_coords=normalize_coords)

    def add_mask(self, frame_idx: int, obj_id, mask) -> ObjectResult:
        """A binary mask (H, W) at video resolution, taken as the object's mask on that frame."""
        return self._add_prompt(frame_idx, obj_id, mask=mask)

    def _prepare_mask(self, mask, hw) -> np.ndarray:
        a = np.ascontiguousarray(mask)
        s = self.cfg.image_size
        if a.dtype.kind not in "biuf" or a.ndim != 2:
            raise ValueError(f"mask must be a binary (H, W) array, got dtype {a.dtype} and shape {a.shape}")
        if tuple(a.shape) not in (tuple(hw), (s, s)):
            raise ValueError(f"mask is {a.shape[1]}x{a.shape[0]}, but the video is {hw[1]}x{hw[0]}")
        if a.dtype.kind == "f" and not ((a == 0) | (a == 1)).all():
            raise ValueError("mask holds values other than 0 and 1: give a binary mask (threshold it first)")
        m = (a > 0).astype(np.float32)[None, None]
        if m.shape[-2:] != (s, s):  # resize to the model size, then re-binarise
            m = (resize(m, (s, s), antialias=True) >= 0.5).astype(np.float32)
        return m

    def _add_prompt(self, frame_idx, obj_id, *, points=None, labels=None, box=None, mask=None, clear=True,
                    normalize_coords=True) -> ObjectResult:
        idx = self._check_frame(frame_idx)
        if obj_id is None or isinstance(obj_id, bool) or not isinstance(obj_id, (int, np.integer, str)):
            raise TypeError(f"object ids must be ints or strings, got {obj_id!r}")
        obj_id = int(obj_id) if isinstance(obj_id, np.integer) else obj_id
        hw = self.frames[idx].shape[:2]
        pts = msk = None
        try:
            if mask is not None:
                msk = self._prepare_mask(mask, hw)
            else:
                if points is None and box is None:
                    raise ValueError("give points, a box, or both")
                if box is not None and not clear:
                    raise ValueError("a box must be the first prompt of a frame: add it with clear=True")
                pts = prepare_points(hw, self.cfg.image_size, points, labels,
                                     None if box is None else np.reshape(box, 4), normalize_coords)
                if pts[0].shape[0] != 1:
                    raise ValueError(f"points for one object must have shape (N, 2), got {np.shape(points)}")
        except ValueError as e:
            raise ValueError(f"object {obj_id!r} on frame {idx}: {e}") from None
        existing = self.objects.get(obj_id)
        if pts is not None and not clear and existing is not None and idx in existing.points:
            old = existing.points[idx]
            pts = (np.concatenate([old[0], pts[0]], axis=1), np.concatenate([old[1], pts[1]], axis=1))
        reverse = None if existing is None else existing.tracked.get(idx)
        init_cond = reverse is None
        as_cond = init_cond or self.corrections_as_cond
        obj = self.objects.setdefault(obj_id, ObjectState(obj_id))
        prev = None
        if pts is not None:
            prev_out = self._output(obj, idx, pending_cond=as_cond)
            prev = None if prev_out is None else prev_out.pred_masks
        out = self._predict_prompt(self.features(idx), obj, idx, pts, msk, prev, init_cond, bool(reverse))
        if msk is not None:
            obj.masks[idx] = msk
            obj.points.pop(idx, None)
        else:
            obj.points[idx] = pts
            obj.masks.pop(idx, None)
        obj.pending[idx] = (out, as_cond)
        self._edited.add(idx)
        logits, scores = self._video_logits([self._output(obj, idx)], hw)
        return ObjectResult(idx, obj_id, logits[0], float(scores[0]))

    def remove_object(self, obj_id) -> None:
        if obj_id not in self.objects:
            raise KeyError(f"unknown object id {obj_id!r}; known ids: {self.obj_ids}")
        del self.objects[obj_id]

    def reset(self) -> None:
        self.objects.clear()
        self._edited.clear()

    # ------------------------------------------------------------------------------ propagation
    def propagate(self, start: int | None = None, direction: str = "forward", max_frames: int | None = None):
        """Track every object through the video; yields a FrameResult per frame (as samstream.VideoPredictor)."""
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
        if self.frames.live and direction != "forward":
            raise ValueError("backward tracking needs frames that can be read again, not live input")
        if start is not None:
            start = self._check_frame(start)
        if max_frames is not None and max_frames < 0:
            raise ValueError(f"max_frames must be >= 0, got {max_frames}")
        self._commit()
        if start is None:
            cond = {t for o in self.objects.values() for t in o.cond}
            frames = (self._edited & cond) or cond
            start = max(frames) if direction == "backward" else min(frames)
        self._edited.clear()
        passes = {"forward": [False], "backward": [True], "both": [False, True]}[direction]
        return self._passes(start, passes, max_frames)

    def _passes(self, start, passes, max_frames):
        n = len(self.frames)
        for reverse in passes:
            if reverse:
                end = 0 if max_frames is None else max(start - max_frames, 0)
                frames = range(start, end - 1, -1) if start > 0 else range(0)
            else:
                last = n - 1 if max_frames is None else min(start + max_frames, n - 1)
                frames = range(start, last + 1)
            for t in frames:
                yield self._track_frame(t, reverse)

    def _track_frame(self, t: int, reverse: bool) -> FrameResult:
        objs = list(self.objects.values())
        to_track = [o for o in objs if t not in o.cond]
        if to_track:
            self._track(t, to_track, reverse)
        for o in objs:
            o.tracked[t] = reverse
        return self._frame_result(t)

    def step(self, frame) -> FrameResult:
        """Live input: append a frame and track every object onto it."""
        if not self.frames.live:
            raise TypeError("step(frame) is for live input: create the predictor without a source")
        self.frames.items.append(to_rgb(frame, "frame"))
        t = len(self.frames) - 1
        if self.objects:
            self._commit()
            self._edited.clear()
            return self._track_frame(t, False)
        return self._frame_result(t)

    # ------------------------------------------------------------------------------ outputs
    def _video_logits(self, outs: list[FrameOutput | None], hw) -> tuple[np.ndarray, np.ndarray]:
        h, w = hw
        logits = np.full((len(outs), h, w), NO_OBJ_SCORE, np.float32)
        scores = np.full((len(outs),), NO_OBJ_SCORE, np.float32)
        for i, o in enumerate(outs):
            if o is not None:
                logits[i] = resize(o.pred_masks[0, 0], (h, w))
                scores[i] = o.score.reshape(-1)[0]
        return logits, scores

    def _frame_result(self, t: int) -> FrameResult:
        objs = list(self.objects.values())
        logits, scores = self._video_logits([self._output(o, t) for o in objs], self.frames[t].shape[:2])
        return FrameResult(t, [o.obj_id for o in objs], logits, scores)

    def result(self, frame_idx: int) -> FrameResult:
        return self._frame_result(self._check_frame(frame_idx))
