"""PromptDecoder (shared first-layer work, chunked transformer, upscaling only where asked) gives exactly the
numbers of the model's own MaskDecoder run on the whole batch, as ImagePredictor runs it; which is what
the reference generator computes (tests/test_image_parity.py, tests/test_amg_parity.py).

Random weights are enough here: the comparison is of logits and scores, not of filtered masks.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from samstream import ImagePredictor, SAM2Model, official_config
from samstream.amg.decoder import PromptDecoder
from samstream.checkpoint import load_into
from tests.helpers import DATA
from tests.oracle import reference_state_dict

pytestmark = pytest.mark.oracle


@pytest.fixture(scope="module")
def setup():
    sd = reference_state_dict("sam2.1_hiera_tiny", seed=1)
    sd["sam_mask_decoder.iou_prediction_head.layers.2.bias"] += 0.3  # scores on both sides of the threshold
    model = SAM2Model(official_config("sam2.1_hiera_tiny").with_postprocessing(True))
    load_into(model, sd)
    img = np.asarray(Image.open(DATA / "sam2-assets" / "images" / "truck.jpg").convert("RGB").resize((300, 200)))
    pred = ImagePredictor(model.eval())
    pred.set_image(img)
    g = torch.Generator().manual_seed(0)
    points = torch.rand(11, 1, 2, generator=g) * 1024
    labels = torch.ones(11, 1, dtype=torch.int32)
    yield model, pred, points, labels


def _decoder(model, pred, chunk):
    return PromptDecoder(model, pred.get_image_embedding(), pred._high_res, chunk=chunk)


def _same(a, b, n, chunk):
    """Bit-identical when the decoder runs the predictor's batch; in smaller chunks the BLAS may take another
    kernel for the smaller matrices (seen for batches of 1 on some CPUs), which rounds differently."""
    if chunk >= n:
        assert torch.equal(a, b)
    else:
        torch.testing.assert_close(a, b, rtol=0, atol=1e-4)


@pytest.mark.parametrize("chunk", [1, 3, 4, 11])
@pytest.mark.parametrize("n", [1, 2, 11])
def test_multimask_identical(setup, chunk, n):
    model, pred, points, labels = setup
    _, scores, low = pred.predict_torch((points[:n], labels[:n]), None, True, True)
    out = _decoder(model, pred, chunk).decode(points[:n], labels[:n])
    _same(out.ious, scores, n, chunk)
    assert torch.equal(out.index, torch.arange(3 * n))
    _same(out.low_res.clamp(-32, 32), low.flatten(0, 1), n, chunk)


def test_iou_filter_skips_masks(setup):
    """Only the candidates above min_iou come back, with the same logits."""
    model, pred, points, labels = setup
    _, scores, low = pred.predict_torch((points, labels), None, True, True)
    thr = float(scores.detach().flatten().median())
    out = _decoder(model, pred, 4).decode(points, labels, min_iou=thr)
    keep = (scores.flatten() > thr).nonzero().flatten()
    assert 0 < keep.numel() < scores.numel()
    assert torch.equal(out.ious, scores)  # every score is reported
    assert torch.equal(out.index, keep)
    assert torch.equal(out.low_res.clamp(-32, 32), low.flatten(0, 1)[keep])


@pytest.mark.parametrize("chunk", [1, 4])
def test_mask_prompt_single_output_identical(setup, chunk):
    """The m2m pass: mask prompts, one output, dynamic multimask fallback (builder post-processing)."""
    model, pred, points, labels = setup
    assert model.sam_mask_decoder.dynamic_multimask_via_stability
    _, _, low = pred.predict_torch((points, labels), None, True, True)
    mask_in = low[:, 1:2]
    _, scores, low1 = pred.predict_torch((points, labels), mask_in, False, True)
    out = _decoder(model, pred, chunk).decode(points, labels, mask_in, multimask_output=False)
    _same(out.ious, scores, len(points), chunk)
    _same(out.low_res.clamp(-32, 32), low1.flatten(0, 1), len(points), chunk)


def test_empty_batch(setup):
    model, pred, _, _ = setup
    out = _decoder(model, pred, 4).decode(torch.zeros(0, 1, 2), torch.zeros(0, 1, dtype=torch.int32))
    assert out.ious.shape == (0, 3) and out.index.numel() == 0 and out.low_res.shape == (0, 256, 256)


def test_needs_one_image(setup):
    model, pred, _, _ = setup
    with pytest.raises(ValueError, match="one image"):
        PromptDecoder(model, pred.get_image_embedding().expand(2, -1, -1, -1), pred._high_res)
