"""`samstream eval vos`: a model run end to end on DAVIS-layout data, then scored (small random model:
the numbers mean nothing, the pipeline is what is tested)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from samstream import SAM2Model, save_model
from samstream.cli import main
from samstream.eval.dataset import read_labels
from samstream.eval.vos_run import prompt_object, run_vos
from tests.helpers import DATA, small_config

DAVIS = DATA / "davis2016"


def test_cli_end_to_end(tmp_path, capsys):
    torch.manual_seed(0)
    ckpt = save_model(SAM2Model(small_config()), tmp_path / "m.safetensors")
    out = tmp_path / "res"
    rc = main(["eval", "vos", "--data", str(DAVIS), "--model", str(ckpt), "--prompt", "click3",
               "--sequences", "blackswan", "surf", "--plot", "-o", str(out), "-q"])
    assert rc == 0
    for seq in ("blackswan", "surf"):
        n_frames = len(list((DAVIS / "JPEGImages" / "480p" / seq).glob("*.jpg")))
        pngs = sorted((out / "masks" / seq).glob("*.png"))
        assert len(pngs) == n_frames and pngs[0].name == "00000.png"
        assert np.asarray(Image.open(pngs[5])).shape == (480, 854)
    res = json.loads((out / "results.json").read_text())
    assert {"J&F", "J", "F"} <= set(res) and 0.0 <= res["J&F"] <= 1.0
    assert (out / "results.csv").read_text().count("\n") >= 3
    assert (out / "jf_per_sequence.png").stat().st_size > 0


def test_cli_session_options_reach_the_sessions(tmp_path, monkeypatch):
    import samstream.video as video

    seen = []
    real = video.VideoPredictor

    def spy(*args, **kw):
        pp = kw["postprocess"]
        seen.append((kw.get("mirror"), pp.min_region_area, pp.non_overlap_masks, pp.edge_refine_radius))
        return real(*args, **kw)

    monkeypatch.setattr(video, "VideoPredictor", spy)
    torch.manual_seed(0)
    ckpt = save_model(SAM2Model(small_config()), tmp_path / "m.safetensors")
    rc = main(["eval", "vos", "--data", str(DAVIS), "--model", str(ckpt), "--prompt", "click1", "--mirror",
               "--min-region-area", "30", "--non-overlap", "--edge-refine", "0.5", "--sequences", "car-shadow",
               "-o", str(tmp_path / "res"), "-q"])
    assert rc == 0 and seen == [(True, 30, True, 0.5)]
    assert 0.0 <= json.loads((tmp_path / "res" / "results.json").read_text())["J&F"] <= 1.0


def test_mask_prompt_reproduces_first_frame(tmp_path):
    """With the ground-truth mask as prompt, frame 0's output is that mask (up to the 256-px round trip)."""
    torch.manual_seed(0)
    out = run_vos(SAM2Model(small_config()).eval(), DAVIS, tmp_path, prompt="mask", sequences=["car-shadow"],
                  progress=False)
    gt = read_labels(DAVIS / "Annotations" / "480p" / "car-shadow" / "00000.png") == 1
    pred = np.asarray(Image.open(out / "car-shadow" / "00000.png")) == 1
    assert (gt & pred).sum() / (gt | pred).sum() > 0.9


def _late_object_set(root, seq, first_frame_of_2, with_object_1=True, n=6):
    """A DAVIS-layout sequence of 64x64 frames: object 1 (a square) on every frame, object 2 (another) from
    frame `first_frame_of_2` on."""
    from samstream.io.png import write_label_png

    (root / "JPEGImages" / "480p" / seq).mkdir(parents=True)
    rng = np.random.default_rng(0)
    for t in range(n):
        img = rng.integers(0, 60, (64, 64, 3), dtype=np.uint8)
        lab = np.zeros((64, 64), np.uint8)
        if with_object_1:
            img[8:24, 8 + t:24 + t] = 220
            lab[8:24, 8 + t:24 + t] = 1
        if t >= first_frame_of_2:
            img[36:56, 30:50] = (30, 200, 40)
            lab[36:56, 30:50] = 2
        Image.fromarray(img).save(root / "JPEGImages" / "480p" / seq / f"{t:05d}.jpg")
        write_label_png(root / "Annotations" / "480p" / seq / f"{t:05d}.png", lab)


def test_an_object_appearing_later_is_prompted_where_it_appears(tmp_path):
    """Object 2 first appears on frame 3: it is prompted there and reported from there on (before, nothing of it);
    a sequence whose first frame holds no object at all is tracked from its first object's frame."""
    data = tmp_path / "data"
    _late_object_set(data, "late", 3)
    _late_object_set(data, "empty0", 2, with_object_1=False)
    torch.manual_seed(0)
    out = run_vos(SAM2Model(small_config()).eval(), data, tmp_path / "out", prompt="mask", progress=False)
    late = [np.asarray(Image.open(out / "late" / f"{t:05d}.png")) for t in range(6)]
    assert (late[0] == 1).sum() > 0.8 * 256  # a random model: only prompted frames are meaningful
    assert not any((lab == 2).any() for lab in late[:3]) and (late[3] == 2).sum() > 0.8 * 400
    empty0 = [np.asarray(Image.open(out / "empty0" / f"{t:05d}.png")) for t in range(6)]
    assert not empty0[0].any() and not empty0[1].any() and (empty0[2] == 2).sum() > 0.8 * 400
    static = run_vos(SAM2Model(small_config()).eval(), data, tmp_path / "static", prompt="mask", progress=False,
                     static=True)
    assert not any(np.asarray(Image.open(static / "empty0" / f"{t:05d}.png")).any() for t in range(6))

class _FakeSession:
    """Records prompts; answers clicks with a fixed, partly wrong mask."""

    def __init__(self, answer):
        self.calls, self.answer = [], answer

    def add_points(self, frame, obj, points, labels):
        self.calls.append(("points", frame, obj, [list(p) for p in points], list(labels)))
        return type("R", (), {"mask": self.answer})()

    def add_box(self, frame, obj, box):
        self.calls.append(("box", frame, obj, [int(v) for v in box]))

    def add_mask(self, frame, obj, mask):
        self.calls.append(("mask", frame, obj, int(mask.sum())))


def test_prompt_protocols():
    gt = np.zeros((40, 60), bool)
    gt[10:30, 20:50] = True
    answer = np.zeros_like(gt)
    answer[10:30, 20:30] = True  # misses the right part: the next click goes there, positive
    s = _FakeSession(answer)
    prompt_object(s, 7, gt, "click3")
    assert [c[0] for c in s.calls] == ["points"] * 3
    assert [len(c[3]) for c in s.calls] == [1, 2, 3] and s.calls[-1][4] == [1, 1, 1]
    assert 30 <= s.calls[1][3][1][0] < 50  # second click in the missed region (x)
    s = _FakeSession(answer)
    prompt_object(s, 7, gt, "box")
    assert s.calls == [("box", 0, 7, [20, 10, 49, 29])]
    s = _FakeSession(answer)
    prompt_object(s, 7, gt, "mask")
    assert s.calls == [("mask", 0, 7, 600)]
    s = _FakeSession(gt)  # perfect after one click: no more clicks
    prompt_object(s, 7, gt, "click5")
    assert len(s.calls) == 1
    with pytest.raises(ValueError, match="prompt must be one of"):
        prompt_object(_FakeSession(gt), 7, gt, "click2")
    with pytest.raises(ValueError, match="object 7: its ground-truth mask on frame 0 is empty"):
        prompt_object(_FakeSession(gt), 7, np.zeros_like(gt), "click1")


def test_bad_arguments(tmp_path):
    m = SAM2Model(small_config())
    with pytest.raises(ValueError, match="prompt must be one of"):
        run_vos(m, DAVIS, tmp_path, prompt="click2")
    with pytest.raises(ValueError, match="sequences not in"):
        run_vos(m, DAVIS, tmp_path, sequences=["nope"])
    with pytest.raises(FileNotFoundError, match="JPEGImages"):
        run_vos(m, tmp_path, tmp_path)


def test_static_baseline_copies_the_first_frame_ground_truth(tmp_path):
    """--static with the mask prompt writes frame 0's ground truth on every frame: J is then exactly how much of
    the object stays where it began, and frame 0 scores 1."""
    out = tmp_path / "res"
    rc = main(["eval", "vos", "--data", str(DAVIS), "--sequences", "car-shadow", "--static", "-o", str(out), "-q"])
    assert rc == 0
    ann = DAVIS / "Annotations" / "480p" / "car-shadow"
    gt = [read_labels(p) > 0 for p in sorted(ann.glob("*.png"))]
    pngs = sorted((out / "masks" / "car-shadow").glob("*.png"))
    assert len(pngs) == len(gt)
    first = read_labels(pngs[0]) > 0
    assert (first == gt[0]).mean() > 0.995   # the model's mask of a mask prompt: the ground truth, nearly exactly
    assert all(np.array_equal(read_labels(p) > 0, first) for p in pngs)   # and the same mask everywhere after
    j = [(g & first).sum() / (g | first).sum() for g in gt]
    res = json.loads((out / "results.json").read_text())
    assert res["J"] == pytest.approx(float(np.mean(j)), abs=0.02)   # the scorer skips the first frame, we do not
    assert res["J"] < 0.5   # the car drives off: a static mask is a poor tracker
