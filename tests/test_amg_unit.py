"""The generator's building blocks against the reference's helpers (sam2.utils.amg, its torchvision-style NMS,
its image-predictor clean-up), plus argument checking and the tensor API. Fast: no image encoder except
in the API tests, which use a 2x2 grid."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from samstream.amg import MaskGenerator, crop_boxes, layer_point_grids, nms
from samstream.amg.crops import near_crop_edge
from samstream.amg.masks import clean_small_regions, mask_boxes, rle_counts, stability_scores


# ------------------------------------------------------------------------------------------ geometry
@pytest.mark.oracle
@pytest.mark.parametrize("hw", [(534, 800), (267, 400), (1500, 2250), (100, 37)])
@pytest.mark.parametrize("layers,ratio", [(0, 512 / 1500), (1, 512 / 1500), (2, 0.2), (3, 0.5)])
def test_crop_boxes_match_reference(hw, layers, ratio):
    from sam2.utils.amg import generate_crop_boxes

    assert crop_boxes(*hw, layers, ratio) == generate_crop_boxes(hw, layers, ratio)


@pytest.mark.oracle
@pytest.mark.parametrize("n,layers,factor", [(32, 0, 1), (16, 2, 2), (7, 1, 1), (1, 0, 1), (10, 2, 3)])
def test_point_grids_match_reference(n, layers, factor):
    from sam2.utils.amg import build_all_layer_point_grids

    ours = layer_point_grids(n, layers, factor)
    ref = build_all_layer_point_grids(n, layers, factor)
    assert len(ours) == len(ref)
    for a, b in zip(ours, ref):
        assert np.array_equal(a, b)  # bit for bit: the clicks are the model's input


@pytest.mark.oracle
def test_near_crop_edge_matches_reference():
    from sam2.utils.amg import is_box_near_crop_edge

    g = torch.Generator().manual_seed(0)
    for crop in ([0, 0, 400, 267], [0, 0, 230, 160], [170, 107, 400, 267], [100, 50, 300, 200]):
        local = torch.randint(0, 230, (200, 4), generator=g)
        local[:, 2:] = local[:, :2] + torch.randint(0, 120, (200, 2), generator=g)
        ref = is_box_near_crop_edge(local, crop, [0, 0, 400, 267])
        off = torch.tensor([crop[0], crop[1], crop[0], crop[1]])
        assert torch.equal(near_crop_edge(local + off, crop, [0, 0, 400, 267]), ref)


# ------------------------------------------------------------------------------------------ NMS
@pytest.mark.oracle
@pytest.mark.parametrize("thr", [0.0, 0.3, 0.7, 1.0])
def test_nms_matches_reference(thr):
    from torchvision.ops import batched_nms  # the oracle's stand-in (greedy, stable order), as torchvision

    g = torch.Generator().manual_seed(1)
    n = 300
    xy = torch.randint(0, 300, (n, 2), generator=g)
    boxes = torch.cat([xy, xy + torch.randint(0, 150, (n, 2), generator=g)], 1).float()
    boxes[:5] = boxes[5]  # duplicates
    boxes[7, 2:] = boxes[7, :2]  # an empty box
    for scores in (torch.rand(n, generator=g), torch.randint(0, 4, (n,), generator=g).float()):  # ties too
        ref = batched_nms(boxes, scores, torch.zeros(n), iou_threshold=thr)
        assert torch.equal(nms(boxes, scores, thr), ref)
        assert torch.equal(nms(boxes, scores, thr, block=64), ref)  # blocked IoU rows


def test_nms_empty():
    assert nms(torch.zeros(0, 4), torch.zeros(0), 0.5).numel() == 0


# ------------------------------------------------------------------------------------------ masks
def _random_logits(n=6, h=37, w=53, seed=2):
    g = torch.Generator().manual_seed(seed)
    x = torch.nn.functional.interpolate(torch.randn(n, 1, h // 4, w // 4, generator=g) * 4, size=(h, w),
                                        mode="bilinear")[:, 0]
    x[0] = -5.0  # empty
    x[1] = 5.0  # full
    return x


@pytest.mark.oracle
def test_stability_matches_reference():
    from sam2.utils.amg import calculate_stability_score

    x = _random_logits()
    for thr, off in ((0.0, 1.0), (0.5, 0.25), (-1.0, 2.0)):
        ours, ref = stability_scores(x, thr, off), calculate_stability_score(x, thr, off)
        assert ours.dtype == ref.dtype
        assert torch.equal(ours.nan_to_num(-1), ref.nan_to_num(-1))
    assert torch.isnan(stability_scores(x, 0.0, 1.0)[0]), "an empty mask must fail every stability threshold"


@pytest.mark.oracle
def test_mask_boxes_match_reference():
    from sam2.utils.amg import batched_mask_to_box

    m = _random_logits() > 0
    assert torch.equal(mask_boxes(m), batched_mask_to_box(m))
    assert mask_boxes(m[:0]).shape == (0, 4)


@pytest.mark.oracle
@pytest.mark.parametrize("origin,hw", [((0, 0), (37, 53)), ((5, 3), (60, 70)), ((0, 23), (60, 53)),
                                       ((17, 0), (37, 70))])
def test_rle_counts_match_reference(origin, hw):
    """Run lengths from a crop's mask (scanning only its box's columns) equal those of the pasted mask."""
    from sam2.utils.amg import mask_to_rle_pytorch, uncrop_masks

    masks = _random_logits() > 0
    x0, y0 = origin
    crop = [x0, y0, x0 + masks.shape[2], y0 + masks.shape[1]]
    full = uncrop_masks(masks, crop, *hw)
    boxes = mask_boxes(masks)
    for m, f, b, ref in zip(masks, full, boxes, mask_to_rle_pytorch(full)):
        counts = rle_counts(m.numpy(), tuple(b.tolist()), origin, *hw)
        assert counts == ref["counts"]
        assert sum(counts) == hw[0] * hw[1] and sum(counts[1::2]) == int(f.sum())


def test_rle_counts_full_image_edges():
    """Masks touching the first / last pixel of the image (runs at both ends)."""
    from samstream.io.rle import encode_counts

    m = np.zeros((5, 4), dtype=bool)
    m[:, 0] = m[:, 3] = True
    m[2, 1] = True
    assert rle_counts(m, (0, 0, 3, 4), (0, 0), 5, 4) == encode_counts(m) == [0, 5, 2, 1, 7, 5]


@pytest.mark.oracle
def test_clean_small_regions_matches_reference_predictor():
    """Holes and islands are both judged on the decoder's logits (an island ringing a filled hole goes)."""
    from sam2.utils.transforms import SAM2Transforms

    x = _random_logits(n=4, h=256, w=256)
    x[2] = -5.0
    x[2, 10:15, 10:15] = 5.0
    x[2, 12, 12] = -5.0  # a 1-pixel hole in a 24-pixel ring
    for area in (4, 24, 100):
        ref = SAM2Transforms(1024, 0.0, max_hole_area=area, max_sprinkle_area=area).postprocess_masks(
            x[None], (256, 256))[0]
        assert torch.equal(clean_small_regions(x, area, 0.0), ref)
    assert torch.equal(clean_small_regions(x, 0), x)


# ------------------------------------------------------------------------------------------ arguments
@pytest.fixture(scope="module")
def tiny_model():
    from samstream import SAM2Model, official_config

    torch.manual_seed(0)
    return SAM2Model(official_config("sam2.1_hiera_tiny")).eval()


@pytest.mark.parametrize("kw,match", [
    (dict(points_per_side=None), "exactly one of points_per_side and point_grids"),
    (dict(point_grids=[np.full((4, 2), 0.5)]), "exactly one of points_per_side and point_grids"),
    (dict(output_mode="png"), "unknown output_mode 'png'"),
    (dict(points_per_side=0), "points_per_side must be an integer >= 1"),
    (dict(points_per_batch=0), "points_per_batch"),
    (dict(crop_n_layers=-1), "crop_n_layers"),
    (dict(crop_overlap_ratio=1.5), "crop_overlap_ratio"),
    (dict(box_nms_thresh=2.0), "box_nms_thresh"),
    (dict(points_per_side=4, crop_n_layers=1, crop_n_points_downscale_factor=8), "points per side"),
    (dict(points_per_side=None, point_grids=[np.full((4, 2), 0.5)], crop_n_layers=1), "one per crop layer"),
    (dict(points_per_side=None, point_grids=[np.full((4, 2), 2.0)]), "normalised to \\[0, 1\\]"),
    (dict(points_per_side=None, point_grids=[np.zeros((4, 3))]), "shape \\(N, 2\\)"),
])
def test_bad_arguments(tiny_model, kw, match):
    with pytest.raises(ValueError, match=match):
        MaskGenerator(tiny_model, **kw)


def test_not_a_model():
    with pytest.raises(TypeError, match="SAM2Model"):
        MaskGenerator(object())


@pytest.mark.parametrize("image,err,match", [
    (np.zeros((10, 10), dtype=np.uint8), ValueError, "shape \\(H, W, 3\\)"),
    (np.zeros((10, 10, 3), dtype=np.float32), ValueError, "uint8"),
    (np.zeros((0, 10, 3), dtype=np.uint8), ValueError, "empty"),
    (torch.zeros(10, 10, 3, dtype=torch.uint8), TypeError, "not a torch tensor"),
    ("/nonexistent/picture.jpg", FileNotFoundError, "not found"),
])
def test_bad_images(tiny_model, image, err, match):
    with pytest.raises(err, match=match):
        MaskGenerator(tiny_model, points_per_side=2).generate(image)


# ------------------------------------------------------------------------------------------ tensor API
def test_generate_masks_api_and_features(tiny_model):
    """generate_masks gives tensors (and masks on demand); precomputed features (a tracker's key frame)
    give the same result as letting the generator encode the image."""
    from samstream.transforms import preprocess_image

    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (60, 90, 3), dtype=np.uint8)
    gen = MaskGenerator(tiny_model, points_per_side=2, pred_iou_thresh=0.0, stability_score_thresh=0.0,
                        box_nms_thresh=1.0, progress=True)
    res = gen.generate_masks(image)
    n = len(res)
    assert n > 0 and res.boxes.shape == (n, 4) and res.points.shape == (n, 2)
    masks = res.masks()
    assert masks.shape == (n, 60, 90) and masks.dtype == torch.bool
    assert torch.equal(res.mask(0), masks[0])
    assert torch.equal(res.areas(), masks.flatten(1).sum(1))
    recs = gen.records(res)
    assert [r["area"] for r in recs] == res.areas().tolist()
    with torch.inference_mode():
        feats = tiny_model.encode_image(preprocess_image(image, 1024))
    again = gen.generate_masks(image, features=feats)
    assert torch.equal(again.boxes, res.boxes) and torch.equal(again.low_res, res.low_res)


@pytest.mark.oracle
def test_compat_signature_and_output(tiny_model):
    import inspect

    from sam2.automatic_mask_generator import SAM2AutomaticMaskGenerator as Reference

    from samstream.amg.compat import SAM2AutomaticMaskGenerator

    ref = inspect.signature(Reference.__init__).parameters
    ours = inspect.signature(SAM2AutomaticMaskGenerator.__init__).parameters
    assert list(ours) == list(ref)
    assert all(ours[k].default == ref[k].default for k in ref)
    image = np.random.default_rng(1).integers(0, 255, (40, 50, 3), dtype=np.uint8)
    kw = dict(points_per_side=2, pred_iou_thresh=0.0, stability_score_thresh=0.0, output_mode="uncompressed_rle")
    a = SAM2AutomaticMaskGenerator(tiny_model, unknown_option=1, **kw).generate(image)
    b = MaskGenerator(tiny_model, **kw).generate(image)
    assert a == b and len(a) > 0
