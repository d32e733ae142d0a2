"""What a tracker reports per frame: numpy arrays only (no torch), so that the PyTorch tracker (samstream.video)
and the ONNX Runtime one (samstream.runtime) return the same objects."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class ObjectResult:
    """One object on one frame."""

    frame_idx: int
    obj_id: int | str
    logits: np.ndarray  # (H, W) float32 mask logits at video resolution; > 0 is the object
    score: float  # object score logit: > 0 visible, <= 0 occluded or absent

    @property
    def mask(self) -> np.ndarray:
        return self.logits > 0

    @property
    def visible(self) -> bool:
        return self.score > 0


@dataclass
class FrameResult:
    """All objects on one frame, in the order of `obj_ids`."""

    frame_idx: int
    obj_ids: list
    logits: np.ndarray  # (O, H, W) float32 mask logits at video resolution
    scores: np.ndarray  # (O,) object score logits; objects without an output here get NO_OBJ_SCORE

    @property
    def masks(self) -> np.ndarray:
        """(O, H, W) bool."""
        return self.logits > 0

    @property
    def visible(self) -> np.ndarray:
        return self.scores > 0

    def __getitem__(self, obj_id) -> ObjectResult:
        try:
            i = self.obj_ids.index(obj_id)
        except ValueError:
            raise KeyError(f"object {obj_id!r} is not in this result; objects: {self.obj_ids}") from None
        return ObjectResult(self.frame_idx, obj_id, self.logits[i], float(self.scores[i]))

    def label_map(self) -> np.ndarray:
        """(H, W) int64: per pixel the id of the object with the highest positive logit, 0 elsewhere.
        Needs integer object ids."""
        if not self.obj_ids:
            return np.zeros(self.logits.shape[1:] or (0, 0), dtype=np.int64)
        ids = np.asarray(self.obj_ids)
        if not np.issubdtype(ids.dtype, np.integer):
            raise TypeError(f"a label map needs integer object ids, got {self.obj_ids}")
        best = self.logits.argmax(axis=0)
        fg = self.logits.max(axis=0) > 0
        return np.where(fg, ids[best], 0)
