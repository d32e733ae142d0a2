"""samstream.postprocess: the guided filter and the edge refinement of mask logits."""
import numpy as np
import pytest
import torch

from samstream.postprocess import box_mean, guided_filter, refine_to_edges


def _step_frame(h=32, w=40, edge=20):
    """An RGB frame, dark left of column `edge`, bright from it on, with a little noise."""
    rng = np.random.default_rng(0)
    f = np.full((h, w, 3), 40, dtype=np.uint8)
    f[:, edge:] = 210
    return np.clip(f.astype(int) + rng.integers(-6, 7, f.shape), 0, 255).astype(np.uint8)


def _soft_logits(boundary: float, h=32, w=40, blur=3.0):
    """Logits (1, 1, h, w) of the bright side, the boundary (0.5-crossing) at column `boundary` and blurred over
    a few pixels, as bilinear upsampling of a coarse mask draws it."""
    x = torch.arange(w, dtype=torch.float32) + 0.5
    return ((x - boundary) * (6.0 / blur)).expand(h, w)[None, None].clone()


def test_box_mean_clips_windows_at_the_borders():
    x = torch.arange(12, dtype=torch.float32).view(1, 1, 3, 4)
    out = box_mean(x, 1)
    assert out.shape == x.shape
    assert out[0, 0, 0, 0] == pytest.approx(float(x[0, 0, :2, :2].mean()))  # 4 pixels, not 9 with zeros
    assert out[0, 0, 1, 1] == pytest.approx(float(x[0, 0, :3, :3].mean()))


def test_guided_filter_keeps_the_guides_edges_and_smooths_flat_parts():
    """A noisy copy of a step filtered with the clean step as guide comes back as the step (edge kept, noise
    gone); a plain box filter of the same radius blurs the step."""
    step = torch.zeros(1, 1, 16, 24)
    step[..., 12:] = 1.0
    noisy = step + 0.05 * torch.randn(1, 1, 16, 24, generator=torch.Generator().manual_seed(0))
    out = guided_filter(step, noisy, 2, 1e-4)
    assert (out - step).abs().max() < 0.06  # noise shrinks inside flat windows, the edge stays a step
    assert (out - step).abs().mean() < 0.5 * (noisy - step).abs().mean()
    assert (box_mean(noisy, 2) - step).abs().max() > 0.3  # without the guide the edge is smeared


@pytest.mark.parametrize("boundary", [21.0, 19.0])
def test_refine_to_edges_moves_the_boundary_onto_the_frames_edge(boundary):
    """A mask boundary one pixel off the frame's edge (either side) lands on it."""
    frame = _step_frame(edge=20)
    logits = _soft_logits(boundary)
    before = (logits[0, 0] > 0).float().mean(0)  # fraction of each column in the mask
    assert before[19] == 1 if boundary < 20 else before[20] == 0  # a column off
    out = refine_to_edges(logits, frame, 2, 1e-3)
    cols = (out[0, 0] > 0).float().mean(0)
    assert cols[:20].max() == 0 and cols[20:].min() == 1  # exactly the bright side
    # an absent object (no positive logit) is returned as it is
    absent = torch.full_like(logits, -1024.0)
    both = refine_to_edges(torch.cat([logits, absent]), frame, 2, 1e-3)
    torch.testing.assert_close(both[1:], absent, rtol=0, atol=0)
    torch.testing.assert_close(both[:1], out, rtol=0, atol=0)
    # radius 0: unchanged; a frame of another size: a clear error
    assert refine_to_edges(logits, frame, 0, 1e-3) is logits
    with pytest.raises(ValueError, match="frame is"):
        refine_to_edges(logits, frame[:-1], 2, 1e-3)
