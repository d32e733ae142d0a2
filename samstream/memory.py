"""SAM 2's memory selection policy: which stored frames an object attends to on the current frame.

Pure functions over an object's stored outputs, so the policy can be read and tested on its own. Torch-free:
the PyTorch tracker (samstream.video) and the ONNX Runtime one (samstream.runtime) both use it.
For frame f tracked in direction d (+1 forward, -1 backward) the memory is

* every conditioning (prompted) frame, or the closest `max_cond_frames_in_attn` of them, with the
  "conditioning" temporal slot (index num_maskmem - 1);
* up to num_maskmem - 1 recent tracked frames: f - d, then frames on the stride-r grid going back
  (temporal slots num_maskmem - 2 ... 0, 0 being the most recent); missing frames are skipped;
* object pointers: those of the conditioning frames (in eval only the ones not in the future of the
  tracking direction), then those of the previous frames f - d*k, k = 1 .. P - 1, where
  P = min(num_frames, max_obj_ptrs_in_encoder), each with its temporal distance.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # only for annotations: importing samstream.model would import torch
    from .model import SAM2Config


@dataclass
class MemorySelection:
    """What one object attends to on one frame."""

    spatial: list[tuple[int, Any, int]] = field(default_factory=list)  # (frame, output, tpos slot), in order
    pointers: list[tuple[int, Any, int]] = field(default_factory=list)  # (frame, output, temporal position)

    def layout(self) -> tuple[int, int]:
        """(number of spatial memories, number of pointers): objects with equal layouts batch together."""
        return len(self.spatial), len(self.pointers)


def select_cond_frames(frame_idx: int, cond: Mapping[int, Any], max_cond: int) -> tuple[dict, dict]:
    """-> (selected, unselected) conditioning outputs. Unlimited when max_cond == -1 or not exceeded;
    otherwise the closest one before the frame, the closest at/after it, then the nearest others."""
    if max_cond == -1 or len(cond) <= max_cond:
        return dict(cond), {}
    if max_cond < 2:
        raise ValueError("max_cond_frames_in_attn must be -1 or >= 2")
    selected: dict = {}
    before = [t for t in cond if t < frame_idx]
    after = [t for t in cond if t >= frame_idx]
    if before:
        selected[max(before)] = cond[max(before)]
    if after:
        selected[min(after)] = cond[min(after)]
    rest = sorted((t for t in cond if t not in selected), key=lambda t: abs(t - frame_idx))
    for t in rest[: max_cond - len(selected)]:
        selected[t] = cond[t]
    return selected, {t: v for t, v in cond.items() if t not in selected}


def recent_frame_indices(frame_idx: int, reverse: bool, num_maskmem: int, stride: int) -> list[tuple[int, int]]:
    """-> [(frame, t_pos)] for t_pos = 1 .. num_maskmem - 1 (oldest first); the frame t_rel = num_maskmem - t_pos
    steps back is f -/+ 1 for t_rel = 1, else on the stride grid."""
    out = []
    for t_pos in range(1, num_maskmem):
        t_rel = num_maskmem - t_pos
        if t_rel == 1:
            t = frame_idx + 1 if reverse else frame_idx - 1
        elif not reverse:
            t = ((frame_idx - 2) // stride) * stride - (t_rel - 2) * stride
        else:
            t = -(-(frame_idx + 2) // stride) * stride + (t_rel - 2) * stride
        out.append((t, t_pos))
    return out


def max_pointers(cfg: SAM2Config, num_frames: int | None) -> int:
    """P: the pointer budget, which also normalises the pointers' temporal positions (P - 1)."""
    return cfg.max_obj_ptrs_in_encoder if num_frames is None else min(num_frames, cfg.max_obj_ptrs_in_encoder)


def select_memory(frame_idx: int, reverse: bool, cond: Mapping[int, Any], non_cond: Mapping[int, Any],
                  cfg: SAM2Config, num_frames: int | None) -> MemorySelection:
    """The memory of a frame that is not the object's initial conditioning frame.

    cond / non_cond: {frame: output} of the object. Outputs are returned as stored (not copied).
    """
    sel = MemorySelection()
    selected, unselected = select_cond_frames(frame_idx, cond, cfg.max_cond_frames_in_attn)
    n = cfg.num_maskmem
    for t, out in selected.items():
        sel.spatial.append((t, out, n - 1))  # conditioning slot
    for t, t_pos in recent_frame_indices(frame_idx, reverse, n, cfg.memory_temporal_stride_for_eval):
        out = non_cond.get(t)
        if out is None:
            out = unselected.get(t)
        if out is not None:
            sel.spatial.append((t, out, n - t_pos - 1))

    sign = -1 if reverse else 1
    # eval: only conditioning frames that are not ahead in the tracking direction
    for t, out in selected.items():
        if (t >= frame_idx) if reverse else (t <= frame_idx):
            pos = (frame_idx - t) * sign if cfg.use_signed_tpos_enc_to_obj_ptrs else abs(frame_idx - t)
            sel.pointers.append((t, out, pos))
    for t_diff in range(1, max_pointers(cfg, num_frames)):
        t = frame_idx - sign * t_diff
        if t < 0 or (num_frames is not None and t >= num_frames):
            break
        out = non_cond.get(t)
        if out is None:
            out = unselected.get(t)
        if out is not None:
            sel.pointers.append((t, out, t_diff))
    return sel


def window_behind(cfg: SAM2Config, num_frames: int | None) -> int:
    """How many frames behind the tracking head the next frames may still read (spatial memory on the
    stride grid, and pointers): older non-conditioning outputs can be evicted."""
    r = cfg.memory_temporal_stride_for_eval
    spatial = (cfg.num_maskmem - 1) * r + r  # the stride grid reaches at most ~(n-1)*r + r - 1 back
    return max(spatial, max_pointers(cfg, num_frames))
