"""`samstream segment-all`: a COCO file and an overlay per image, from a checkpoint saved with save_model
(random weights, thresholds at 0 so that masks come out), for one image and for a folder."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from samstream import SAM2Model, official_config, save_model
from samstream.cli import main
from samstream.io import decode_rle, read_coco_json
from tests.helpers import DATA

OPEN = ["--points-per-side", "2", "--pred-iou-thresh", "0", "--stability-score-thresh", "0", "--quiet"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    return save_model(SAM2Model(official_config("sam2.1_hiera_tiny")),
                      tmp_path_factory.mktemp("ckpt") / "random.safetensors")


def test_one_image(tmp_path, checkpoint, capsys):
    src = tmp_path / "in.jpg"
    Image.open(DATA / "sam2-assets" / "images" / "groceries.jpg").resize((200, 134)).save(src)
    assert main(["segment-all", str(src), "-o", str(tmp_path / "out"), "--model", str(checkpoint), *OPEN]) == 0
    coco = read_coco_json(tmp_path / "out" / "annotations.json")
    assert list(coco.images.values()) == [{"id": 1, "file_name": "in.jpg", "height": 134, "width": 200}]
    assert len(coco.annotations) > 0
    for ann in coco.annotations:
        m = decode_rle(ann["segmentation"])
        assert m.shape == (134, 200) and ann["area"] == int(m.sum()) > 0
        assert 0 <= ann["score"] <= 1 and len(ann["point_coords"]) == 1
    overlay = np.asarray(Image.open(tmp_path / "out" / "in_overlay.png"))
    assert overlay.shape == (134, 200, 3)
    assert "masks in 1 image(s)" in capsys.readouterr().out


def test_folder_and_options(tmp_path, checkpoint):
    folder = tmp_path / "pics"
    folder.mkdir()
    for name in ("truck", "cars"):
        Image.open(DATA / "sam2-assets" / "images" / f"{name}.jpg").resize((120, 80)).save(folder / f"{name}.png")
    (folder / "notes.txt").write_text("not an image")
    assert main(["segment-all", str(folder), "-o", str(tmp_path / "out"), "--model", str(checkpoint), *OPEN,
                 "--single-mask", "--use-m2m", "--min-mask-region-area", "5", "--box-nms-thresh", "0.5"]) == 0
    data = json.loads((tmp_path / "out" / "annotations.json").read_text())
    assert [i["file_name"] for i in data["images"]] == ["cars.png", "truck.png"]
    assert {a["image_id"] for a in data["annotations"]} <= {1, 2}
    assert (tmp_path / "out" / "cars_overlay.png").is_file() and (tmp_path / "out" / "truck_overlay.png").is_file()


def test_errors(tmp_path, checkpoint, capsys):
    out = str(tmp_path / "out")
    assert main(["segment-all", str(tmp_path / "missing.jpg"), "-o", out, "--model", str(checkpoint)]) == 2
    assert "not found" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["segment-all", str(tmp_path / "empty"), "-o", out, "--model", str(checkpoint)]) == 2
    assert "no images" in capsys.readouterr().err
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a jpeg")
    assert main(["segment-all", str(bad), "-o", out, "--model", str(checkpoint)]) == 2
    assert "cannot be decoded" in capsys.readouterr().err
    shutil.rmtree(tmp_path / "empty")


def test_folder_with_a_bad_image_keeps_the_others(tmp_path, checkpoint, capsys):
    folder = tmp_path / "pics"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a.png", "c.png"):
        Image.fromarray(rng.integers(0, 255, (40, 60, 3), dtype=np.uint8)).save(folder / name)
    (folder / "b.jpg").write_bytes(b"not a jpeg")
    out = tmp_path / "out"
    assert main(["segment-all", str(folder), "-o", str(out), "--model", str(checkpoint), *OPEN]) == 1
    err = capsys.readouterr().err
    assert "warning: b.jpg skipped" in err and "cannot be decoded" in err and "1 of 3 image(s) failed" in err
    data = json.loads((out / "annotations.json").read_text())
    assert [i["file_name"] for i in data["images"]] == ["a.png", "c.png"] and len(data["annotations"]) > 0
    assert {a["image_id"] for a in data["annotations"]} <= {i["id"] for i in data["images"]}
    assert [f["file_name"] for f in data["failures"]] == ["b.jpg"]
    assert "cannot be decoded" in data["failures"][0]["error"]
    assert sorted(p.name for p in out.iterdir()) == ["a_overlay.png", "annotations.json", "c_overlay.png"]
