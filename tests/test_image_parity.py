"""Our image encoder and ImagePredictor against Meta's code, same perturbed random weights, fp32 CPU,
on a real photo."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from samstream import ImagePredictor, SAM2Model, official_config
from samstream.checkpoint import load_into
from tests.oracle import build_reference, reference_state_dict

pytestmark = pytest.mark.oracle

PROMPTS = {
    "point": dict(point_coords=[[420, 260]], point_labels=[1], multimask_output=True),
    "point-single": dict(point_coords=[[420, 260]], point_labels=[1], multimask_output=False),
    "multi-point": dict(point_coords=[[420, 260], [300, 200], [600, 100]], point_labels=[1, 0, 1],
                        multimask_output=False),
    "box": dict(box=[150, 120, 520, 420], multimask_output=False),
    "box+point": dict(box=[150, 120, 520, 420], point_coords=[[300, 250]], point_labels=[0],
                      multimask_output=True),
    "prompt-batch": dict(point_coords=[[[420, 260]], [[100, 400]]], point_labels=[[1], [1]],
                         box=[[150, 120, 520, 420], [30, 300, 300, 520]], multimask_output=False),
}


_PAIRS = {}


def _make_pair(name, real_image):
    from sam2.sam2_image_predictor import SAM2ImagePredictor

    if name in _PAIRS:
        return _PAIRS[name]
    sd = reference_state_dict(name, seed=3)
    ref = build_reference(name, sd)
    ours = SAM2Model(official_config(name))
    load_into(ours, sd)
    rp, op = SAM2ImagePredictor(ref), ImagePredictor(ours.eval())
    rp.set_image(real_image)
    op.set_image(real_image)
    _PAIRS[name] = (name, ref, ours, rp, op)
    return _PAIRS[name]


@pytest.fixture(scope="module", params=["sam2.1_hiera_tiny", "sam2.1_hiera_base_plus"])
def pair(request, real_image):
    """A larger config too: the encoder differs by size (heads, windows, pos-embed size)."""
    return _make_pair(request.param, real_image)


@pytest.fixture(scope="module")
def tiny_pair(real_image):
    """For what does not depend on the model size."""
    return _make_pair("sam2.1_hiera_tiny", real_image)


def _ours(op, c, **kw):
    return op.predict(points=c.get("point_coords"), labels=c.get("point_labels"), box=c.get("box"),
                      mask_input=c.get("mask_input"), multimask_output=c["multimask_output"], **kw)


def _compare_masks(r, o):
    rl, ol = r[0], o[0]
    assert rl.shape == ol.shape
    assert np.abs(rl - ol).max() <= 1e-3
    agree = ((rl > 0) == (ol > 0)).mean()
    assert agree >= 0.9999
    frac = (rl > 0).mean()
    assert 0.001 < frac < 0.999, "masks must be neither empty nor full for the comparison to mean something"
    np.testing.assert_allclose(o[1], r[1], atol=1e-4)
    np.testing.assert_allclose(o[2], r[2], atol=1e-3)


def test_encoder_outputs(pair, real_image):
    _name, ref, ours, rp, op = pair
    from samstream.transforms import preprocess_image

    x = preprocess_image(real_image, 1024)
    with torch.no_grad():
        r = ref.forward_image(x)
        o = ours.encode_image(x)
    levels = [(r["backbone_fpn"][0], o.high_res[0]), (r["backbone_fpn"][1], o.high_res[1]),
              (r["backbone_fpn"][2], o.embed), (r["vision_pos_enc"][2], o.pos)]
    for a, b in levels:
        assert a.shape == b.shape
        assert (a - b).abs().max() <= 1e-4 * a.abs().max()
    # and the predictor's stored embedding (with no_mem_embed added)
    assert (rp._features["image_embed"] - op.get_image_embedding()).abs().max() <= 1e-4


@pytest.mark.parametrize("case", list(PROMPTS))
def test_prompts(pair, case):
    _, _, _, rp, op = pair
    c = PROMPTS[case]
    r = rp.predict(**c, return_logits=True)
    o = _ours(op, c, return_logits=True)
    _compare_masks(r, o)
    # binarised output equals thresholded logits
    ob = _ours(op, c)[0]
    assert ob.dtype == bool and np.array_equal(ob, o[0] > 0)


def test_mask_prompt(pair):
    _, _, _, rp, op = pair
    first = rp.predict(point_coords=[[420, 260]], point_labels=[1], multimask_output=True)
    low = first[2][np.argmax(first[1])][None]
    c = dict(mask_input=low, point_coords=[[420, 260]], point_labels=[1], multimask_output=False)
    _compare_masks(rp.predict(**c, return_logits=True), _ours(op, c, return_logits=True))
    c = dict(mask_input=low, multimask_output=False)
    _compare_masks(rp.predict(**c, return_logits=True), _ours(op, c, return_logits=True))


def test_object_scores(pair):
    """The decoder's object-score and IoU heads, on the predictor's features."""
    _, ref, ours, rp, op = pair
    coords = torch.tensor([[[420.0, 260.0], [0.0, 0.0]]]) * 1024 / torch.tensor([800.0, 534.0])
    labels = torch.tensor([[1, -1]], dtype=torch.int32)
    with torch.no_grad():
        rs, rd = ref.sam_prompt_encoder((coords, labels), None, None)
        os_, od = ours.sam_prompt_encoder((coords, labels), None, None)
        hr = rp._features["high_res_feats"]
        r = ref.sam_mask_decoder(rp._features["image_embed"], ref.sam_prompt_encoder.get_dense_pe(), rs, rd,
                                 True, False, high_res_features=hr)
        o = ours.sam_mask_decoder(op.get_image_embedding(), ours.sam_prompt_encoder.dense_pe(), os_, od, True,
                                  False, high_res_features=op._high_res)
    assert (r[1] - o[1]).abs().max() <= 1e-4  # IoU
    assert (r[3] - o[3]).abs().max() <= 1e-4  # object score logits
    assert (r[2] - o[2]).abs().max() <= 1e-4  # tokens used for the object pointer


def test_hole_and_sprinkle_cleanup(tiny_pair, real_image):
    from sam2.sam2_image_predictor import SAM2ImagePredictor

    _name, ref, ours, _, _ = tiny_pair
    rp = SAM2ImagePredictor(ref, max_hole_area=40, max_sprinkle_area=40)
    op = ImagePredictor(ours, max_hole_area=40, max_sprinkle_area=40)
    rp.set_image(real_image)
    op.set_image(real_image)
    c = PROMPTS["multi-point"]
    r, o = rp.predict(**c, return_logits=True), _ours(op, c, return_logits=True)
    _compare_masks(r, o)
    plain = ImagePredictor(ours)
    plain.set_image(real_image)
    assert not np.array_equal(_ours(plain, c)[0], _ours(op, c)[0]), "clean-up must change this mask"


def test_image_batch(tiny_pair, real_image):
    _, _, _, rp, op = tiny_pair
    small = real_image[::2, ::3].copy()
    rp.set_image_batch([real_image, small])
    op.set_image_batch([real_image, small])
    pts = [np.array([[420, 260]]), np.array([[100, 100]])]
    lab = [np.array([1]), np.array([1])]
    r = rp.predict_batch(pts, lab, multimask_output=True, return_logits=True)
    o = op.predict_batch(pts, lab, multimask_output=True, return_logits=True)
    for i in range(2):
        _compare_masks((r[0][i], r[1][i], r[2][i]), (o[0][i], o[1][i], o[2][i]))
    rp.set_image(real_image)
    op.set_image(real_image)


def test_compat_script_ports_by_changing_the_import(tiny_pair, real_image, tmp_path):
    """An official script, with `sam2.` imports replaced by `samstream.compat`, gives the reference's masks."""
    from samstream.compat import SAM2ImagePredictor, build_sam2

    _name, ref, _, rp, _ = tiny_pair
    path = tmp_path / "sam2.1_hiera_tiny.pt"
    torch.save({"model": ref.state_dict()}, path)
    predictor = SAM2ImagePredictor(build_sam2("configs/sam2.1/sam2.1_hiera_t.yaml", str(path), device="cpu"))
    predictor.set_image(real_image)
    c = dict(point_coords=np.array([[420, 260]]), point_labels=np.array([1]), multimask_output=True)
    masks, scores, _logits = predictor.predict(**c)
    r = rp.predict(**c)
    assert masks.shape == r[0].shape and masks.dtype == r[0].dtype
    assert (masks == r[0]).mean() >= 0.9999
    np.testing.assert_allclose(scores, r[1], atol=1e-4)
    batch = predictor.predict_batch([c["point_coords"]], [c["point_labels"]])
    assert len(batch) == 3 and np.array_equal(batch[0][0], masks)
    predictor.reset_predictor()
    assert not predictor._is_image_set
