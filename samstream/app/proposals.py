"""Automatic proposals: every object the model finds on one frame (our MaskGenerator), offered to the annotator,
who accepts them as objects or rejects them, as SA-V's automatic masklets were made.

Proposals are suggestions, not annotations: they live in memory (per video, `ProposalBook`) until accepted or
rejected, and never reach the store unless accepted. Settings suit interactive use on a CPU: a coarse grid of
`GRID` x `GRID` clicks, one crop layer, and an IoU threshold a little below the generator's (`IOU_SLACK`): the
annotator is the last filter, so a borderline mask is better shown than hidden.
"""
from __future__ import annotations

import threading

import numpy as np

from ..amg import MaskGenerator
from ..amg.generator import model_defaults
from ..io.rle import encode_rle
from .store import NotFound

GRID = 12  # clicks per side: 144 clicks, ~0.2 s on a 320x240 frame, ~2 s on 854x480 with the embedded model (CPU)
IOU_SLACK = 0.1  # below the generator's pred_iou_thresh (0.8 official, the calibrated one for models trained here)
OVERLAP_IOU = 0.5  # a proposal this close to an existing object's mask is already annotated: left out
MAX_PROPOSALS = 64  # per frame, the most confident ones
_OFFICIAL_IOU = 0.8


def generator(model, precision: str = "fp32") -> MaskGenerator:
    """The interactive proposal generator for `model`, run at `precision` (samstream.precision)."""
    iou = model_defaults(model).get("pred_iou_thresh", _OFFICIAL_IOU) - IOU_SLACK
    return MaskGenerator.for_model(model, points_per_side=GRID, pred_iou_thresh=iou, precision=precision)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two (H, W) bool masks (0 when both are empty)."""
    union = np.count_nonzero(a | b)
    return np.count_nonzero(a & b) / union if union else 0.0


def generate(model, rgb: np.ndarray, existing: list[np.ndarray], precision: str = "fp32") -> list[dict]:
    """Proposals for one frame: rgb (H, W, 3) uint8 at full resolution; existing: the (H, W) bool masks already
    on that frame -> [{"rle", "area", "score", "bbox": [x, y, w, h]}], most confident first, without the masks
    that overlap an existing one by IoU > OVERLAP_IOU."""
    found = generator(model, precision).generate_masks(rgb)
    order = np.argsort(-found.ious.float().cpu().numpy(), kind="stable")
    out = []
    for i in order:
        if len(out) >= MAX_PROPOSALS:
            break
        m = found.mask(int(i)).cpu().numpy()
        if not m.any() or any(iou(m, e) > OVERLAP_IOU for e in existing):
            continue
        x0, y0, x1, y1 = (int(v) for v in found.boxes[int(i)])  # x1, y1: the last pixel inside
        out.append({"rle": encode_rle(m), "area": int(np.count_nonzero(m)), "score": float(found.ious[int(i)]),
                    "bbox": [x0, y0, x1 - x0 + 1, y1 - y0 + 1]})
    return out


class ProposalBook:
    """The proposals of every video, in memory: id -> {"id", "frame", "rle", "area", "score", "bbox"}. Ids count
    up per video and are never reused while the server runs. Thread-safe."""

    def __init__(self):
        self._lock = threading.Lock()
        self._videos: dict[int, dict[int, dict]] = {}
        self._next: dict[int, int] = {}

    def replace(self, video_id: int, frame: int, items: list[dict]) -> list[dict]:
        """The frame's proposals become `items` (given ids) -> them."""
        with self._lock:
            book = self._videos.setdefault(video_id, {})
            for pid in [p for p, v in book.items() if v["frame"] == frame]:
                del book[pid]
            out = []
            for item in items:
                pid = self._next.get(video_id, 1)
                self._next[video_id] = pid + 1
                book[pid] = {"id": pid, "frame": frame, **item}
                out.append(book[pid])
            return [dict(p) for p in out]

    def list(self, video_id: int, frame: int | None = None) -> list[dict]:
        with self._lock:
            return [dict(p) for p in self._videos.get(video_id, {}).values() if frame is None or p["frame"] == frame]

    def get(self, video_id: int, pid: int) -> dict:
        with self._lock:
            p = self._videos.get(video_id, {}).get(pid)
        if p is None:
            raise NotFound(f"video {video_id} has no proposal {pid} (accepted, rejected, or replaced)")
        return dict(p)

    def drop(self, video_id: int, pid: int) -> None:
        """Removes one proposal; NotFound if it is not there."""
        self.get(video_id, pid)
        with self._lock:
            self._videos.get(video_id, {}).pop(pid, None)

    def clear(self, video_id: int, frame: int | None = None) -> int:
        """Drops the video's proposals (of one frame, or all) -> how many."""
        with self._lock:
            book = self._videos.get(video_id, {})
            gone = [p for p, v in book.items() if frame is None or v["frame"] == frame]
            for p in gone:
                del book[p]
            return len(gone)
