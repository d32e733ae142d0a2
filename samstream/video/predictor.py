"""VideoPredictor: a tracking session on one video, file, folder, array, iterator or live stream.

    vp = VideoPredictor(model, "clip.mp4")
    vp.add_points(0, obj_id=1, points=[[210, 350]])          # a click on frame 0
    vp.add_box(30, obj_id=2, box=[40, 60, 200, 220])          # another object, on another frame
    for fr in vp.propagate(direction="both"):
        fr.frame_idx, fr.masks, fr.scores                     # (O, H, W) bool, (O,) object scores

Live input: `vp = VideoPredictor(model)` then `vp.step(frame)` per frame, prompts on any frame
already pushed. Prompts may be added at any time: new objects join without disturbing the others,
and a click on a tracked frame is a correction that becomes a conditioning frame.

mirror=True is test-time augmentation: every object is also tracked, with its own memory, on the
video flipped left-right (a second `TrackingState`, fed the mirrored prompts and frames), and the
results are the mean of the two views' mask logits and object scores. The image encoder is not
symmetric, so the two views err differently; it costs about twice the time.
"""
from __future__ import annotations

import contextlib

import numpy as np
import torch
import torch.nn.functional as F

from ..memory import window_behind
from ..model import NO_OBJ_SCORE, SAM2Model
from ..model.compiled import compiled_view
from ..postprocess import MaskPostprocess
from ..precision import autocast, check_precision
from ..predictor import ImagePredictor
from ..results import FrameResult, ObjectResult
from ..transforms import mirror_points
from .frames import FrameStore
from .sources import FrameUnavailableError, LiveSource, open_source
from .state import FrameOutput, ObjectState, TrackingState
from .tracker import Tracker

DIRECTIONS = ("forward", "backward", "both")


# ------------------------------------------------------------------------------------------ session
class VideoPredictor:
    """A SAM 2 tracking session on one video (see the module docstring).

    model: a SAM2Model (samstream.load_model(...)). source: a video file, a folder of images, a list or
        (T, H, W, 3) array of frames, an iterator of frames, or None for a live stream fed by `step`.
    memory_dtype: storage dtype of spatial memories; bfloat16 as SAM 2 does (and to match its masks),
        float32 to keep them exact.
    history: "window" keeps only what the next frames can read (memory flat on any length; a
        correction far behind the last propagated frame first re-tracks from the nearest conditioning
        frame to rebuild its memory), "all" keeps every frame's memory as SAM 2 does.
    corrections_as_cond: a prompt on an already tracked frame becomes a conditioning frame (SAM 2's
        `add_all_frames_to_correct_as_cond`); False keeps it as an ordinary tracked frame, as the
        official predictor does by default.
    feature_cache: number of frames whose image features stay cached.
    postprocess: how each frame's low-res mask logits become the output masks (edge refinement, the
        non-overlap constraint, min_region_area, ...; see `MaskPostprocess`, which also says in which order).
        Outputs only: the memory and the object scores are as without it. None: the model's
        `inference_defaults` (the embedded default model's refine the edges; Meta's checkpoints change
        nothing). Keyword arguments named after its fields override single settings:
        VideoPredictor(model, video, non_overlap_masks=True, min_region_area=30) (None leaves one as it is).
        A frame that a one-pass or live stream no longer holds is returned with unrefined edges.
    fill_hole_area: holes of at most this many pixels filled in the stored low-res masks (SAM 2's video
        post-processing; it is fed back to the model, so it is a tracking setting). Default: the model config's.
    progress: show tqdm progress bars by default.
    attention_batch: objects per memory-attention call (default: all on a GPU, one at a time on a CPU,
        where batching saves no time but multiplies the transient memory).
    mirror: also track on the video flipped left-right and average the two (see the module docstring).
    precision: "fp32" (default, exact), "bf16" or "fp16": the model runs under autocast in that dtype, with what
        SAM 2 needs kept in float32 (see `samstream.precision`); outputs stay float32. Independent of
        memory_dtype, which is only how memories are stored.
    compile: torch.compile the image encoder, memory attention and mask decoder (`samstream.model.compiled`), with the
        prompt and the memory padded to fixed lengths: the first frames compile their graphs (tens of seconds on
        a CPU), then nothing recompiles, in this video or another of the same model. Results are the
        uncompiled ones up to float rounding.
    """

    def __init__(self, model: SAM2Model, source=None, *, memory_dtype: torch.dtype = torch.bfloat16,
                 history: str = "window", corrections_as_cond: bool = True, feature_cache: int = 2,
                 fill_hole_area: int | None = None, progress: bool = True, attention_batch: int | None = None,
                 mirror: bool = False, postprocess: MaskPostprocess | None = None, precision: str = "fp32",
                 compile: bool = False, **settings):
        self.precision = check_precision(precision)
        if not isinstance(compile, bool):
            raise ValueError(f"compile must be True or False, got {compile!r}")
        self.model = model.eval()
        net = compiled_view(model) if compile else model  # what the tracker and the frame store run
        self.postprocess = MaskPostprocess.resolve(model, postprocess, **settings)
        if self.postprocess.mask_threshold != 0:
            raise ValueError(f"video outputs are cut at 0: mask_threshold must be 0, got "
                             f"{self.postprocess.mask_threshold}")
        self.tracker = Tracker(net, memory_dtype=memory_dtype, fill_hole_area=fill_hole_area,
                               attention_batch=attention_batch)
        src = LiveSource() if source is None else open_source(source)
        self.store = FrameStore(src, net, feature_cache=feature_cache, mirror=mirror)
        self.state = TrackingState(src.num_frames, history=history)
        # the mirrored view's objects, with the same ids (None without mirror)
        self.mirror_state = TrackingState(src.num_frames, history=history) if mirror else None
        self.corrections_as_cond = corrections_as_cond
        self.progress = progress
        self._prompts = ImagePredictor(model)  # prompt validation and scaling only
        self._edited: set[int] = set()  # frames prompted since the last propagation

    # ------------------------------------------------------------------------------ properties
    @property
    def num_frames(self) -> int | None:
        """Frames in the video, or None for live input of unknown length."""
        return self.store.num_frames

    @property
    def video_size(self) -> tuple[int, int]:
        """(H, W) of the frames."""
        return self.store.video_hw()

    @property
    def obj_ids(self) -> list:
        return self.state.obj_ids

    @property
    def is_live(self) -> bool:
        """One-pass input (an iterator or live frames): old frames cannot be read again, tracking is forward only."""
        return not self.store.source.random_access

    @property
    def fps(self) -> float | None:
        """Frames per second of the source; None where unknown (folders, arrays, iterators, live input)."""
        return self.store.source.fps

    def frame(self, frame_idx: int) -> np.ndarray:
        """RGB frame (H, W, 3) uint8; FrameUnavailableError for one a stream no longer holds."""
        return self.store.frame(frame_idx)

    def has_frame(self, frame_idx: int) -> bool:
        """Whether the video has frame frame_idx (reading ahead in a one-pass stream if needed)."""
        return self.store.has_frame(frame_idx)

    def _views(self) -> list[tuple[TrackingState, bool]]:
        """(state, mirrored) of each view: the video itself, then its mirror image when mirror=True."""
        return [(self.state, False)] + ([(self.mirror_state, True)] if self.mirror_state is not None else [])

    def memory_stats(self) -> dict:
        """What the session stores (frames, tensors, bytes; both views summed) and what its caches hold."""
        per_view = [state.stats() for state, _ in self._views()]
        stats = {k: sum(v[k] for v in per_view) for k in per_view[0]}
        return {**stats, "cached_features": len(self.store.features_cache),
                "cached_frames": len(self.store.frames_cache), "cache_bytes": self.store.features_cache.nbytes
                + self.store.frames_cache.nbytes}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        self.store.close()

    def autocast(self):
        """The context the model runs in at this session's precision (nothing for fp32); wraps each model step,
        never a generator's yield."""
        return autocast(self.precision, self.model.device)

    # ------------------------------------------------------------------------------ validation
    def _check_frame(self, frame_idx) -> int:
        # an int in range, or already reached by a stream; else a FrameUnavailableError (a ValueError) that says
        # the range. Negative indices are refused, not counted from the end: a stream has no end to count from.
        return self.store.source.check_index(frame_idx)

    def _frame_output(self, obj: ObjectState, frame_idx: int, pending_cond: bool | None = None) -> FrameOutput | None:
        if frame_idx in obj.pending and (pending_cond is None or obj.pending[frame_idx][1] == pending_cond):
            return obj.pending[frame_idx][0]
        return obj.cond.get(frame_idx) or obj.non_cond.get(frame_idx)

    # ------------------------------------------------------------------------------ prompts
    @torch.inference_mode()
    def add_points(self, frame_idx: int, obj_id, points=None, labels=None, *, box=None, clear: bool = True,
                   normalize_coords: bool = True) -> ObjectResult:
        """Clicks (and/or a box) for one object on one frame -> the object's mask there.

        points (N, 2) x, y in video pixels (or [0, 1] with normalize_coords=False); labels (N,) 1 = object,
        0 = background (default all 1). box (4,) x0, y0, x1, y1. clear=False adds the clicks to the
        frame's earlier ones (a box must come first, with clear=True).
        """
        out = self._add_prompt(frame_idx, obj_id, points=points, labels=labels, box=box, clear=clear,
                               normalize_coords=normalize_coords)
        return self._object_result(frame_idx, obj_id, out)

    def add_box(self, frame_idx: int, obj_id, box, points=None, labels=None, *,
                normalize_coords: bool = True) -> ObjectResult:
        """A box (x0, y0, x1, y1), optionally with clicks, for one object on one frame."""
        return self.add_points(frame_idx, obj_id, points, labels, box=box, normalize_coords=normalize_coords)

    @torch.inference_mode()
    def add_mask(self, frame_idx: int, obj_id, mask) -> ObjectResult:
        """A binary mask (H, W) at video resolution for one object on one frame; it is taken as the mask.

        bool, integers (non-zero = object) or floats holding only 0 and 1 (soft masks are refused: threshold them
        first). An empty mask says the object is absent on that frame.
        """
        out = self._add_prompt(frame_idx, obj_id, mask=mask)
        return self._object_result(frame_idx, obj_id, out)

    def _prepare_mask(self, mask) -> torch.Tensor:
        a = np.ascontiguousarray(mask)  # views with negative strides (a[:, ::-1]) too
        s = self.model.cfg.image_size
        hw = self.video_size
        if a.dtype.kind not in "biuf":
            raise ValueError(f"mask must be a binary (H, W) array (bool, or 0 and 1), got dtype {a.dtype}")
        if a.ndim != 2:
            raise ValueError(f"mask must be 2-D (H, W), got shape {tuple(a.shape)}")
        if tuple(a.shape) not in (tuple(hw), (s, s)):
            raise ValueError(f"mask is {a.shape[1]}x{a.shape[0]}, but the video is {hw[1]}x{hw[0]}")
        if a.dtype.kind == "f" and not ((a == 0) | (a == 1)).all():
            # NaN would read as background, and a probability or logit map has no one right threshold
            what = "NaN or infinite values" if not np.isfinite(a).all() else \
                f"values other than 0 and 1 (from {a.min():g} to {a.max():g})"
            raise ValueError(f"mask holds {what}: give a binary mask (bool, or 0 and 1); threshold probabilities "
                             f"or logits first, e.g. mask > 0.5")
        m = torch.as_tensor(a)
        m = (m > 0) if m.dtype != torch.bool else m  # integers: any non-zero label is the object
        m = m.float()[None, None]
        if m.shape[-2:] != (s, s):  # resize to the model size, then re-binarise
            m = F.interpolate(m, size=(s, s), mode="bilinear", align_corners=False, antialias=True)
            m = (m >= 0.5).float()
        return m

    def _check_prompt(self, hw, points, labels, box, mask, clear, normalize_coords):
        """-> (points, mask) validated and in model-input coordinates, one of them None."""
        if mask is not None:
            return None, self._prepare_mask(mask)
        if points is None and box is None:
            raise ValueError("give points, a box, or both")
        if box is not None and not clear:
            raise ValueError("a box must be the first prompt of a frame: add it with clear=True, then add "
                             "clicks with clear=False")
        if box is not None and np.asarray(box).size != 4:
            raise ValueError(f"box must be (x0, y0, x1, y1), got shape {np.shape(box)}")
        if points is not None and np.ndim(points) == 3 and np.shape(points)[0] != 1:
            raise ValueError(f"points for one object must have shape (N, 2), got {np.shape(points)}")
        pts, _ = self._prompts.prepare_prompts(hw, points, labels, None if box is None else np.reshape(box, 4),
                                               None, normalize_coords)
        return pts, None

    def _add_prompt(self, frame_idx, obj_id, *, points=None, labels=None, box=None, mask=None, clear=True,
                    normalize_coords=True) -> FrameOutput:
        """Validate everything first, so a bad prompt changes nothing; then predict the frame."""
        idx = self._check_frame(frame_idx)
        if obj_id is None or isinstance(obj_id, bool) or not isinstance(obj_id, (int, np.integer, str)):
            raise TypeError(f"object ids must be ints or strings, got {obj_id!r}")
        obj_id = int(obj_id) if isinstance(obj_id, np.integer) else obj_id
        hw = self.store.frame(idx).shape[:2]
        try:
            pts, msk = self._check_prompt(hw, points, labels, box, mask, clear, normalize_coords)
        except ValueError as e:  # say whose prompt it is: a script or the CLI gives many
            raise ValueError(f"object {obj_id!r} on frame {idx}: {e}") from None
        s = self.model.cfg.image_size
        with self.autocast():
            self.store.features(idx)  # may fail (e.g. a frame gone from a stream): nothing changed yet
            for state, mirrored in self._views():
                if mirrored:  # the same prompt, on the flipped frame
                    pts = None if pts is None else mirror_points(pts, s)
                    msk = None if msk is None else msk.flip(-1)
                self._prompt_view(state, mirrored, idx, obj_id, pts, msk, clear)
        self._edited.add(idx)
        return self._fused_output(self.state.get(obj_id), idx)

    def _prompt_view(self, state: TrackingState, mirrored: bool, idx: int, obj_id, pts, msk, clear: bool) -> None:
        """A validated prompt, in this view's coordinates, applied to one view (its output becomes pending)."""
        existing = state.objects.get(obj_id)
        if pts is not None and not clear and existing is not None and idx in existing.points:
            old = existing.points[idx]
            pts = (torch.cat([old[0], pts[0]], dim=1), torch.cat([old[1], pts[1]], dim=1))
        reverse = None if existing is None else existing.tracked.get(idx)
        init_cond = reverse is None
        as_cond = init_cond or self.corrections_as_cond
        obj = state.get_or_create(obj_id)
        if not init_cond:  # a correction: it reads the memory behind the frame, and the frame's own output
            self._ensure_memory(state, mirrored, idx, bool(reverse), include_frame=True)
        prev = None
        if pts is not None:
            prev_out = self._frame_output(obj, idx, pending_cond=as_cond)
            prev = None if prev_out is None else prev_out.pred_masks
        out = self.tracker.predict_prompt(self.store.features(idx, mirrored), state, obj, idx, points=pts, mask=msk,
                                          prev_logits=prev, init_cond=init_cond, reverse=bool(reverse))
        if msk is not None:
            obj.masks[idx] = msk
            obj.points.pop(idx, None)
        else:
            obj.points[idx] = pts
            obj.masks.pop(idx, None)
        obj.pending[idx] = (out, as_cond)

    @torch.inference_mode()
    def clear_prompts(self, frame_idx: int, obj_id) -> None:
        """Remove an object's prompts on a frame; a conditioning frame there becomes an ordinary tracked one."""
        idx = self._check_frame(frame_idx)
        self.state.get(obj_id)  # unknown id: KeyError before any change
        for state, _ in self._views():
            obj = state.get(obj_id)
            obj.points.pop(idx, None)
            obj.masks.pop(idx, None)
            obj.pending.pop(idx, None)
            out = obj.cond.pop(idx, None)
            if out is not None:
                obj.non_cond[idx] = out
                obj.tracked.discard(idx)

    def remove_object(self, obj_id) -> None:
        """Forget an object; the others are untouched."""
        self.state.get(obj_id)  # unknown id: KeyError before any change
        for state, _ in self._views():
            state.remove(obj_id)

    def reset(self) -> None:
        """Forget all objects, prompts and results (cached frames and features stay)."""
        for state, _ in self._views():
            state.reset()
        self._edited.clear()

    # ------------------------------------------------------------------------------ memory upkeep
    def _ensure_memory(self, state: TrackingState, mirrored: bool, frame_idx: int, reverse: bool,
                       include_frame: bool = False) -> None:
        """With history="window", memory an old frame needs may be gone: rebuild it first, exactly.

        The frame reads, for each object, the tracked frames up to `window` behind it (in its tracking
        direction), and its own earlier output when it is corrected (include_frame). Missing ones are
        re-tracked in the direction they were tracked in, from their nearest conditioning frame (or from
        where an intact window starts), without reporting outputs. The objects are re-tracked together, one
        batch a frame, as the pass that tracked them did: with non-overlapping memories an object's memory
        depends on the others' masks. So the rebuild reproduces what that pass computed. state / mirrored:
        the view rebuilt.
        """
        if state.history == "all" or not self.store.source.random_access:
            return  # (a one-pass stream cannot re-read old frames: the frame uses the memory that is left)
        window = window_behind(self.model.cfg, self.state.num_frames)
        plans = [(o, self._rebuild_plan(o, frame_idx, reverse, window, include_frame)) for o in state.objects.values()]
        from tqdm import tqdm

        for rev in (False, True):
            d = -1 if rev else 1
            frames = sorted({t for _, plan in plans for t in plan.get(rev, ())}, key=lambda t: d * t)
            for t in tqdm(frames, desc="rebuilding memory", unit="frame", leave=False,
                          disable=not self.progress or len(frames) < 50):
                batch = [o for o, plan in plans if t in plan.get(rev, ())]
                self.tracker.track(self.store.features(t, mirrored), state, batch, t, rev)

    def _rebuild_plan(self, obj: ObjectState, frame_idx: int, reverse: bool, window: int,
                      include_frame: bool) -> dict[bool, set[int]]:
        """The frames to re-track for `obj` so that `frame_idx` finds its memory, by tracking direction."""
        sign = -1 if reverse else 1
        n = self.num_frames

        def gone(t):
            return (t >= 0 and (n is None or t < n) and t in obj.tracked and t not in obj.non_cond
                    and t not in obj.cond and t not in obj.pending)

        missing = [t for t in (frame_idx - sign * k for k in range(0 if include_frame else 1, window)) if gone(t)]
        plan = {}
        for rev in (False, True):
            group = [t for t in missing if obj.tracked.get(t) == rev]
            if not group:
                continue
            d = -1 if rev else 1
            first, last = (min(group), max(group)) if d == 1 else (max(group), min(group))
            anchors = [c for c in obj.cond if d * (first - c) > 0]
            if not anchors:
                continue  # never tracked from a prompt in that direction: nothing to rebuild from
            anchor = max(anchors) if d == 1 else min(anchors)
            # start where the memory behind is intact, else at the conditioning frame
            begin = first
            if any(gone(first - d * k) for k in range(1, window)) or d * (first - anchor) < 1:
                begin = anchor + d
            plan[rev] = {t for t in range(begin, last + d, d) if t not in obj.cond}
        return plan

    def _commit(self) -> None:
        """Encode pending prompt outputs into memory (SAM 2's propagation preflight)."""
        if not self.state.objects:
            raise ValueError("no objects to track: add points, a box or a mask first")
        with self.autocast():
            for state, mirrored in self._views():
                self.tracker.commit(state, lambda t, m=mirrored: self.store.features(t, m))
        for obj in self.state.objects.values():
            if not obj.cond:
                raise ValueError(f"object {obj.obj_id!r} has no prompt on any frame (its prompts were cleared): "
                                 f"add points, a box or a mask, or remove it")

    # ------------------------------------------------------------------------------ propagation
    def _default_start(self, reverse: bool) -> int:
        edited = self._edited & {t for o in self.state.objects.values() for t in o.cond}
        frames = edited or {t for o in self.state.objects.values() for t in o.cond}
        return max(frames) if reverse else min(frames)

    def _pass_frames(self, start: int, reverse: bool, max_frames: int | None):
        """Frame indices of one pass, lazily (a stream's end is found as it comes)."""
        n = self.num_frames
        limit = max_frames if max_frames is not None else (n if n is not None else None)
        if reverse:
            end = 0 if limit is None else max(start - limit, 0)
            yield from range(start, end - 1, -1) if start > 0 else ()
            return
        t = start
        last = None if limit is None else start + limit
        while (last is None or t <= last) and (n is None or t < n):
            if n is None and not self.store.has_frame(t):
                return
            yield t
            t += 1

    def propagate(self, start: int | None = None, direction: str = "forward", max_frames: int | None = None,
                  progress: bool | None = None):
        """Track every object through the video; yields a FrameResult per frame as it is computed.

        start: first frame (default: the earliest frame prompted since the last propagation, else the
            earliest conditioning frame; the latest for direction="backward").
        direction: "forward", "backward" or "both" (forward, then backward from the same start; the
            start frame is reported by both passes, the second result being the final one).
        max_frames: frames to track after the start in each direction (default: to the video's end).
        Stopping the iteration (or Ctrl-C) keeps every frame finished so far.
        """
        # validated and committed now, not at the first next(): errors surface at the call
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
        if direction != "forward" and not self.store.source.random_access:
            raise ValueError("backward tracking needs a source whose frames can be read again (a file, a folder, "
                             "frames in memory), not a one-pass stream")
        if start is not None:
            start = self._check_frame(start)
        if max_frames is not None and max_frames < 0:
            raise ValueError(f"max_frames must be >= 0, got {max_frames}")
        self._commit()
        if start is None:
            start = self._default_start(direction == "backward")
        self._edited.clear()
        passes = {"forward": [False], "backward": [True], "both": [False, True]}[direction]
        show = self.progress if progress is None else progress
        return self._passes(start, passes, max_frames, show)

    @torch.inference_mode()  # torch applies it around each step of the generator, not across yields
    def _passes(self, start, passes, max_frames, show):
        for reverse in passes:
            frames = self._pass_frames(start, reverse, max_frames)
            total = self._pass_length(start, reverse, max_frames)
            yield from self._run_pass(frames, reverse, total, show)

    def _pass_length(self, start, reverse, max_frames):
        n = self.num_frames
        if reverse:
            return 0 if start == 0 else min(start, max_frames if max_frames is not None else start) + 1
        if n is None:
            return None if max_frames is None else max_frames + 1
        return min(n - start, (max_frames + 1) if max_frames is not None else n)

    def _run_pass(self, frames, reverse: bool, total, show: bool):
        from tqdm import tqdm

        bar = tqdm(total=total, desc="tracking" + (" backward" if reverse else ""), unit="frame",
                   disable=not show, leave=False)
        try:
            for t in frames:
                yield self._track_frame(t, reverse)
                bar.update(1)
        finally:
            bar.close()

    def _track_frame(self, t: int, reverse: bool) -> FrameResult:
        """One frame of a pass: conditioning frames are reported from storage, the others are tracked
        together in one batch."""
        with self.autocast():  # the model steps only: outputs are made in float32 below
            for state, mirrored in self._views():
                objs = list(state.objects.values())
                to_track = [o for o in objs if t not in o.cond]
                if to_track:
                    if state.history == "window":
                        self._ensure_memory(state, mirrored, t, reverse)
                    self.tracker.track(self.store.features(t, mirrored), state, to_track, t, reverse)
                for o in objs:
                    o.tracked.add(t, reverse)
        return self._frame_result(t, list(self.state.objects.values()))

    # ------------------------------------------------------------------------------ live input
    @torch.inference_mode()
    def step(self, frame) -> FrameResult:
        """Live input: append a frame and track every object onto it -> its FrameResult.

        Prompts may be added to the pushed frame (or any earlier one still cached) before the next step.
        """
        if not self.store.source.live:
            raise TypeError("step(frame) is for live input: create the predictor without a source")
        t = self.store.push(frame)
        objs = list(self.state.objects.values())
        if objs:
            self._commit()
            self._edited.clear()
            return self._track_frame(t, False)
        return self._frame_result(t, objs)

    # ------------------------------------------------------------------------------ outputs
    def video_logits(self, outs: list[FrameOutput | None], frame_idx: int | None = None
                     ) -> tuple[torch.Tensor, torch.Tensor]:
        """Low-res outputs on frame `frame_idx` -> (O, 1, H, W) float32 logits at video resolution (through
        `postprocess`) and (O,) scores, on the model's device; objects without an output get NO_OBJ_SCORE.
        Without frame_idx (or the frame) the edges are not refined."""
        h, w = self.video_size
        dev = self.model.device
        logits = torch.full((len(outs), 1, h, w), NO_OBJ_SCORE, dtype=torch.float32, device=dev)
        scores = torch.full((len(outs),), NO_OBJ_SCORE, dtype=torch.float32, device=dev)
        have = [i for i, o in enumerate(outs) if o is not None]
        if have:
            low = torch.cat([outs[i].pred_masks for i in have]).to(dev)  # (K, 1, L, L)
            frame = None  # the edge refinement's guide
            if self.postprocess.refines_edges and frame_idx is not None:
                with contextlib.suppress(FrameUnavailableError):  # gone from a stream: unrefined
                    frame = self.store.frame(frame_idx)
            logits[have] = self.postprocess.upscale(low, (h, w), frame)
            scores[have] = torch.cat([outs[i].score for i in have]).view(-1).to(dev)
        return self.postprocess.combine(logits), scores

    def _video_logits(self, outs: list[FrameOutput | None], frame_idx: int) -> tuple[np.ndarray, np.ndarray]:
        logits, scores = self.video_logits(outs, frame_idx)
        return logits[:, 0].cpu().numpy(), scores.cpu().numpy()

    def _fused_output(self, obj: ObjectState, t: int) -> FrameOutput | None:
        """The object's latest output on frame t; with mirror, the mean of the two views' logits and scores."""
        out = self._frame_output(obj, t)
        if self.mirror_state is None or out is None:
            return out
        twin = self._frame_output(self.mirror_state.get(obj.obj_id), t)
        if twin is None:
            return out
        return FrameOutput(pred_masks=(out.pred_masks + twin.pred_masks.flip(-1)) / 2, obj_ptr=out.obj_ptr,
                           score=(out.score + twin.score) / 2)

    def _frame_result(self, t: int, objs: list[ObjectState]) -> FrameResult:
        logits, scores = self._video_logits([self._fused_output(o, t) for o in objs], t)
        return FrameResult(t, [o.obj_id for o in objs], logits, scores)

    def _object_result(self, t: int, obj_id, out: FrameOutput) -> ObjectResult:
        logits, scores = self._video_logits([out], t)
        return ObjectResult(t, obj_id, logits[0], float(scores[0]))

    @torch.inference_mode()
    def result(self, frame_idx: int) -> FrameResult:
        """The latest stored result of every object on a frame (objects without one: NO_OBJ_SCORE)."""
        idx = self._check_frame(frame_idx)
        return self._frame_result(idx, list(self.state.objects.values()))

