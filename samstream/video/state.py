"""The one explicit state of a tracking session: prompts, outputs and tracking history per object.

Nothing else holds per-video data (the model is stateless, the frame caches are bounded), so what
this object stores is what the session costs. Per object:

* prompts: clicks/boxes and masks per frame;
* `cond`: outputs of conditioning (prompted) frames, with their memory; kept for the whole session;
* `non_cond`: outputs of tracked frames, with their memory; with history="window" only those the next
  frames can still read are kept (see `evict`);
* `pending`: outputs of frames prompted since the last propagation, whose memory is not encoded yet;
* `tracked`: which frames were tracked and in which direction, as runs of frames (a few numbers per
  propagation pass, whatever the video length).
"""
from __future__ import annotations

import bisect
from collections import OrderedDict
from dataclasses import dataclass

import torch


@dataclass
class FrameOutput:
    """What is kept of one object on one frame (E = image_size / 16, L = image_size / 4)."""

    pred_masks: torch.Tensor  # (1, 1, L, L) float32 low-res logits (small holes already filled)
    obj_ptr: torch.Tensor  # (1, C) object pointer
    score: torch.Tensor  # (1, 1) object score logit: > 0 visible, <= 0 occluded / absent
    maskmem: torch.Tensor | None = None  # (1, Cm, E, E) memory features in the storage dtype; None until encoded

    def tensors(self) -> list[torch.Tensor]:
        return [t for t in (self.pred_masks, self.obj_ptr, self.score, self.maskmem) if t is not None]


class TrackedFrames:
    """Frames an object was tracked on, with the direction, stored as runs [start, end] of one direction."""

    def __init__(self):
        self._starts: list[int] = []
        self._runs: list[list] = []  # [start, end, reverse], sorted, disjoint

    def get(self, frame: int) -> bool | None:
        """reverse flag of the pass that last tracked `frame`, or None if never tracked."""
        i = bisect.bisect_right(self._starts, frame) - 1
        if i >= 0 and self._runs[i][0] <= frame <= self._runs[i][1]:
            return self._runs[i][2]
        return None

    def __contains__(self, frame: int) -> bool:
        return self.get(frame) is not None

    def discard(self, frame: int) -> None:
        i = bisect.bisect_right(self._starts, frame) - 1
        if i < 0 or not self._runs[i][0] <= frame <= self._runs[i][1]:
            return
        s, e, rev = self._runs.pop(i)
        self._starts.pop(i)
        for a, b in ((s, frame - 1), (frame + 1, e)):
            if a <= b:
                j = bisect.bisect_left(self._starts, a)
                self._starts.insert(j, a)
                self._runs.insert(j, [a, b, rev])

    def add(self, frame: int, reverse: bool) -> None:
        if self.get(frame) == reverse:
            return
        self.discard(frame)
        j = bisect.bisect_left(self._starts, frame)
        self._starts.insert(j, frame)
        self._runs.insert(j, [frame, frame, reverse])
        # merge with neighbours of the same direction
        if j + 1 < len(self._runs) and self._runs[j + 1][0] == frame + 1 and self._runs[j + 1][2] == reverse:
            self._runs[j][1] = self._runs[j + 1][1]
            del self._runs[j + 1], self._starts[j + 1]
        if j > 0 and self._runs[j - 1][1] == frame - 1 and self._runs[j - 1][2] == reverse:
            self._runs[j - 1][1] = self._runs[j][1]
            del self._runs[j], self._starts[j]

    def clear(self) -> None:
        self._starts.clear()
        self._runs.clear()

    @property
    def num_runs(self) -> int:
        return len(self._runs)

    def frames(self) -> list[int]:
        return [t for s, e, _ in self._runs for t in range(s, e + 1)]


class ObjectState:
    """Everything the session knows about one object."""

    def __init__(self, obj_id):
        self.obj_id = obj_id
        # frame -> (coords (1, N, 2) in model-input pixels, labels (1, N))
        self.points: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        self.masks: dict[int, torch.Tensor] = {}  # frame -> (1, 1, S, S) binary float mask at model size
        self.cond: dict[int, FrameOutput] = {}
        self.non_cond: dict[int, FrameOutput] = {}
        self.pending: dict[int, tuple[FrameOutput, bool]] = {}  # frame -> (output, becomes conditioning)
        self.tracked = TrackedFrames()

    def prompted_frames(self) -> set[int]:
        return set(self.points) | set(self.masks)

    def output(self, frame: int) -> FrameOutput | None:
        """The latest output on a frame: a pending prompt result first, then stored ones."""
        if frame in self.pending:
            return self.pending[frame][0]
        return self.cond.get(frame) or self.non_cond.get(frame)

    def clear_results(self) -> None:
        for d in (self.points, self.masks, self.cond, self.non_cond, self.pending):
            d.clear()
        self.tracked.clear()


class TrackingState:
    """Per-object state of a session, plus the few per-session constants."""

    def __init__(self, num_frames: int | None, history: str = "window"):
        if history not in ("window", "all"):
            raise ValueError(f"history must be 'window' (bounded memory) or 'all' (keep every frame), got {history!r}")
        self.num_frames = num_frames
        self.history = history
        self.objects: OrderedDict = OrderedDict()  # obj_id -> ObjectState, in order of creation
        self.maskmem_pos: torch.Tensor | None = None  # (1, Cm, E, E): the same for every memory, stored once
        self.evicted = 0  # outputs dropped by the window policy (statistics)

    # -- objects
    @property
    def obj_ids(self) -> list:
        return list(self.objects)

    def get(self, obj_id) -> ObjectState:
        try:
            return self.objects[obj_id]
        except (KeyError, TypeError):
            raise KeyError(f"unknown object id {obj_id!r}; known ids: {self.obj_ids}") from None

    def get_or_create(self, obj_id) -> ObjectState:
        if obj_id not in self.objects:
            if not isinstance(obj_id, (int, str)) or isinstance(obj_id, bool):
                raise TypeError(f"object ids must be ints or strings, got {type(obj_id).__name__}")
            self.objects[obj_id] = ObjectState(obj_id)
        return self.objects[obj_id]

    def remove(self, obj_id) -> ObjectState:
        obj = self.get(obj_id)
        del self.objects[obj_id]
        return obj

    def reset(self) -> None:
        self.objects.clear()

    # -- memory bound
    def evict(self, obj: ObjectState, head: int, window: int) -> None:
        """Drop non-conditioning outputs that frames after `head` (in the tracking direction) can no longer read.

        Outputs `window` or more frames behind the head go, and so do those as far ahead of it (left by
        an earlier pass: this pass recomputes a frame before any later frame reads it), so an object
        never keeps more than about 2 * window tracked frames.
        """
        if self.history == "all":
            return
        stale = [t for t in obj.non_cond if abs(head - t) >= window]
        for t in stale:
            del obj.non_cond[t]
        self.evicted += len(stale)

    # -- statistics
    def stats(self) -> dict:
        """Counts of what is stored, for tests and monitoring of memory use."""
        n_cond = sum(len(o.cond) for o in self.objects.values())
        n_non = sum(len(o.non_cond) for o in self.objects.values())
        n_pend = sum(len(o.pending) for o in self.objects.values())
        tensors = [t for o in self.objects.values()
                   for out in (*o.cond.values(), *o.non_cond.values(), *(p for p, _ in o.pending.values()))
                   for t in out.tensors()]
        tensors += [t for o in self.objects.values() for t in o.masks.values()]
        tensors += [t for o in self.objects.values() for pts in o.points.values() for t in pts]
        return {
            "objects": len(self.objects),
            "cond_frames": n_cond,
            "non_cond_frames": n_non,
            "pending_frames": n_pend,
            "tracked_runs": sum(o.tracked.num_runs for o in self.objects.values()),
            "tensors": len(tensors),
            "bytes": sum(t.numel() * t.element_size() for t in tensors),
        }
