"""`samstream eval image`: the interactive click protocol, the dataset readers, the CLI end to end."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from samstream import SAM2Model, save_model
from samstream.cli import main
from samstream.eval import (
    coco_image_samples,
    davis_image_samples,
    evaluate_image_clicks,
    first_click,
    next_click,
    read_labels,
)
from samstream.io.coco import mask_to_annotation
from samstream.io.png import write_label_png
from tests.helpers import small_config

DAVIS16 = Path(__file__).resolve().parents[2] / "shared" / "data" / "davis2016"

H = W = 20
GT = np.zeros((H, W), bool)
GT[5:15, 5:15] = True  # 100 pixels


class FakePredictor:
    """Scripted masks: on image "A", click 1 -> 3 masks (the best, scored 0.9, has IoU 0.5), click 2 ->
    IoU 0.88, click 3 -> perfect; on image "B" always an empty mask. Low-res logits are constant arrays
    tagged with the call number so the test can see which one comes back as mask_input."""

    def __init__(self):
        self.images: list[str] = []
        self.calls: list[dict] = []
        self.image = None
        self.n = 0  # calls on the current object (points count = clicks so far)

    def set_image(self, image):
        self.images.append(image)
        self.image = image

    def predict(self, points, labels, box=None, mask_input=None, multimask_output=True, return_logits=False):
        self.calls.append({"image": self.image, "points": np.array(points), "labels": np.array(labels),
                           "mask_input": None if mask_input is None else np.array(mask_input),
                           "multimask": multimask_output})
        k = len(points)  # 1-based click index
        tag = 10.0 * len(self.calls)
        if self.image == "B":
            m = np.zeros((3 if multimask_output else 1, H, W), bool)
        elif k == 1:
            half = np.zeros((H, W), bool)
            half[5:15, 5:10] = True  # IoU 0.5
            m = np.stack([np.zeros((H, W), bool), half, np.ones((H, W), bool)])
        elif k == 2:
            m = GT.copy()[None]
            m[0, 5:7, 5:11] = False  # 12 pixels missed: IoU 0.88
        else:
            m = GT.copy()[None]
        n = m.shape[0]
        assert n == (3 if multimask_output else 1)
        scores = np.array([0.1, 0.9, 0.5][:n], np.float32)
        low = np.stack([np.full((4, 4), tag + i, np.float32) for i in range(n)])
        return m, scores, low


def test_protocol_feeds_clicks_and_logits_and_scores():
    fake = FakePredictor()
    samples = [("A", GT, "a/1"), ("A", GT, "a/2"), ("B", GT, "b/1")]
    res = evaluate_image_clicks(fake, samples, max_clicks=20, progress=False)

    assert fake.images == ["A", "B"]  # the embedding is computed once per image
    a_calls = [c for c in fake.calls if c["image"] == "A"]
    assert len(a_calls) == 6  # 3 clicks per object, then perfect: no more calls
    c1, c2, c3 = a_calls[:3]
    # click 1: multimask, no mask prompt, the interior point farthest from the boundary
    f = first_click(GT)
    assert c1["multimask"] and c1["mask_input"] is None
    np.testing.assert_array_equal(c1["points"], [[f.x, f.y]])
    np.testing.assert_array_equal(c1["labels"], [1])
    # click 2: single mask, all clicks so far, the low-res logits of click 1's best mask (index 1)
    half = np.zeros((H, W), bool)
    half[5:15, 5:10] = True
    n2 = next_click(GT, half)
    assert not c2["multimask"] and n2.positive
    np.testing.assert_array_equal(c2["points"], [[f.x, f.y], [n2.x, n2.y]])
    np.testing.assert_array_equal(c2["labels"], [1, 1])
    assert c2["mask_input"].shape == (1, 4, 4) and np.all(c2["mask_input"] == 10.0 + 1)
    # click 3: the logits of click 2's single mask
    assert not c3["multimask"] and len(c3["points"]) == 3
    assert c3["mask_input"].shape == (1, 4, 4) and np.all(c3["mask_input"] == 20.0)

    b_calls = [c for c in fake.calls if c["image"] == "B"]
    assert len(b_calls) == 20 and b_calls[0]["multimask"] and not any(c["multimask"] for c in b_calls[1:])
    assert [len(c["points"]) for c in b_calls] == list(range(1, 21))

    assert res.names == ["a/1", "a/2", "b/1"]
    assert res.traces[0].ious[:4] == pytest.approx([0.5, 0.88, 1.0, 1.0]) and len(res.traces[0].ious) == 20
    assert res.traces[2].ious == [0.0] * 20
    s = res.summary
    assert s["num_objects"] == 3
    assert s["mIoU@1"] == pytest.approx(1 / 3) and s["mIoU@5"] == pytest.approx(2 / 3)
    assert s["NoC@85"] == pytest.approx((2 + 2 + 20) / 3) and s["NoC@85_failed"] == 1
    assert s["NoC@90"] == pytest.approx((3 + 3 + 20) / 3) and s["NoC@90_failed"] == 1
    curve = res.mean_iou_per_click
    assert len(curve) == 20 and curve[0] == pytest.approx(1 / 3) and curve[1] == pytest.approx(2 * 0.88 / 3)
    d = res.to_dict()
    assert d["samples"][0]["clicks"][0] == [f.x, f.y, 1] and d["mIoU@1"] == pytest.approx(1 / 3)


def test_protocol_rejects_too_few_clicks_and_names_bad_samples():
    with pytest.raises(ValueError, match="fewer than"):
        evaluate_image_clicks(FakePredictor(), [("A", GT, "a")], max_clicks=3, progress=False)
    with pytest.raises(ValueError, match=r"empty/1.*empty"):
        evaluate_image_clicks(FakePredictor(), [("A", np.zeros((H, W)), "empty/1")], progress=False)


def test_davis_reader_every_and_objects(tmp_path):
    samples = davis_image_samples(DAVIS16, every=25)
    items = list(samples)
    assert len(samples) == len(items) == 2 + 4 + 2 + 2 + 3  # 50, 90, 40, 49, 55 frames; one object each
    names = [n for _, _, n in items]
    assert names[:3] == ["blackswan/00000/1", "blackswan/00025/1", "bmx-bumps/00000/1"]
    image, gt, _ = items[1]
    assert image == DAVIS16 / "JPEGImages" / "480p" / "blackswan" / "00025.jpg"
    assert gt.dtype == bool and gt.any()
    np.testing.assert_array_equal(gt, read_labels(DAVIS16 / "Annotations" / "480p" / "blackswan" / "00025.png") == 1)

    # multi-object indexed PNGs, void 255 not an object, a frame with no object skipped
    labels = np.zeros((8, 10), np.uint8)
    labels[1:3, 1:3] = 1
    labels[5:7, 5:9] = 3
    labels[0, :] = 255
    for stem, lab in (("00000", labels), ("00001", np.zeros_like(labels))):
        (tmp_path / "Annotations" / "s").mkdir(parents=True, exist_ok=True)
        (tmp_path / "JPEGImages" / "s").mkdir(parents=True, exist_ok=True)
        write_label_png(tmp_path / "Annotations" / "s" / f"{stem}.png", lab)
        Image.fromarray(np.zeros((8, 10, 3), np.uint8)).save(tmp_path / "JPEGImages" / "s" / f"{stem}.jpg")
    got = list(davis_image_samples(tmp_path))
    assert [n for _, _, n in got] == ["s/00000/1", "s/00000/3"]
    np.testing.assert_array_equal(got[1][1], labels == 3)


def test_coco_reader(tmp_path):
    masks = [np.zeros((6, 8), bool) for _ in range(3)]
    masks[0][1:3, 1:4] = True
    masks[1][3:6, 4:8] = True
    masks[2][0:2, 6:8] = True
    anns = [mask_to_annotation(masks[0], image_id=1, annotation_id=11),
            mask_to_annotation(masks[1], image_id=1, annotation_id=12),
            mask_to_annotation(masks[2], image_id=2, annotation_id=13, iscrowd=1),
            mask_to_annotation(masks[0], image_id=3, annotation_id=14)]
    images = [{"id": i, "file_name": f"im{i}.jpg", "height": 6, "width": 8} for i in (1, 2, 3)]
    for i in (1, 2, 3):
        Image.fromarray(np.zeros((6, 8, 3), np.uint8)).save(tmp_path / f"im{i}.jpg")
    (tmp_path / "c.json").write_text(json.dumps({"images": images, "annotations": anns, "categories": []}))
    got = list(coco_image_samples(tmp_path / "c.json", tmp_path))
    assert [n for _, _, n in got] == ["im1.jpg/11", "im1.jpg/12", "im3.jpg/14"]  # crowd skipped
    assert got[0][0] == tmp_path / "im1.jpg"
    np.testing.assert_array_equal(got[1][1], masks[1])
    assert [n for _, _, n in coco_image_samples(tmp_path / "c.json", tmp_path, every=2)] == ["im1.jpg/11", "im1.jpg/12"]


def test_cli_eval_image_end_to_end(tmp_path, capsys):
    torch.manual_seed(0)
    save_model(SAM2Model(small_config()), tmp_path / "m.safetensors")
    out_json, out_png = tmp_path / "r.json", tmp_path / "IoU_vs_clicks.png"
    rc = main(["eval", "image", "--data", str(DAVIS16), "--model", str(tmp_path / "m.safetensors"),
               "--every", "25", "--json", str(out_json), "--plot", str(out_png)])
    assert rc == 0
    d = json.loads(out_json.read_text())
    assert d["num_objects"] == 13 and d["max_clicks"] == 20 and len(d["samples"]) == 13
    for k in ("mIoU@1", "mIoU@5"):
        assert 0.0 <= d[k] <= 1.0
    for k in ("NoC@85", "NoC@90"):
        assert 1.0 <= d[k] <= 20.0 and 0 <= d[k + "_failed"] <= 13
    assert d["NoC@85"] <= d["NoC@90"]
    assert len(d["mean_iou_per_click"]) == 20 and all(0 <= v <= 1 for v in d["mean_iou_per_click"])
    assert d["mIoU@1"] == pytest.approx(d["mean_iou_per_click"][0])
    s = d["samples"][0]
    assert s["name"] == "blackswan/00000/1" and len(s["ious"]) == 20 and 1 <= len(s["clicks"]) <= 20
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    printed = capsys.readouterr().out
    assert "mIoU@1" in printed and "NoC@90" in printed and f"{100 * d['mIoU@1']:.2f}" in printed


def test_cli_eval_image_mirror_and_edge_refine(tmp_path):
    """--mirror and --edge-refine reach the predictor: the settings say so and the IoUs differ from the plain
    run's."""
    torch.manual_seed(0)
    save_model(SAM2Model(small_config()), tmp_path / "m.safetensors")
    runs = {}
    for name, flag in (("plain", []), ("mirror", ["--mirror"]), ("refined", ["--edge-refine", "1"])):
        out = tmp_path / f"{name}.json"
        assert main(["eval", "image", "--data", str(DAVIS16), "--model", str(tmp_path / "m.safetensors"), "--every",
                     "50", "--max-clicks", "5", "--sequences", "blackswan", "--json", str(out), "-q", *flag]) == 0
        runs[name] = json.loads(out.read_text())
    assert runs["mirror"]["settings"]["mirror"] is True and runs["plain"]["settings"]["mirror"] is False
    assert runs["refined"]["settings"]["edge_refine"] == 1.0 and runs["plain"]["settings"]["edge_refine"] == 0.0
    for name in ("mirror", "refined"):
        assert runs[name]["mean_iou_per_click"] != runs["plain"]["mean_iou_per_click"], name


def test_cli_eval_image_needs_data(capsys):
    assert main(["eval", "image", "--model", "x.safetensors"]) == 2
    assert "--data" in capsys.readouterr().err
