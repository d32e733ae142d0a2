"""SAM 2's memory selection policy, torch-free: the same functions as `samstream.video.memory` (which this
runtime cannot import, as it pulls in torch), over any config object with SAM2Config's field names.
tests/test_export_runtime.py checks that both choose the same frames, slots and pointer positions."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass
class MemorySelection:
    spatial: list[tuple[int, Any, int]] = field(default_factory=list)  # (frame, output, tpos slot), in order
    pointers: list[tuple[int, Any, int]] = field(default_factory=list)  # (frame, output, temporal position)

    def layout(self) -> tuple[int, int]:
        return len(self.spatial), len(self.pointers)


def select_cond_frames(frame_idx: int, cond: Mapping[int, Any], max_cond: int) -> tuple[dict, dict]:
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


def max_pointers(cfg, num_frames: int | None) -> int:
    return cfg.max_obj_ptrs_in_encoder if num_frames is None else min(num_frames, cfg.max_obj_ptrs_in_encoder)


def select_memory(frame_idx: int, reverse: bool, cond: Mapping[int, Any], non_cond: Mapping[int, Any], cfg,
                  num_frames: int | None) -> MemorySelection:
    sel = MemorySelection()
    selected, unselected = select_cond_frames(frame_idx, cond, cfg.max_cond_frames_in_attn)
    n = cfg.num_maskmem
    for t, out in selected.items():
        sel.spatial.append((t, out, n - 1))
    for t, t_pos in recent_frame_indices(frame_idx, reverse, n, cfg.memory_temporal_stride_for_eval):
        out = non_cond.get(t)
        if out is None:
            out = unselected.get(t)
        if out is not None:
            sel.spatial.append((t, out, n - t_pos - 1))
    sign = -1 if reverse else 1
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


def window_behind(cfg, num_frames: int | None) -> int:
    r = cfg.memory_temporal_stride_for_eval
    return max((cfg.num_maskmem - 1) * r + r, max_pointers(cfg, num_frames))
