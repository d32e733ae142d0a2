"""Video: memory selection policy and state bookkeeping, plus helpers shared by the other video tests."""
from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from samstream.model import HieraConfig, SAM2Config, SAM2Model, official_config
from samstream.video.memory import (
    recent_frame_indices,
    select_cond_frames,
    select_memory,
    window_behind,
)
from samstream.video.state import FrameOutput, TrackedFrames, TrackingState

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
BLACKSWAN = DATA / "davis2016" / "JPEGImages" / "480p" / "blackswan"
BEDROOM_MP4 = DATA / "sam2-assets" / "videos" / "bedroom.mp4"


# ------------------------------------------------------------------------------------------ shared helpers
def small_config(**kw) -> SAM2Config:
    """A SAM 2.1-shaped model small enough to track thousands of frames in seconds on a CPU."""
    trunk = HieraConfig(embed_dim=8, num_heads=1, stages=(1, 1, 1, 1), global_att_blocks=(2, 3),
                        window_spec=(4, 4, 4, 4), window_pos_embed_bkg_spatial_size=(4, 4))
    base = dict(name="test-small", trunk=trunk, image_size=64, hidden_dim=32, mem_dim=16, mem_attn_layers=1,
                mem_attn_ffn_dim=32, decoder_mlp_dim=32, decoder_heads=1, decoder_depth=1)
    base.update(kw)
    return SAM2Config(**base)


def small_model(seed: int = 0, obj_bias: float = 1.0, **kw) -> SAM2Model:
    """Random weights; the object-score bias decides whether objects are seen (> 0) or absent."""
    torch.manual_seed(seed)
    m = SAM2Model(small_config(**kw)).eval()
    with torch.no_grad():
        for p in m.parameters():  # perturb constant-initialised tensors so every parameter matters
            p.add_(0.02 * torch.randn_like(p))
        m.sam_mask_decoder.pred_obj_score_head.layers[-1].bias.fill_(obj_bias)
    return m


def synthetic_frames(n: int, h: int = 48, w: int = 64, seed: int = 0) -> list[np.ndarray]:
    """A textured background with a bright square moving right, one pixel per frame."""
    rng = np.random.default_rng(seed)
    bg = rng.integers(0, 120, (h, w, 3), dtype=np.uint8)
    frames = []
    for i in range(n):
        f = bg.copy()
        x = 8 + i % (w - 24)
        f[12:28, x: x + 16] = (240, 200, 40)
        frames.append(f)
    return frames


@contextlib.contextmanager
def torch_threads(n: int):
    """Small models run much faster on one thread (per-op overhead dominates); restores the setting."""
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def copy_frames(src: Path, dst: Path, n: int, rename=None) -> Path:
    dst.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(sorted(src.glob("*.jpg"))[:n]):
        shutil.copy(f, dst / (rename(i) if rename else f.name))
    return dst


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


def remux_faststart(src: Path, dst: Path, max_frames: int | None = None) -> Path:
    """Copy a video's packets into an mp4 whose index comes first (as streaming files are laid out), so
    that a truncated copy still opens and decodes up to where it was cut."""
    import av

    with av.open(str(src)) as inp, av.open(str(dst), "w", options={"movflags": "faststart"}) as out:
        s = inp.streams.video[0]
        o = out.add_stream_from_template(s)
        n = 0
        for pk in inp.demux(s):
            if pk.dts is None:
                continue
            pk.stream = o
            out.mux(pk)
            n += 1
            if max_frames is not None and n >= max_frames:
                break
    return dst


def truncated_mp4(tmp: Path, keep: float = 0.4) -> Path:
    """bedroom.mp4 (200 frames) cut after `keep` of its bytes: the first ~80 frames decode, then it fails."""
    full = remux_faststart(BEDROOM_MP4, tmp / "full.mp4")
    data = full.read_bytes()
    out = tmp / "cut.mp4"
    out.write_bytes(data[: int(len(data) * keep)])
    return out
