"""The export's and the ONNX runtime's building blocks against the torch code they replace: real-arithmetic
RoPE, the memory-attention graph, and the numpy steps (resizing, bfloat16, holes)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from samstream import memory
from samstream.export.graphs import MemoryAttentionGraph
from samstream.export.rope import apply_rope_real, rope_tables
from samstream.model.memory_attention import _rope_table, apply_rope
from samstream.postprocess import component_areas, fill_holes
from samstream.runtime import ops
from samstream.video.state import FrameOutput
from samstream.video.tracker import memory_tokens
from tests.helpers import small_model


@pytest.mark.parametrize("side,head_dim", [(4, 16), (8, 32), (5, 64)])
def test_real_rope_equals_complex_rope(side, head_dim):
    g = torch.Generator().manual_seed(side)
    x = torch.randn(2, 3, side * side, head_dim, generator=g)
    cos, sin = rope_tables(side, head_dim, 10000.0)
    ref = apply_rope(x, _rope_table(side, head_dim, 10000.0, x.device))
    assert torch.allclose(apply_rope_real(x, cos, sin), ref, atol=1e-6, rtol=0)
    # several memory frames share the query grid: the runtime broadcasts the table over a frame axis
    xs = torch.randn(1, 1, 3 * side * side, head_dim, generator=g)
    ref = apply_rope(xs, _rope_table(side, head_dim, 10000.0, x.device))
    got = apply_rope_real(xs.reshape(1, 1, 3, side * side, head_dim), cos, sin).reshape(xs.shape)
    assert torch.allclose(got, ref, atol=1e-6, rtol=0)


SAM2_0 = dict(add_tpos_enc_to_obj_ptrs=False, proj_tpos_enc_in_obj_ptrs=False, use_signed_tpos_enc_to_obj_ptrs=False,
              no_obj_embed_spatial=False)


@pytest.mark.parametrize("n_ptr", [0, 3])
@pytest.mark.parametrize("variant", [{}, SAM2_0, dict(proj_tpos_enc_in_obj_ptrs=False)], ids=["2.1", "2.0", "no-proj"])
def test_memory_attention_graph_equals_model(n_ptr, variant):
    """The graph module (real RoPE, tokens assembled inside) against tracker.memory_tokens + attend_memory, for
    SAM 2.1's pointer encoding, SAM 2.0's (none) and an unprojected one."""
    torch.manual_seed(0)
    m = small_model(**variant)
    cfg, e = m.cfg, m.cfg.embed_size
    outs = [FrameOutput(pred_masks=None, obj_ptr=torch.randn(1, cfg.hidden_dim), score=None,
                        maskmem=torch.randn(1, cfg.mem_dim, e, e)) for _ in range(4)]
    sel = memory.MemorySelection(spatial=[(0, outs[0], cfg.num_maskmem - 1), (2, outs[1], 4), (3, outs[2], 5)],
                                       pointers=[(t, outs[t], t + 1) for t in range(n_ptr)])
    maskmem_pos = m.encode_memory(torch.randn(1, cfg.hidden_dim, e, e), torch.randn(1, 1, cfg.image_size,
                                                                                   cfg.image_size),
                                  torch.ones(1, 1), False)[1]
    embed, pos = torch.randn(1, cfg.hidden_dim, e, e), torch.randn(1, cfg.hidden_dim, e, e)
    with torch.no_grad():
        mem, mem_pos, n_tok = memory_tokens(m, sel, maskmem_pos, 10)
        ref = m.attend_memory(embed, pos, mem, mem_pos, n_tok)
        p_max = memory.max_pointers(cfg, 10)
        ptrs = (torch.stack([o.obj_ptr[0] for _, o, _ in sel.pointers])[None] if n_ptr
                else torch.zeros(1, 0, cfg.hidden_dim))
        tpos = torch.tensor([[p / (p_max - 1) for _, _, p in sel.pointers]], dtype=torch.float32).reshape(1, n_ptr)
        got = MemoryAttentionGraph(m)(embed, pos, torch.stack([o.maskmem[0] for _, o, _ in sel.spatial])[None],
                                      torch.tensor([[s for _, _, s in sel.spatial]]), ptrs, tpos)
    assert torch.allclose(got, ref, atol=1e-5, rtol=0)


def test_component_areas_and_fill_holes_match_scipy():
    rng = np.random.default_rng(1)
    for i in range(25):
        m = rng.random((40, 56)) > rng.uniform(0.1, 0.9)
        assert np.array_equal(ops.component_areas(m), component_areas(torch.from_numpy(m)).numpy()), i
    logits = rng.standard_normal((2, 1, 32, 32)).astype(np.float32)
    ref = fill_holes(torch.from_numpy(logits), 8, 0.0, fill_value=0.1).numpy()
    assert np.array_equal(ops.fill_holes(logits, 8, 0.1), ref)


@pytest.mark.parametrize("hw", [(64, 64), (17, 90), (300, 20)])
@pytest.mark.parametrize("antialias", [False, True])
def test_resize_matches_torch(hw, antialias):
    x = np.random.default_rng(2).random((2, 3, 41, 57)).astype(np.float32)
    ref = F.interpolate(torch.from_numpy(x), size=hw, mode="bilinear", align_corners=False, antialias=antialias)
    assert np.abs(ops.resize(x, hw, antialias) - ref.numpy()).max() < 1e-5


def test_bfloat16_rounding_matches_torch():
    x = np.concatenate([np.random.default_rng(3).standard_normal(10000).astype(np.float32) * 100,
                        np.array([0.0, -0.0, 1e-40, 65504.0, 3.4e38], np.float32)])
    ref = torch.from_numpy(x).bfloat16().float().numpy()
    assert np.array_equal(ops.from_bfloat16_bits(ops.to_bfloat16_bits(x)), ref)


def test_preprocessing_matches_torch():
    from samstream.transforms import preprocess_frame, preprocess_image

    img = np.random.default_rng(4).integers(0, 256, (45, 70, 3), dtype=np.uint8)
    assert np.abs(ops.preprocess_image(img, 64) - preprocess_image(img, 64).numpy()).max() < 1e-5
    assert np.abs(ops.preprocess_frame(img, 64) - preprocess_frame(img, 64)[None].numpy()).max() < 1e-6
