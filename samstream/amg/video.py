"""Track everything in a video: automatic masks on key frames, tracked through the frames between them.

    for fr in track_all(model, "clip.mp4", key_every=10, points_per_side=16):
        fr.frame_idx, fr.obj_ids, fr.label_map(), fr.new_ids      # FrameResult + the ids started here

The procedure, frame by frame in one forward pass (frames 0, K, 2K, ... are key frames, K = key_every):

1. On a key frame, a `MaskGenerator` segments everything. It reuses the image features the tracker
   computed for that frame (`generate_masks(frame, features=...)`), so a key frame costs one image
   encoding, not two.
2. New objects (`select_new_objects`): the candidate masks are visited in order of predicted IoU (best
   first). A candidate's *covered fraction* is |candidate & covered| / |candidate|, where `covered` is
   the union of the tracked objects' masks on that frame (after overlap resolution) plus the masks
   started earlier on the same frame. A candidate starts a new object when its covered fraction is at
   most `new_object_overlap` and its uncovered part (candidate & ~covered) has at least `min_new_area`
   pixels; the new object's mask is that uncovered part, so new objects never take pixels from tracked
   ones or from each other. On the first key frame nothing is tracked yet, so this rule only removes
   duplicates among the generator's own masks.
3. New objects are added to the `VideoPredictor` session as mask prompts on the key frame (new ids
   1, 2, 3, ... in order of appearance, at most `max_objects`), and every object is tracked to the next
   key frame, where step 1 starts again on top of the tracked masks.
4. Objects that are gone (optional, `drop_after=N`): on a key frame, an object that has had no pixel on
   the last N frames (reported masks, after step 5) stops being tracked; it is listed in that frame's
   `ended_ids`, and later frames no longer carry it (nor spend a tracking pass on it). Its id is not reused.
5. Overlaps (`resolve_overlaps`): per pixel only the object with the highest mask logit keeps its
   logit; the others are clamped to <= -10, so their masks (logit > 0) exclude that pixel. This is the
   session's output pipeline (`MaskPostprocess`) with non_overlap_masks on, so every frame reported has it
   applied: masks never overlap, and label maps, masks and JSON agree. (The tracker's memory is not altered:
   each object keeps tracking its own, unresolved, prediction.)

Memory stays bounded on long videos: results are yielded one frame at a time and not kept, and the
tracking session keeps only the memory the next frames read (`history="window"`). Stopping the
iteration (or Ctrl-C) leaves everything yielded so far valid.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np
import torch

from ..model import SAM2Model
from ..postprocess import MaskPostprocess, apply_non_overlap
from ..precision import check_precision
from ..video.predictor import FrameResult, VideoPredictor
from .generator import MaskGenerator, model_defaults

# the generator's defaults for video: a sparser grid than the official 32 x 32 (4x fewer clicks per key frame)
VIDEO_GENERATOR_DEFAULTS = {"points_per_side": 16, "points_per_batch": 64}


def video_generator_options(model: SAM2Model, **options) -> dict:
    """MaskGenerator options for key frames: VIDEO_GENERATOR_DEFAULTS, the model's own thresholds
    (`generator.model_defaults`), then `options` (None values are left out, i.e. take the default)."""
    return {**VIDEO_GENERATOR_DEFAULTS, **model_defaults(model), **{k: v for k, v in options.items() if v is not None}}


@dataclass
class TrackAllFrame(FrameResult):
    """A FrameResult (overlaps resolved) plus what happened on this frame."""

    key_frame: bool = False  # masks were generated on this frame
    new_ids: list = field(default_factory=list)  # objects started on this frame
    ended_ids: list = field(default_factory=list)  # objects no longer tracked after this frame (drop_after)


# ------------------------------------------------------------------------------------------ the rules
def resolve_overlaps(logits: np.ndarray) -> np.ndarray:
    """(O, H, W) mask logits -> the same with each pixel given to at most one object.

    Per pixel the object with the highest logit keeps its logit (ties: the first object); every other
    object's logit there is clamped to <= -10, so at most one mask (logit > 0) covers the pixel.
    """
    if logits.shape[0] < 2:
        return logits
    return apply_non_overlap(torch.from_numpy(np.ascontiguousarray(logits))).numpy()


def select_new_objects(candidates: Iterable[np.ndarray], covered: np.ndarray | None, *,
                       new_object_overlap: float = 0.3, min_new_area: int = 100) -> list[tuple[int, np.ndarray]]:
    """The candidate masks that start new objects (see the module docstring, step 2).

    candidates: (H, W) bool masks in priority order (best first), any iterable (read once, one at a time).
    covered: (H, W) bool union of the tracked objects' masks, or None for none. Returns [(candidate index,
    new object's mask (H, W) bool)], the mask being the candidate minus what is covered (by tracked objects
    and by the new objects before it).
    """
    _check_rule(new_object_overlap, min_new_area)
    covered = None if covered is None else np.array(covered, dtype=bool)  # a copy: it grows below
    out = []
    for i, cand in enumerate(candidates):
        cand = np.asarray(cand, dtype=bool)
        if covered is None:
            covered = np.zeros(cand.shape, dtype=bool)
        if cand.shape != covered.shape:
            raise ValueError(f"candidate {i} is {cand.shape}, the covered mask {covered.shape}")
        area = int(cand.sum())
        if area == 0:
            continue
        overlap = int((cand & covered).sum())
        if overlap / area > new_object_overlap or area - overlap < min_new_area:
            continue
        new = cand & ~covered
        out.append((i, new))
        covered |= new
    return out


def ranked_masks(found) -> Iterator[np.ndarray]:
    """A generator's result (`GeneratedMasks`, or anything with len, .ious (N,) and .mask(i) (H, W)) -> its
    masks as (H, W) bool arrays, highest predicted IoU first (stable for ties), built one at a time."""
    if len(found) == 0:
        return
    ious = torch.as_tensor(found.ious).float().cpu()
    for i in torch.argsort(-ious, stable=True).tolist():
        yield torch.as_tensor(found.mask(i)).cpu().numpy().astype(bool)


# ------------------------------------------------------------------------------------------ the pass
class TrackAll:
    """Track everything in one video (see the module docstring); iterate `run()` for the frames.

    model: a SAM2Model. source: anything `VideoPredictor` reads (file, folder, frames, iterator).
    key_every: frames between key frames (>= 1). generator: a MaskGenerator to use as is, or None to build one
    from generator_options (MaskGenerator keyword arguments over `video_generator_options(model)`).
    new_object_overlap, min_new_area: the new-object rule (`select_new_objects`). max_objects: ids stop at this
    (indexed PNGs hold 255). drop_after: stop tracking an object after this many frames without a pixel
    (checked on key frames; None: track every object to the end). postprocess: the output pipeline (None: the
    model's inference defaults), always with non_overlap_masks. predictor_options: other keyword arguments for
    the VideoPredictor. precision: "fp32" (default, exact), "bf16" or "fp16" for the tracker and the generator
    it builds (see `samstream.precision`; a given generator must have the same).
    """

    def __init__(self, model: SAM2Model, source, *, key_every: int = 10, generator: MaskGenerator | None = None,
                 new_object_overlap: float = 0.3, min_new_area: int = 100, max_objects: int = 255,
                 drop_after: int | None = None, progress: bool = True, generator_options: dict | None = None,
                 predictor_options: dict | None = None, postprocess: MaskPostprocess | None = None,
                 precision: str = "fp32"):
        check_precision(precision)
        _check_int("key_every", key_every, 1)
        if drop_after is not None:
            _check_int("drop_after", drop_after, 1)
        _check_int("min_new_area", min_new_area, 1)
        _check_int("max_objects", max_objects, 1)
        _check_rule(new_object_overlap, min_new_area)  # here too, to fail before the video is opened
        if generator is None:
            generator = MaskGenerator(model, precision=precision,
                                      **video_generator_options(model, **(generator_options or {})))
        elif generator_options:
            raise ValueError("give a generator or generator_options, not both")
        elif getattr(generator, "precision", precision) != precision:  # it reads the tracker's features
            raise ValueError(f"the generator's precision {generator.precision!r} differs from the session's "
                             f"{precision!r}: give both the same")
        self.generator = generator
        self.key_every = int(key_every)
        self.new_object_overlap = float(new_object_overlap)
        self.min_new_area = int(min_new_area)
        self.max_objects = int(max_objects)
        self.drop_after = drop_after
        self.last_seen: dict = {}  # object id -> last frame where its reported mask had a pixel
        self.progress = progress
        postprocess = MaskPostprocess.resolve(model, postprocess).override(non_overlap_masks=True)
        self.video = VideoPredictor(model, source, progress=False, postprocess=postprocess, precision=precision,
                                    **(predictor_options or {}))
        if not self.video.postprocess.non_overlap_masks:
            self.close()
            raise ValueError("track-all reports disjoint masks: non_overlap_masks cannot be turned off")
        self.next_id = 1
        self.dropped = 0  # new objects not started because max_objects was reached

    def close(self) -> None:
        self.video.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -------------------------------------------------------------------------- one key frame
    def _key_frame(self, t: int, tracked: FrameResult | None) -> TrackAllFrame:
        """Generate masks on frame t, start the new objects, and return frame t's result with them."""
        vp = self.video
        frame = vp.frame(t)  # (H, W, 3) uint8
        with vp.autocast():  # the tracker's encoding of frame t (cached): reused by the generator
            features = vp.store.features(t)
        candidates = ranked_masks(self.generator.generate_masks(frame, features=features))
        covered = None if tracked is None or not tracked.obj_ids else tracked.masks.any(axis=0)  # (H, W)
        new_ids = []
        for _, mask in select_new_objects(candidates, covered, new_object_overlap=self.new_object_overlap,
                                          min_new_area=self.min_new_area):
            if self.next_id > self.max_objects:
                self.dropped += 1
                continue
            vp.add_mask(t, self.next_id, mask)
            new_ids.append(self.next_id)
            self.next_id += 1
        if vp.obj_ids:
            res = vp.result(t) if new_ids or tracked is None else tracked
        else:
            res = _empty_result(t, vp.video_size)
        return _resolved(res, key_frame=True, new_ids=new_ids)

    def _seen(self, res: TrackAllFrame) -> TrackAllFrame:
        """Note which objects have pixels on this frame; on a key frame, end the ones gone for drop_after frames."""
        for oid, m in zip(res.obj_ids, res.masks):
            if m.any() or oid in res.new_ids:
                self.last_seen[oid] = res.frame_idx
        if res.key_frame and self.drop_after is not None:
            res.ended_ids = [o for o in self.video.obj_ids if res.frame_idx - self.last_seen[o] >= self.drop_after]
            for o in res.ended_ids:
                self.video.remove_object(o)
        return res

    # -------------------------------------------------------------------------- the whole pass
    def run(self, max_frames: int | None = None) -> Iterator[TrackAllFrame]:
        """Yield a TrackAllFrame per frame, in order, from frame 0.

        max_frames: frames to process after frame 0 (as `samstream track --max-frames`; default: all).
        """
        if max_frames is not None:
            _check_int("max_frames", max_frames, 0)
        vp = self.video
        n = vp.num_frames
        last = None if max_frames is None else max_frames  # last frame index to process
        if n is not None:
            last = n - 1 if last is None else min(last, n - 1)
        from tqdm import tqdm

        bar = tqdm(total=None if last is None else last + 1, desc="track-all", unit="frame", disable=not self.progress)
        try:
            k, tracked = 0, None  # the key frame, and its objects' tracked result (None on frame 0)
            while vp.has_frame(k) and (last is None or k <= last):
                res = self._seen(self._key_frame(k, tracked))
                yield res
                bar.update(1)
                bar.set_postfix(objects=len(vp.obj_ids))
                stop = k + self.key_every if last is None else min(k + self.key_every, last)
                tracked = None
                for res in self._segment(k + 1, stop):  # frames k+1 .. stop (stop: the next key frame)
                    if res.frame_idx == k + self.key_every:
                        tracked = res
                        continue
                    yield self._seen(res)
                    bar.update(1)
                if tracked is None:
                    break  # the video (or max_frames) ended before the next key frame
                k += self.key_every
        finally:
            bar.close()

    def _segment(self, first: int, stop: int) -> Iterator[TrackAllFrame]:
        """Frames first .. stop (inclusive, or up to the video's end), tracked; overlaps resolved."""
        vp = self.video
        if stop < first:
            return
        if vp.obj_ids:
            if not vp.has_frame(first):
                return
            for res in vp.propagate(start=first, max_frames=stop - first, progress=False):
                yield _resolved(res)
            return
        for t in range(first, stop + 1):  # nothing tracked yet: empty frames up to the next key frame
            if not vp.has_frame(t):
                return
            yield _resolved(_empty_result(t, vp.video_size))


def track_all(model: SAM2Model, source, *, key_every: int = 10, max_frames: int | None = None,
              new_object_overlap: float = 0.3, min_new_area: int = 100, max_objects: int = 255,
              drop_after: int | None = None, progress: bool = True, generator: MaskGenerator | None = None,
              postprocess: MaskPostprocess | None = None, precision: str = "fp32",
              **generator_options) -> Iterator[TrackAllFrame]:
    """Track everything in a video: a TrackAllFrame per frame (see the module docstring and `TrackAll`).

    Extra keyword arguments are MaskGenerator options (see `video_generator_options` for the defaults).
    """
    ta = TrackAll(model, source, key_every=key_every, generator=generator, new_object_overlap=new_object_overlap,
                  min_new_area=min_new_area, max_objects=max_objects, drop_after=drop_after, progress=progress,
                  generator_options=generator_options, postprocess=postprocess, precision=precision)
    try:
        yield from ta.run(max_frames)
    finally:
        ta.close()


# ------------------------------------------------------------------------------------------ helpers
def _empty_result(t: int, hw: tuple[int, int]) -> FrameResult:
    return FrameResult(t, [], np.zeros((0, *hw), dtype=np.float32), np.zeros(0, dtype=np.float32))


def _resolved(res: FrameResult, key_frame: bool = False, new_ids: list | None = None) -> TrackAllFrame:
    """A session's result (overlaps resolved by its postprocess) as a TrackAllFrame."""
    return TrackAllFrame(res.frame_idx, list(res.obj_ids), res.logits, res.scores, key_frame=key_frame,
                         new_ids=list(new_ids or []))


def _check_rule(new_object_overlap: float, min_new_area: int) -> None:
    """The new-object rule's parameters (`select_new_objects`)."""
    if not 0.0 <= new_object_overlap <= 1.0:
        raise ValueError(f"new_object_overlap must be in [0, 1], got {new_object_overlap}")
    if min_new_area < 1:
        raise ValueError(f"min_new_area must be >= 1 pixel, got {min_new_area}")


def _check_int(name: str, value, minimum: int) -> None:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
