"""MaskGenerator against Meta's SAM2AutomaticMaskGenerator: same weights, same real photo, same settings.

Weights: the reference's own random init of sam2.1_hiera_tiny, perturbed (tests/oracle.py), with the mask
decoder reshaped by `blob_state_dict` so that a click gives a blob around it whose edge follows the
photo, instead of the texture-like, click-independent masks that random decoders give (those all share
one full-image box, so NMS leaves a single mask and the comparison would say little). In short: the
image-to-token attention of the last decoder layer scores image positions by the similarity of their
positional encoding to the click's (low, evenly spread Fourier frequencies), so positions near the
click take the click token's value and the others do not; the upscaling convolutions act as nearest
neighbour upsampling; the hypernetworks point along the difference between the upscaled features near
and away from a click (three offsets: three blob sizes per click); the IoU head's bias is raised by 3
(predicted IoU ~0.94-0.97). Masks then pass or fail the stability filter depending on the click, and
NMS, crop-edge filtering and cross-crop NMS all have work to do. Each parity test asserts that at least
5 masks survived, so that none can pass vacuously; records are compared within tolerance (on this
machine they are identical bit for bit: the test prints how many).

Runs on one torch thread: on a shared 2-core machine two threads stall each other.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from samstream import SAM2Model, official_config
from samstream.amg import MaskGenerator
from samstream.checkpoint import load_into
from tests.helpers import DATA
from tests.oracle import build_reference, reference_state_dict

pytestmark = pytest.mark.oracle

NAME = "sam2.1_hiera_tiny"
MIN_MASKS = 5


# ------------------------------------------------------------------------------------------ the weights
def _our_model(sd) -> SAM2Model:
    model = SAM2Model(official_config(NAME).with_postprocessing(True))
    load_into(model, sd)
    return model.eval()


def blob_state_dict(image: np.ndarray, seed: int = 0) -> dict[str, torch.Tensor]:
    """A perturbed random sam2.1_hiera_tiny state dict whose decoder gives click-centred blobs (see above)."""
    from samstream.amg.decoder import PromptDecoder
    from samstream.transforms import preprocess_image

    sd = {k: v.clone() for k, v in reference_state_dict(NAME, seed=seed).items()}
    dec, tr = "sam_mask_decoder.", "sam_mask_decoder.transformer."
    # 8 low frequencies in evenly spread directions: PE similarity is a bump of radius ~0.3 image
    ang = torch.arange(128) * math.pi / 8
    sd["sam_prompt_encoder.pe_layer.positional_encoding_gaussian_matrix"] = 0.5 * torch.stack([ang.cos(), ang.sin()])
    sel = torch.zeros(128, 256)  # per head: the sin and cos features of those 8 frequencies
    for h in range(8):
        for r in range(8):
            sel[16 * h + r, r] = 1.0
            sel[16 * h + 8 + r, 128 + r] = 1.0
    att = tr + "layers.1.cross_attn_image_to_token."
    for p in ("q_proj", "k_proj"):
        sd[att + p + ".weight"] = 2.0 * sel
        sd[att + p + ".bias"] = torch.zeros(128)
    sd[att + "v_proj.weight"] = sd[att + "v_proj.weight"] * 10.0
    sd[att + "out_proj.weight"] = sd[att + "out_proj.weight"] * 10.0
    # make the positional encodings dominate those scores: small image and token states there
    for k in ("layers.0.norm4.weight", "layers.0.norm4.bias", "layers.1.norm3.weight", "layers.1.norm3.bias"):
        sd[tr + k] = sd[tr + k] * 0.1
    seen = torch.zeros(256, dtype=torch.bool)
    seen[:8] = True
    seen[128:136] = True
    for k in (dec + "iou_token.weight", dec + "mask_tokens.weight", dec + "obj_score_token.weight",
              "sam_prompt_encoder.not_a_point_embed.weight", "sam_prompt_encoder.point_embeddings.1.weight"):
        sd[k][:, seen] = 0.0
    for p in ("q_proj", "k_proj", "v_proj", "out_proj"):  # layer 0 tokens attend to themselves
        sd[tr + f"layers.0.self_attn.{p}.weight"] = torch.eye(256)
        sd[tr + f"layers.0.self_attn.{p}.bias"] = torch.zeros(256)
    for k in ("output_upscaling.0.weight", "output_upscaling.3.weight"):  # nearest-neighbour upsampling
        w = sd[dec + k] * 10.0
        sd[dec + k] = w[:, :, :1, :1].expand_as(w).clone()
    for k in ("conv_s0.weight", "conv_s1.weight"):
        sd[dec + k] = sd[dec + k] * 2.0
    sd[dec + "iou_prediction_head.layers.2.bias"] = sd[dec + "iou_prediction_head.layers.2.bias"] + 3.0
    # hypernetworks: along (features at a click) - lam * (features away from it)
    model = _our_model(sd)
    clicks = [(0.5, 0.5), (0.2, 0.3), (0.8, 0.7)]
    with torch.inference_mode():
        f = model.encode_image(preprocess_image(image, 1024))
        d = PromptDecoder(model, model.no_memory_embed(f.embed), f.high_res)
        pts = torch.tensor(clicks)[:, None] * 1024
        sparse, _ = d.pe((pts, torch.ones(len(clicks), 1, dtype=torch.int32)), None, None)
        up = d._upscale(d._transformer(sparse, None)[1])
    near = torch.stack([up[i, :, int(y * 256), int(x * 256)] for i, (x, y) in enumerate(clicks)]).mean(0)
    far = torch.stack([up[i, :, int((1 - y) * 256) - 1, int((1 - x) * 256) - 1]
                       for i, (x, y) in enumerate(clicks)]).mean(0)
    for i, lam in enumerate((1.0, 0.8, 1.0, 1.25)):
        sd[dec + f"output_hypernetworks_mlps.{i}.layers.2.weight"] = torch.zeros(32, 256)
        sd[dec + f"output_hypernetworks_mlps.{i}.layers.2.bias"] = 50.0 * (near / near.dot(near)
                                                                           - lam * far / far.dot(far))
    return sd


def test_image() -> np.ndarray:
    img = Image.open(DATA / "sam2-assets" / "images" / "groceries.jpg").convert("RGB")
    return np.asarray(img.resize((400, 267), Image.BILINEAR))


test_image.__test__ = False  # a helper, not a test


# ------------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def image():
    return test_image()


@pytest.fixture(scope="module")
def models(image):
    sd = blob_state_dict(image)
    return build_reference(NAME, sd), _our_model(sd)


def run_both(models, image, **kw):
    from sam2.automatic_mask_generator import SAM2AutomaticMaskGenerator

    ref, ours = models
    kw.setdefault("output_mode", "uncompressed_rle")
    with torch.inference_mode():
        expected = SAM2AutomaticMaskGenerator(ref, **kw).generate(image)
    got = MaskGenerator(ours, **kw).generate(image)
    return expected, got


def _mask(rec) -> np.ndarray:
    from samstream.io.rle import decode_rle

    seg = rec["segmentation"]
    return seg if isinstance(seg, np.ndarray) else decode_rle(seg)


def assert_same_masks(expected: list[dict], got: list[dict]) -> None:
    """Same set of masks (each matched to one of IoU >= 0.99) with the same records (within tolerance)."""
    assert len(expected) >= MIN_MASKS, f"only {len(expected)} masks survived: the comparison would be vacuous"
    assert len(got) == len(expected), f"{len(got)} masks, the reference has {len(expected)}"
    em = np.stack([_mask(r) for r in expected]).reshape(len(expected), -1).astype(np.float32)
    gm = np.stack([_mask(r) for r in got]).reshape(len(got), -1).astype(np.float32)
    inter = gm @ em.T
    union = gm.sum(1)[:, None] + em.sum(1)[None, :] - inter
    iou = inter / np.maximum(union, 1)
    match = iou.argmax(1)
    assert sorted(match.tolist()) == list(range(len(expected))), "masks do not pair up one to one"
    exact = 0
    for i, (g, j) in enumerate(zip(got, match)):
        e = expected[j]
        assert iou[i, j] >= 0.99
        assert abs(g["area"] - e["area"]) <= 0.01 * e["area"] + 1
        np.testing.assert_allclose(g["bbox"], e["bbox"], atol=2)
        assert g["predicted_iou"] == pytest.approx(e["predicted_iou"], abs=1e-4)
        assert g["stability_score"] == pytest.approx(e["stability_score"], abs=1e-3)
        np.testing.assert_allclose(g["point_coords"], e["point_coords"], atol=1e-3)
        assert g["crop_box"] == e["crop_box"]
        assert set(g) == set(e)
        exact += g == e
    print(f"{len(got)} masks, {exact} records identical to the reference's bit for bit")


# ------------------------------------------------------------------------------------------ tests
def test_parity_default_settings(models, image):
    """Crops off, m2m off, the official defaults but 8x8 clicks."""
    expected, got = run_both(models, image, points_per_side=8)
    assert_same_masks(expected, got)
    assert [r["point_coords"] for r in got] == [r["point_coords"] for r in expected], "output order differs"


def test_parity_crops(models, image):
    """One crop layer (4 crops + the image): crop-edge filtering and NMS across crops."""
    expected, got = run_both(models, image, points_per_side=4, crop_n_layers=1, pred_iou_thresh=0.94)
    assert_same_masks(expected, got)
    assert any(r["crop_box"] != [0.0, 0.0, 400.0, 267.0] for r in expected), "no mask from a sub-crop"


def test_parity_m2m_and_small_regions(models, image):
    """use_m2m (every candidate re-decoded with its own mask) and min_mask_region_area (holes and islands)."""
    expected, got = run_both(models, image, points_per_side=6, use_m2m=True, min_mask_region_area=40,
                             pred_iou_thresh=0.93)
    assert_same_masks(expected, got)


def test_output_modes_agree(models, image):
    """binary_mask, uncompressed_rle and coco_rle hold the same masks; coco_rle matches pycocotools."""
    from pycocotools import mask as mask_utils

    result = MaskGenerator(models[1], points_per_side=4).generate_masks(image)
    recs = {mode: MaskGenerator(models[1], points_per_side=4, output_mode=mode).records(result)
            for mode in ("binary_mask", "uncompressed_rle", "coco_rle")}
    n = len(recs["binary_mask"])
    assert n >= 3 and all(len(r) == n for r in recs.values())
    h, w = image.shape[:2]
    for b, u, c in zip(recs["binary_mask"], recs["uncompressed_rle"], recs["coco_rle"]):
        m = b["segmentation"]
        assert m.dtype == bool and m.shape == (h, w)
        coco = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
        assert c["segmentation"] == {"size": [h, w], "counts": coco["counts"].decode()}
        assert mask_utils.frPyObjects(u["segmentation"], h, w)["counts"] == coco["counts"]
        assert b["area"] == u["area"] == c["area"] == int(m.sum())
        ys, xs = np.nonzero(m)
        assert b["bbox"] == [xs.min(), ys.min(), xs.max() - xs.min(), ys.max() - ys.min()]
