"""samstream.postprocess: the output pipeline (MaskPostprocess), the guided filter and the edge refinement of
mask logits."""
import numpy as np
import pytest
import torch

from samstream.postprocess import (
    MaskPostprocess,
    apply_non_overlap,
    box_mean,
    clean_small_regions,
    drop_islands,
    guided_filter,
    refine_to_edges,
)
from samstream.transforms import resize_logits


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


# ------------------------------------------------------------------------------------------ MaskPostprocess
def test_mask_postprocess_applies_its_steps_in_the_documented_order():
    """The pipeline is exactly: low-res holes / sprinkles, upsampling, edge refinement around the threshold,
    non-overlap, min_region_area; `upscale` is the first three, `combine` the last two."""
    rng = np.random.default_rng(0)
    low = torch.from_numpy(rng.normal(0, 3, (3, 2, 16, 16)).astype(np.float32))  # 3 objects, 2 masks each
    hw = (40, 56)
    image = rng.integers(0, 256, (*hw, 3), dtype=np.uint8)
    t = 0.5
    pp = MaskPostprocess(mask_threshold=t, max_hole_area=3, max_sprinkle_area=2, edge_refine_radius=0.75,
                         edge_refine_eps=1e-2, non_overlap_masks=True, min_region_area=12)
    want = resize_logits(clean_small_regions(low, 3, 2, t), hw)
    px = max(1, round(0.75 * 56 / 16))
    want = (refine_to_edges(want.reshape(6, 1, *hw) - t, image, px, 1e-2) + t).reshape(3, 2, *hw)
    up = want
    want = drop_islands(apply_non_overlap(want, t), 11, t)
    assert torch.equal(pp.upscale(low, hw, image), up)
    assert torch.equal(pp(low, hw, image), want)
    assert torch.equal(pp.combine(up), want)
    assert ((pp(low, hw, image) > t).sum(0) <= 1).all()  # disjoint
    # everything off (the default): upsampling only; without an image no edge refinement
    assert torch.equal(MaskPostprocess()(low, hw), resize_logits(low, hw))
    assert torch.equal(MaskPostprocess(edge_refine_radius=1.0)(low, hw), resize_logits(low, hw))


def test_mask_postprocess_settings():
    pp = MaskPostprocess(edge_refine_radius=0.75)
    assert pp.override(min_region_area=10, edge_refine_radius=None) == MaskPostprocess(edge_refine_radius=0.75,
                                                                                      min_region_area=10)
    assert MaskPostprocess.from_dict(pp.to_dict()) == pp and pp.refines_edges and not MaskPostprocess().refines_edges
    assert MaskPostprocess(min_region_area=10.0).min_region_area == 10
    with pytest.raises(TypeError, match="unknown output settings"):
        pp.override(fill_hole_area=8)  # a tracking setting, not an output one
    for bad in ({"edge_refine_radius": -1}, {"edge_refine_eps": 0}, {"min_region_area": -1}, {"max_hole_area": -1}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            MaskPostprocess(**bad)
