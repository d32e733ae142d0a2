"""Video: `samstream track` end to end (small model saved as a checkpoint; no reference needed)."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from samstream import load, save_model
from samstream.cli import main
from samstream.io.png import read_label_png
from samstream.io.sav import load_sav_json
from samstream.video import VideoPredictor
from tests.helpers import small_model, synthetic_frames, truncated_mp4


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return save_model(small_model(), tmp_path_factory.mktemp("model") / "small.safetensors")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    d = tmp_path_factory.mktemp("frames")
    for i, f in enumerate(synthetic_frames(6)):
        Image.fromarray(f).save(d / f"img_{i}.png")  # any names: not integers
    return d


def _labels(out, n):
    return [read_label_png(out / f"{i:05d}.png")[0] for i in range(n)]


def test_track_writes_one_png_per_frame_json_and_overlay(tmp_path, folder, ckpt):
    out = tmp_path / "out"
    rc = main(["track", str(folder), "--prompt", "2:1:20,20", "--prompt", "2:1:50,40,0", "--box", "4:2:30,10,60,40",
               "--direction", "both", "-o", str(out), "--model", str(ckpt), "--format", "png,json,mp4", "--quiet",
               "--device", "cpu"])
    assert rc == 0
    labels = _labels(out, 6)
    assert all(set(np.unique(lab)) <= {0, 1, 2} for lab in labels) and any((lab == 2).any() for lab in labels)
    # the same as the Python API with the same prompts
    vp = VideoPredictor(load.load_model(ckpt), folder, progress=False)
    vp.add_points(2, 1, [[20, 20], [50, 40]], [1, 0])
    vp.add_box(4, 2, [30, 10, 60, 40])
    final = {r.frame_idx: r.label_map() for r in vp.propagate(direction="both")}
    for t in range(6):
        assert np.array_equal(labels[t], final[t]), t
    m = load_sav_json(out / "masks.json")
    assert m.masklet_ids == [1, 2] and m.meta["masklet_frame_idx"] == list(range(6))
    import av

    with av.open(str(out / "overlay.mp4")) as c:
        assert sum(1 for _ in c.decode(video=0)) == 6


def test_mirror_option(tmp_path, folder, ckpt):
    """--mirror gives the Python API's mirror=True labels (which differ from the plain ones here)."""
    out = tmp_path / "out"
    assert main(["track", str(folder), "--prompt", "0:1:20,20", "-o", str(out), "--model", str(ckpt), "--mirror",
                 "--quiet", "--device", "cpu"]) == 0
    labels = _labels(out, 6)
    model = load.load_model(ckpt)
    res = {}
    for mirror in (False, True):
        vp = VideoPredictor(model, folder, progress=False, mirror=mirror)
        vp.add_points(0, 1, [[20, 20]])
        res[mirror] = {r.frame_idx: r.label_map() for r in vp.propagate()}
    assert all(np.array_equal(labels[t], res[True][t]) for t in range(6))
    assert not all(np.array_equal(labels[t], res[False][t]) for t in range(6))


def test_min_region_area_and_non_overlap_options(tmp_path, folder, ckpt):
    """--min-region-area with --non-overlap gives the Python API's labels with those options (which differ from
    the plain ones)."""
    out = tmp_path / "out"
    assert main(["track", str(folder), "--prompt", "0:1:20,20", "--box", "0:2:30,10,60,40", "-o", str(out),
                 "--model", str(ckpt), "--min-region-area", "40", "--non-overlap", "--quiet", "--device", "cpu"]) == 0
    labels = _labels(out, 6)
    model = load.load_model(ckpt)
    res = {}
    for area in (0, 40):
        vp = VideoPredictor(model, folder, progress=False, min_region_area=area, non_overlap_masks=area > 0)
        vp.add_points(0, 1, [[20, 20]])
        vp.add_box(0, 2, [30, 10, 60, 40])
        res[area] = {r.frame_idx: r.label_map() for r in vp.propagate()}
    assert all(np.array_equal(labels[t], res[40][t]) for t in range(6))
    assert not all(np.array_equal(labels[t], res[0][t]) for t in range(6))


def test_edge_refine_option(tmp_path, folder, ckpt, capsys):
    """--edge-refine gives the Python API's labels with that radius (which differ from the plain ones)."""
    out = tmp_path / "out"
    assert main(["track", str(folder), "--prompt", "0:1:20,20", "-o", str(out), "--model", str(ckpt),
                 "--edge-refine", "1", "--quiet", "--device", "cpu"]) == 0
    labels = _labels(out, 6)
    model = load.load_model(ckpt)
    res = {}
    for radius in (None, 1.0):
        vp = VideoPredictor(model, folder, progress=False, edge_refine_radius=radius)
        vp.add_points(0, 1, [[20, 20]])
        res[radius] = {r.frame_idx: r.label_map() for r in vp.propagate()}
    assert all(np.array_equal(labels[t], res[1.0][t]) for t in range(6))
    assert not all(np.array_equal(labels[t], res[None][t]) for t in range(6))
    with pytest.raises(SystemExit) as e:  # a negative radius is refused by the parser
        main(["track", str(folder), "--prompt", "0:1:20,20", "-o", str(out), "--edge-refine", "-1", "--quiet"])
    assert e.value.code == 2 and "expected a number >= 0" in capsys.readouterr().err


def test_mask_prompt_and_default_model(tmp_path, folder, ckpt, monkeypatch):
    mask = np.zeros((48, 64), np.uint8)
    mask[10:30, 20:40] = 255
    Image.fromarray(mask).save(tmp_path / "m.png")
    monkeypatch.setattr(load, "DEFAULT_MODEL_PATH", ckpt)  # "the default model" without --model
    out = tmp_path / "out"
    assert main(["track", str(folder), "--mask", f"0:3:{tmp_path / 'm.png'}", "-o", str(out), "--quiet",
                 "--device", "cpu"]) == 0
    assert ((_labels(out, 1)[0] == 3) == (mask > 0)).mean() > 0.98  # the mask, through the 16x16 low-res logits
    monkeypatch.setattr(load, "DEFAULT_MODEL_PATH", tmp_path / "absent.safetensors")
    assert main(["track", str(folder), "--prompt", "0:1:5,5", "-o", str(out), "--quiet", "--overwrite"]) == 2


def test_truncated_video_fails_clearly_and_keeps_finished_frames(tmp_path, ckpt, capsys):
    cut = truncated_mp4(tmp_path)
    out = tmp_path / "out"
    rc = main(["track", str(cut), "--prompt", "0:1:480,270", "-o", str(out), "--model", str(ckpt),
               "--format", "png,json", "--quiet", "--device", "cpu"])
    err = capsys.readouterr().err
    assert rc == 2 and "cut.mp4" in err and "frame" in err and "truncated or corrupt" in err
    kept = sorted(p.name for p in out.glob("*.png"))
    assert len(kept) >= 50 and kept == [f"{i:05d}.png" for i in range(len(kept))]
    assert len(load_sav_json(out / "masks.json").rles) == len(kept)


def test_interrupt_keeps_finished_frames(tmp_path, folder, ckpt, monkeypatch):
    orig = VideoPredictor._track_frame

    def stop_at_3(self, t, reverse):
        if t == 3:
            raise KeyboardInterrupt
        return orig(self, t, reverse)

    monkeypatch.setattr(VideoPredictor, "_track_frame", stop_at_3)
    out = tmp_path / "out"
    rc = main(["track", str(folder), "--prompt", "0:1:20,20", "-o", str(out), "--model", str(ckpt),
               "--format", "png,mp4", "--quiet", "--device", "cpu"])
    assert rc == 130
    assert sorted(p.name for p in out.iterdir()) == ["00000.png", "00001.png", "00002.png", "overlay.mp4"]


def test_bad_arguments(tmp_path, folder, ckpt, capsys):
    base = ["track", str(folder), "-o", str(tmp_path / "o"), "--model", str(ckpt), "--quiet", "--device", "cpu"]
    assert main(base) == 2 and "at least one --prompt" in capsys.readouterr().err
    assert main(base + ["--prompt", "9:1:5,5"]) == 2 and "out of range" in capsys.readouterr().err
    assert main(base + ["--prompt", "0:1:500,5"]) == 2 and "outside" in capsys.readouterr().err
    for bad in (["--prompt", "0:1:5"], ["--prompt", "a:1:5,5"], ["--box", "0:1:1,2,3"], ["--prompt", "0:300:5,5"],
                ["--format", "gif"], ["--direction", "up"]):
        with pytest.raises(SystemExit):
            main(base + bad)


def test_official_builder_reads_official_checkpoints_and_overrides(tmp_path):
    import torch

    from samstream.model import SAM2Model, official_config
    from samstream.video.compat import SAM2VideoPredictor, build_sam2_video_predictor

    torch.manual_seed(0)
    sd = SAM2Model(official_config("sam2.1_hiera_tiny")).state_dict()
    ckpt = tmp_path / "sam2.1_hiera_tiny.pt"
    torch.save({"model": sd}, ckpt)  # Meta's checkpoint layout
    p = build_sam2_video_predictor("configs/sam2.1/sam2.1_hiera_t.yaml", str(ckpt), device="cpu",
                                   hydra_overrides_extra=["++model.non_overlap_masks=true"])
    assert isinstance(p, SAM2VideoPredictor) and p.non_overlap_masks and p.fill_hole_area == 8
    assert p.image_size == 1024 and p.device == torch.device("cpu") and not p.model.training
    assert torch.equal(p.model.state_dict()["no_obj_embed_spatial"], sd["no_obj_embed_spatial"])
    off = build_sam2_video_predictor("configs/sam2.1/sam2.1_hiera_t.yaml", None, device="cpu",
                                     apply_postprocessing=False)
    assert off.fill_hole_area == 0 and not off.model.cfg.binarize_mask_from_pts_for_mem_enc
    with pytest.raises(ValueError, match="unsupported override"):
        build_sam2_video_predictor("sam2.1_hiera_t", None, device="cpu", hydra_overrides_extra=["++model.foo=1"])
    with pytest.raises(ValueError, match=r"holds a sam2.1_hiera_tiny model"):
        build_sam2_video_predictor("configs/sam2/sam2_hiera_s.yaml", str(ckpt), device="cpu")
