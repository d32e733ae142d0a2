"""compile=True: the same masks as the uncompiled model, and no recompilation between frames, clicks and videos.

One tiny model for the whole module, so its compiled graphs (inductor, a C++ compile each: tens of seconds on a
CPU) are shared by the tests; the image test compiles the encoder and decoder graphs the video test reuses.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch._dynamo.utils import counters

from samstream.model.compiled import PROMPT_BUCKET, bucket
from samstream.predictor import ImagePredictor
from samstream.video import VideoPredictor, build_sam2_video_predictor
from tests.helpers import small_model, synthetic_frames, torch_threads

ATOL = 1e-4  # max abs logit difference allowed between compiled and uncompiled runs


@pytest.fixture(scope="module")
def model():
    return small_model()


def _graphs() -> int:
    return counters["stats"]["unique_graphs"]  # graphs dynamo has compiled in this process


def test_bucket_and_bad_argument(model):
    assert [bucket(n, 7, 4) for n in (0, 1, 7, 8, 11, 12)] == [7, 7, 7, 11, 11, 15]
    assert bucket(3, PROMPT_BUCKET, PROMPT_BUCKET) == PROMPT_BUCKET
    with pytest.raises(ValueError, match="compile must be True or False"):
        ImagePredictor(model, compile="yes")
    with pytest.raises(ValueError, match="compile must be True or False"):
        VideoPredictor(model, synthetic_frames(2), compile=1)


def test_vos_optimized_means_compile():
    assert build_sam2_video_predictor("sam2.1_hiera_t", None, device="cpu", vos_optimized=True).compile is True
    assert build_sam2_video_predictor("sam2.1_hiera_t", None, device="cpu").compile is False


def test_image_prompts_compiled_equal_uncompiled(model):
    image = synthetic_frames(1, seed=3)[0]
    prompts = [dict(points=[[20, 20]], multimask_output=True),  # 1 click + SAM 2's padding point: 2 tokens
               dict(points=[[20, 20], [40, 30]], labels=[1, 0], box=[10, 10, 50, 40], multimask_output=False)]
    with torch_threads(1):
        eager, comp = ImagePredictor(model), ImagePredictor(model, compile=True)
        for p in (eager, comp):
            p.set_image(image)
        for kw in prompts:
            (m0, s0, l0), (m1, s1, l1) = eager.predict(**kw), comp.predict(**kw)
            assert np.abs(l1 - l0).max() <= ATOL and np.abs(s1 - s0).max() <= ATOL
            assert (m0 == m1).all()
        np.testing.assert_allclose(comp.get_image_embedding(), eager.get_image_embedding(), atol=ATOL, rtol=0)


def _session(model, frames, clicks, correction, compile):
    """Two objects prompted on frame 0, tracked, one corrected (clicks added), tracked again -> {(pass, t): result}
    and the correction's own result.
    Memories stored in float32, so that compiled rounding differences are not amplified by bfloat16 rounding."""
    vp = VideoPredictor(model, frames, compile=compile, progress=False, memory_dtype=torch.float32)
    out = {}
    vp.add_points(0, 1, clicks, labels=[1] * len(clicks))
    vp.add_box(0, 2, [30, 10, 60, 40])
    out.update({(0, r.frame_idx): r for r in vp.propagate()})
    t, pts, labels = correction
    out[("prompt", t)] = vp.add_points(t, 1, pts, labels, clear=False)
    out.update({(1, r.frame_idx): r for r in vp.propagate(start=t)})
    return out


def test_video_compiled_equal_uncompiled_and_no_recompilation(model):
    frames = synthetic_frames(8)
    first = dict(clicks=[[20, 20]], correction=(4, [[22, 20], [40, 40]], [1, 0]))
    with torch_threads(1):
        eager = _session(model, frames, **first, compile=False)
        comp = _session(model, frames, **first, compile=True)  # also the warm-up: compiles what videos need
        assert eager.keys() == comp.keys() and len(comp) == 8 + 1 + 4
        for k in eager:
            a, b = eager[k], comp[k]
            assert getattr(a, "obj_ids", None) == getattr(b, "obj_ids", None)
            assert np.abs(a.logits - b.logits).max() <= ATOL, k
            sa, sb = (np.asarray(getattr(r, "scores", getattr(r, "score", None))) for r in (a, b))
            assert np.abs(sa - sb).max() <= ATOL, k
        warm = _graphs()
        assert warm > 0  # the counter sees the compiled graphs
        # another video of the same size, other click counts (3, then 3 + 4 for the correction), another frame
        other = dict(clicks=[[10, 10], [30, 20], [50, 40]],
                     correction=(3, [[12, 14], [40, 30], [5, 40], [60, 5]], [1, 1, 0, 0]))
        again = _session(model, synthetic_frames(8, seed=1), **other, compile=True)
    assert len(again) == 8 + 1 + 5
    assert _graphs() == warm, "compile=True recompiled for a second video or another click count"


def test_a_new_bucket_is_a_new_graph(model):
    """The counter the test above relies on does see a recompile: 9 clicks + padding point pad to 16 tokens."""
    image = synthetic_frames(1, seed=3)[0]
    clicks = [[5 + 5 * i, 5 + 4 * i] for i in range(PROMPT_BUCKET + 1)]
    with torch_threads(1):
        eager, comp = ImagePredictor(model), ImagePredictor(model, compile=True)
        for p in (eager, comp):
            p.set_image(image)
        comp.predict(points=clicks[:2], multimask_output=False)  # the 8-token graph (compiled above, or now)
        before = _graphs()
        l0, l1 = (p.predict(points=clicks, multimask_output=False)[2] for p in (eager, comp))
    assert _graphs() > before
    assert np.abs(l1 - l0).max() <= ATOL
