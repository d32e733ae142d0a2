"""Video: memory selection policy and state bookkeeping."""
from __future__ import annotations

import pytest
import torch

from samstream.memory import (
    recent_frame_indices,
    select_cond_frames,
    select_memory,
    window_behind,
)
from samstream.model import official_config
from samstream.video.state import FrameOutput, TrackedFrames, TrackingState


# ------------------------------------------------------------------------------------------ memory policy
def _outs(frames) -> dict:
    return {t: f"out{t}" for t in frames}


def test_memory_sizes_match_the_facts_for_a_click_on_frame_0():
    """12-frame video, one click on frame 0 (sam2-facts 3.11): 1 frame + 1 pointer on frame 1, 2 + 2 on
    frame 2, 7 + 7 on frame 7, 7 + 11 on frame 11."""
    cfg = official_config("sam2.1_hiera_tiny")
    cond = _outs([0])
    for f, n_spatial, n_ptr in ((1, 1, 1), (2, 2, 2), (7, 7, 7), (11, 7, 11)):
        sel = select_memory(f, False, cond, _outs(range(1, f)), cfg, num_frames=12)
        assert sel.layout() == (n_spatial, n_ptr)
        assert n_spatial * 4096 + n_ptr * 4 == {1: 4100, 2: 8200, 7: 28700, 11: 28716}[f]


def test_memory_slots_and_pointer_positions_forward_and_reverse():
    cfg = official_config("sam2.1_hiera_tiny")
    sel = select_memory(10, False, _outs([0, 20]), _outs(range(1, 10)), cfg, num_frames=30)
    # conditioning frames in slot 6; recent frames 4..9 oldest first in slots 5..0
    assert [(t, s) for t, _, s in sel.spatial] == [(0, 6), (20, 6), (4, 5), (5, 4), (6, 3), (7, 2), (8, 1), (9, 0)]
    # only past conditioning pointers (frame 20 is ahead), signed distance 10, then 9 previous frames
    assert [(t, p) for t, _, p in sel.pointers] == [(0, 10)] + [(10 - k, k) for k in range(1, 10)]
    rev = select_memory(10, True, _outs([0, 20]), _outs(range(11, 20)), cfg, num_frames=30)
    assert [(t, s) for t, _, s in rev.spatial][2:] == [(16, 5), (15, 4), (14, 3), (13, 2), (12, 1), (11, 0)]
    assert next((t, p) for t, _, p in rev.pointers) == (20, 10)  # (10 - 20) * -1
    # SAM 2.0: unsigned distances
    cfg20 = official_config("sam2_hiera_tiny")
    assert select_memory(10, True, _outs([20]), {}, cfg20, 30).pointers == [(20, "out20", 10)]


def test_memory_stride_grid_and_pointer_budget():
    assert recent_frame_indices(20, False, 7, 1) == [(14, 1), (15, 2), (16, 3), (17, 4), (18, 5), (19, 6)]
    # stride 3: the frame before, then frames on the multiple-of-3 grid below f - 2
    assert recent_frame_indices(20, False, 7, 3) == [(6, 1), (9, 2), (12, 3), (15, 4), (18, 5), (19, 6)]
    assert recent_frame_indices(20, True, 7, 3) == [(36, 1), (33, 2), (30, 3), (27, 4), (24, 5), (21, 6)]
    cfg = official_config("sam2.1_hiera_tiny")
    sel = select_memory(40, False, _outs([0]), _outs(range(1, 40)), cfg, num_frames=100)
    assert len(sel.pointers) == 16  # cond pointer + 15 previous frames (max_obj_ptrs_in_encoder 16)
    sel = select_memory(5, False, _outs([0]), _outs(range(1, 5)), cfg, num_frames=6)
    assert [p for _, _, p in sel.pointers] == [5, 1, 2, 3, 4]  # stops at the video start
    assert window_behind(cfg, 100) >= 16 and window_behind(cfg, None) >= 16


def test_select_cond_frames_caps_to_the_closest():
    cond = _outs([0, 10, 20, 30, 40])
    sel, unsel = select_cond_frames(22, cond, 3)
    assert sorted(sel) == [10, 20, 30] and sorted(unsel) == [0, 40]
    sel, unsel = select_cond_frames(22, cond, -1)
    assert sorted(sel) == [0, 10, 20, 30, 40] and not unsel
    with pytest.raises(ValueError):
        select_cond_frames(22, cond, 1)
    # an unselected conditioning frame can still serve as a recent frame
    cfg = official_config("sam2.1_hiera_tiny")
    cfg.max_cond_frames_in_attn = 2
    out = select_memory(7, False, _outs([0, 5, 6, 40]), {}, cfg, 100)
    assert [(t, s) for t, _, s in out.spatial] == [(6, 6), (40, 6), (5, 1)]


# ------------------------------------------------------------------------------------------ state
def test_tracked_frames_runs():
    tf = TrackedFrames()
    for t in range(100):
        tf.add(t, False)
    assert tf.num_runs == 1 and tf.get(50) is False and tf.get(100) is None
    for t in range(60, 40, -1):
        tf.add(t, True)
    assert tf.num_runs == 3 and tf.get(50) is True and tf.get(61) is False
    tf.discard(50)
    assert 50 not in tf and tf.get(49) is True and tf.get(51) is True
    assert tf.frames() == [t for t in range(100) if t != 50]


def test_state_eviction_keeps_a_window_and_conditioning_frames():
    st = TrackingState(None)
    obj = st.get_or_create(1)
    out = FrameOutput(torch.zeros(1, 1, 4, 4), torch.zeros(1, 8), torch.ones(1, 1), torch.zeros(1, 2, 2, 2))
    obj.cond[0] = out
    for t in range(1, 200):
        obj.non_cond[t] = out
        st.evict(obj, t, 16)
    assert sorted(obj.non_cond) == list(range(184, 200)) and 0 in obj.cond
    everything = TrackingState(None, history="all")
    o2 = everything.get_or_create(1)
    for t in range(1, 50):
        o2.non_cond[t] = out
        everything.evict(o2, t, 16)
    assert len(o2.non_cond) == 49
    with pytest.raises(KeyError, match="unknown object id 7"):
        st.get(7)
    with pytest.raises(ValueError, match="history"):
        TrackingState(None, history="some")
