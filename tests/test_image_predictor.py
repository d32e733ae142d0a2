"""ImagePredictor behaviour that needs no oracle: input forms, bad input, CLI end to end."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from samstream import ImagePredictor, SAM2Model, save_model
from samstream.cli import main
from tests.helpers import DATA, small_config

IMG = DATA / "sam2-assets" / "images" / "groceries.jpg"


@pytest.fixture(scope="module")
def predictor():
    torch.manual_seed(0)
    p = ImagePredictor(SAM2Model(small_config()))
    p.set_image(IMG)
    return p


def test_image_forms_agree(predictor):
    arr = np.asarray(Image.open(IMG).convert("RGB"))
    emb = predictor.get_image_embedding().clone()
    other = ImagePredictor(predictor.model)
    other.set_image(Image.open(IMG))
    assert torch.equal(other.get_image_embedding(), emb)
    other.set_image(arr)
    assert torch.equal(other.get_image_embedding(), emb)
    assert other.orig_hw == [(534, 800)]


def test_output_shapes(predictor):
    m, s, low = predictor.predict([[10, 20]], [1])
    assert m.shape == (3, 534, 800) and m.dtype == bool and s.shape == (3,) and low.shape == (3, 64, 64)
    m, s, low = predictor.predict(box=[[0, 0, 100, 100], [50, 50, 400, 300]], multimask_output=False)
    assert m.shape == (2, 1, 534, 800) and s.shape == (2, 1) and low.shape == (2, 1, 64, 64)
    assert np.abs(low).max() <= 32


def test_embedding_computed_once(predictor, monkeypatch):
    calls = []
    monkeypatch.setattr(predictor.model, "encode_image", lambda *a: calls.append(1))
    predictor.predict([[10, 20]], [1])
    predictor.predict(box=[0, 0, 50, 50])
    assert calls == []


@pytest.mark.parametrize("image, message", [
    (np.zeros((50, 60), np.uint8), r"shape \(H, W, 3\).*\(50, 60\)"),
    (np.zeros((50, 60, 4), np.uint8), r"shape \(H, W, 3\)"),
    (np.zeros((50, 60, 3), np.float32), "uint8.*float32"),
    (torch.zeros(3, 50, 60), "not a torch tensor"),
    ("/nonexistent/image.jpg", "image not found"),
])
def test_bad_images(image, message):
    p = ImagePredictor(SAM2Model(small_config()))
    with pytest.raises((ValueError, TypeError, FileNotFoundError), match=message):
        p.set_image(image)
    assert not p.is_image_set


def test_corrupt_image_file(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(IMG.read_bytes()[:300])
    with pytest.raises(ValueError, match="cannot be decoded"):
        ImagePredictor(SAM2Model(small_config())).set_image(bad)


@pytest.mark.parametrize("kwargs, message", [
    (dict(points=[[900, 10]], labels=[1]), r"point \(900, 10\) lies outside the 800x534 image"),
    (dict(points=[[-1, 10]], labels=[1]), "outside"),
    (dict(box=[300, 10, 100, 200]), "x1 < x0"),
    (dict(box=[10, 10, 100, 600]), r"box corner \(100, 600\) lies outside"),
    (dict(points=[[10, 10], [20, 20]], labels=[1]), "does not match"),
    (dict(points=[[10, 10]], labels=[5]), "labels must be 1"),
    (dict(points=[10, 10, 20]), "shape"),
    (dict(box=[1, 2, 3]), "box must have shape"),
    (dict(mask_input=np.zeros((1, 32, 32))), "mask_input must be"),
    (dict(points=[[0.5, 0.5]], labels=[1], normalize_coords=False, box=[0, 0, 2, 1]), r"\[0, 1\] range"),
])
def test_bad_prompts(predictor, kwargs, message):
    emb = predictor.get_image_embedding().clone()
    with pytest.raises(ValueError, match=message):
        predictor.predict(**kwargs)
    assert torch.equal(predictor.get_image_embedding(), emb), "a bad prompt must not lose the image"


def test_predict_before_image():
    with pytest.raises(RuntimeError, match="set_image"):
        ImagePredictor(SAM2Model(small_config())).predict([[1, 1]], [1])


def test_normalized_coords_match_pixels(predictor):
    a = predictor.predict([[400, 267]], [1], return_logits=True)[0]
    b = predictor.predict([[0.5, 0.5]], [1], normalize_coords=False, return_logits=True)[0]
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_cli_segment_end_to_end(tmp_path, capsys):
    torch.manual_seed(0)
    ckpt = save_model(SAM2Model(small_config()), tmp_path / "mini.safetensors")
    out = tmp_path / "out"
    rc = main(["segment", str(IMG), "--point", "400,260", "--point", "100,100,0", "--box", "300,150,600,450",
               "--model", str(ckpt), "-o", str(out)])
    assert rc == 0
    mask = np.asarray(Image.open(out / "mask.png"))
    vis = np.asarray(Image.open(out / "overlay.png"))
    assert mask.shape == (534, 800) and set(np.unique(mask)) <= {0, 255}
    assert vis.shape == (534, 800, 3)
    # the written mask is what the API gives for the same prompts
    from samstream import load_model

    api = ImagePredictor(load_model(ckpt))
    api.set_image(IMG)
    m, _s, _ = api.predict([[400, 260], [100, 100]], [1, 0], [300, 150, 600, 450], multimask_output=False)
    assert np.array_equal(mask > 0, m[0])
    assert "mask:" in capsys.readouterr().out


def test_cli_errors(tmp_path, capsys):
    assert main(["segment", str(IMG), "-o", str(tmp_path)]) == 2
    assert "at least one --point" in capsys.readouterr().err
    assert main(["segment", str(IMG), "--point", "1,1", "--model", str(tmp_path / "nope.pt"),
                 "-o", str(tmp_path)]) == 2
    assert "checkpoint not found" in capsys.readouterr().err


def test_training_after_inference_in_one_process():
    """Cached position tables made under inference_mode must not poison a later backward pass."""
    torch.manual_seed(0)
    model = SAM2Model(small_config())
    p = ImagePredictor(model)
    p.set_image(np.zeros((64, 64, 3), np.uint8))  # fills the caches inside inference_mode

    def track_step():
        feats = model.encode_image(torch.zeros(1, 3, 256, 256))
        mem, pos = model.encode_memory(feats.embed, torch.zeros(1, 1, 256, 256), torch.ones(1, 1), binarize=False)
        return model.attend_memory(feats.embed, feats.pos, mem.flatten(2).transpose(1, 2),
                                   pos.flatten(2).transpose(1, 2), 0)

    with torch.inference_mode():
        track_step()  # RoPE tables too
    model.train()
    track_step().sum().backward()
    assert model.memory_attention.layers[0].linear1.weight.grad is not None


def test_islands_are_judged_before_holes_are_filled():
    """A ring of foreground (an island) around a small hole: the ring is removed as an island even though
    filling its hole would make it larger than max_sprinkle_area (Meta's predictor finds both on the raw
    logits)."""
    from samstream.postprocess import clean_small_regions

    logits = -torch.ones(1, 1, 20, 20)
    logits[0, 0, 5:10, 5:10] = 1.0  # a 5x5 island (25 px) ...
    logits[0, 0, 7, 7] = -1.0  # ... with a 1-px hole: 24 px of foreground
    out = clean_small_regions(logits, max_hole_area=1, max_sprinkle_area=24)
    assert (out > 0).sum() == 1  # the island went; the filled hole stays
    assert out[0, 0, 7, 7] > 0
    assert (clean_small_regions(logits, 0, 0) == logits).all()


def test_mirror_is_the_mean_of_the_image_and_its_mirror_image(predictor):
    """mirror=True: each mask's logits and score are the mean of the plain prediction and the one on the flipped
    image with the flipped prompts (clicks, a box, a low-res mask input), flipped back. The image is at the
    model's size, so flipping it before or after resizing is the same."""
    s = predictor.model.cfg.image_size
    arr = np.ascontiguousarray(np.asarray(Image.open(IMG).convert("RGB"))[100: 100 + s, 200: 200 + s])
    flipped = np.ascontiguousarray(arr[:, ::-1])
    rng = np.random.default_rng(0)
    low_in = rng.normal(0, 4, (1, s // 4, s // 4)).astype(np.float32)
    mirror, plain = ImagePredictor(predictor.model, mirror=True), ImagePredictor(predictor.model)
    mirror.set_image(arr)
    for kw, kw_flipped in (
            (dict(points=[[40.0, 60.0], [150.0, 90.0]], labels=[1, 0]),
             dict(points=[[s - 40.0, 60.0], [s - 150.0, 90.0]], labels=[1, 0])),
            (dict(box=[30.0, 40.0, 120.0, 200.0]), dict(box=[s - 120.0, 40.0, s - 30.0, 200.0])),
            (dict(points=[[100.0, 100.0]], labels=[1], mask_input=low_in),
             dict(points=[[s - 100.0, 100.0]], labels=[1], mask_input=np.ascontiguousarray(low_in[..., ::-1])))):
        got, got_s, _ = mirror.predict(**kw, return_logits=True)
        plain.set_image(arr)
        a, a_s, _ = plain.predict(**kw, return_logits=True)
        plain.set_image(flipped)
        b, b_s, _ = plain.predict(**kw_flipped, return_logits=True)
        np.testing.assert_allclose(got, (a + b[..., ::-1]) / 2, atol=1e-4, rtol=0)
        np.testing.assert_allclose(got_s, (a_s + b_s) / 2, atol=1e-5, rtol=0)
        assert np.abs(a - b[..., ::-1]).max() > 1e-2  # the views differ
    assert mirror.get_image_embedding().shape[0] == 1  # the mirror image is not part of the embedding


def test_cli_segment_mirror(tmp_path):
    from samstream import load_model

    torch.manual_seed(0)
    ckpt = save_model(SAM2Model(small_config()), tmp_path / "mini.safetensors")
    out = {}
    for flag in ([], ["--mirror"]):
        d = tmp_path / ("m" if flag else "p")
        assert main(["segment", str(IMG), "--point", "400,260", "--model", str(ckpt), "-o", str(d), *flag]) == 0
        out[bool(flag)] = np.asarray(Image.open(d / "mask.png")) > 0
    api = ImagePredictor(load_model(ckpt), mirror=True)
    api.set_image(IMG)
    m, _, _ = api.predict([[400, 260]], [1], multimask_output=False)
    assert np.array_equal(out[True], m[0]) and not np.array_equal(out[True], out[False])


def test_edge_refinement_is_refine_to_edges_of_the_plain_logits(predictor):
    """edge_refine_radius: the masks are `refine_to_edges` of the plain ones around the threshold (the radius
    scaled from low-res mask pixels to image pixels), for one prompt and a batch, the low-res logits and scores
    unchanged; the model's inference defaults are the default."""
    from samstream.postprocess import refine_to_edges
    from samstream.transforms import to_rgb_array

    image = to_rgb_array(IMG)
    h, w = image.shape[:2]
    low_res = predictor.model.cfg.image_size // 4
    radius = 0.5
    px = max(1, round(radius * max(h, w) / low_res))
    predictor.set_image(image)
    logits, _, _ = predictor.predict([[400.0, 260.0]], [1], return_logits=True)
    threshold = float(np.quantile(logits, 0.8))  # the random model's logits are near 0: a threshold inside them
    plain = ImagePredictor(predictor.model, mask_threshold=threshold)
    model_on = SAM2Model(predictor.model.cfg).eval()
    model_on.load_state_dict(predictor.model.state_dict())
    model_on.inference_defaults = model_on.inference_defaults.override(edge_refine_radius=radius)
    for refined in (ImagePredictor(predictor.model, mask_threshold=threshold, edge_refine_radius=radius),
                    ImagePredictor(model_on, mask_threshold=threshold)):
        for p in (plain, refined):
            p.set_image(image)
        for kw in (dict(points=[[400.0, 260.0]], labels=[1]), dict(box=[[300, 200, 500, 330], [50, 50, 200, 200]])):
            a, a_s, a_low = plain.predict(**kw, return_logits=True)
            b, b_s, b_low = refined.predict(**kw, return_logits=True)
            flat = torch.from_numpy(a).reshape(-1, 1, h, w) - threshold
            want = (refine_to_edges(flat, image, px, 1e-3) + threshold).reshape(a.shape).numpy()
            np.testing.assert_allclose(b, want, rtol=0, atol=1e-5)
            np.testing.assert_array_equal(b_s, a_s)
            np.testing.assert_array_equal(b_low, a_low)
            masks, _, _ = refined.predict(**kw)
            assert np.array_equal(masks, b > threshold) and not np.array_equal(masks, a > threshold)
    with pytest.raises(ValueError, match="edge_refine"):
        ImagePredictor(predictor.model, edge_refine_eps=0)


def test_cli_segment_edge_refine(tmp_path):
    from samstream import load_model

    torch.manual_seed(0)
    ckpt = save_model(SAM2Model(small_config()), tmp_path / "mini.safetensors")
    assert main(["segment", str(IMG), "--point", "400,260", "--model", str(ckpt), "-o", str(tmp_path),
                 "--edge-refine", "0.5", "--overwrite"]) == 0
    got = np.asarray(Image.open(tmp_path / "mask.png")) > 0
    api = ImagePredictor(load_model(ckpt), edge_refine_radius=0.5)
    api.set_image(IMG)
    m, _, _ = api.predict([[400, 260]], [1], multimask_output=False)
    plain = ImagePredictor(load_model(ckpt))
    plain.set_image(IMG)
    m0, _, _ = plain.predict([[400, 260]], [1], multimask_output=False)
    assert np.array_equal(got, m[0]) and not np.array_equal(got, m0[0])
