"""`samstream track-all`: the new-object rule and overlap resolution on hand-made masks, the key-frame loop on
a small random model with a scripted generator, and the command end to end with the embedded default model."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import samstream.amg.video as tav
from samstream.amg.video import (
    TrackAll,
    ranked_masks,
    resolve_overlaps,
    select_new_objects,
    track_all,
)
from samstream.cli import main
from samstream.io import decode_rle, read_label_png
from samstream.load import DEFAULT_MODEL_PATH
from tests.helpers import small_model

H, W = 40, 60


def box(y0, y1, x0, x1, hw=(H, W)) -> np.ndarray:
    m = np.zeros(hw, dtype=bool)
    m[y0:y1, x0:x1] = True
    return m


def iou(m1: np.ndarray, m2: np.ndarray) -> float:
    return float((m1 & m2).sum() / max(1, (m1 | m2).sum()))


# ------------------------------------------------------------------------------------------ the new-object rule
def test_new_object_rule():
    tracked = box(0, 10, 0, 10)  # 100 px
    inside = box(2, 8, 2, 8)  # fully covered: the same object again
    apart = box(20, 30, 20, 30)  # no overlap: new, kept whole
    slight = box(0, 10, 8, 18)  # 20 % covered (20 of 100 px): new, without the covered columns
    half = box(5, 15, 0, 10)  # 50 % covered: not new
    tiny = box(35, 37, 50, 52)  # 4 px apart from everything: below min_new_area
    dup = box(21, 29, 21, 29)  # inside `apart`, which was started just before it
    got = select_new_objects([inside, apart, slight, half, tiny, dup], tracked, new_object_overlap=0.3,
                             min_new_area=10)
    assert [i for i, _ in got] == [1, 2]
    np.testing.assert_array_equal(got[0][1], apart)
    np.testing.assert_array_equal(got[1][1], box(0, 10, 10, 18))  # slight minus the tracked pixels
    # the new masks never overlap the tracked one nor each other
    assert not (got[0][1] & got[1][1]).any() and not ((got[0][1] | got[1][1]) & tracked).any()


def test_new_object_rule_thresholds():
    tracked = box(0, 10, 0, 10)
    slight = box(0, 10, 8, 18)  # 20 % covered, 80 px uncovered
    assert len(select_new_objects([slight], tracked, new_object_overlap=0.2, min_new_area=10)) == 1  # at the limit
    assert select_new_objects([slight], tracked, new_object_overlap=0.19, min_new_area=10) == []
    assert select_new_objects([slight], tracked, new_object_overlap=0.3, min_new_area=81) == []
    assert len(select_new_objects([slight], tracked, new_object_overlap=0.3, min_new_area=80)) == 1
    # nothing tracked (first key frame): only duplicates among the candidates are removed, in the given order
    a, b = box(0, 10, 0, 10), box(0, 10, 0, 12)
    got = select_new_objects([b, a], None, new_object_overlap=0.3, min_new_area=1)
    assert [i for i, _ in got] == [0]
    assert [i for i, _ in select_new_objects([a, b], None, new_object_overlap=0.3, min_new_area=1)] == [0]
    assert select_new_objects([np.zeros((H, W), bool)], None) == []
    with pytest.raises(ValueError, match="new_object_overlap"):
        select_new_objects([a], None, new_object_overlap=1.5)
    with pytest.raises(ValueError, match="min_new_area"):
        select_new_objects([a], None, min_new_area=0)
    with pytest.raises(ValueError, match="candidate 0 is"):
        select_new_objects([a], np.zeros((3, 3), bool))


def test_ranked_masks_best_first():
    masks = [box(0, 1, i, i + 1) for i in range(4)]

    class Found:
        ious = torch.tensor([0.7, 0.9, 0.8, 0.9])

        def __len__(self):
            return 4

        def mask(self, i):
            return torch.from_numpy(masks[i])

    got = list(ranked_masks(Found()))
    assert [int(np.argmax(m[0])) for m in got] == [1, 3, 2, 0]


# ------------------------------------------------------------------------------------------ overlap resolution
def test_resolve_overlaps_highest_logit_wins():
    logits = np.full((3, H, W), -5.0, dtype=np.float32)
    logits[0][box(0, 20, 0, 30)] = 2.0
    logits[1][box(10, 30, 20, 50)] = 3.0  # overlaps object 0 on rows 10..20, columns 20..30, and wins there
    logits[2][box(15, 25, 25, 35)] = 1.0  # inside the 0/1 overlap partly; loses everywhere it overlaps
    logits[2][box(35, 40, 0, 10)] = 4.0  # and alone here
    out = resolve_overlaps(logits)
    masks = out > 0
    assert masks.sum(axis=0).max() == 1  # no pixel in two masks
    assert masks[1][box(10, 20, 20, 30)].all() and not masks[0][box(10, 20, 20, 30)].any()
    assert masks[0][box(0, 10, 0, 30)].all() and masks[0][box(10, 20, 0, 20)].all()  # where 0 is alone
    assert not masks[2][box(15, 25, 25, 35)].any() and masks[2][box(35, 40, 0, 10)].all()
    # winners keep their logits; losers go to <= -10
    np.testing.assert_array_equal(out[1][logits[1] > 0], logits[1][logits[1] > 0])
    assert (out[0][box(10, 20, 20, 30)] <= -10).all()
    one = logits[:1]
    assert resolve_overlaps(one) is one


# ------------------------------------------------------------------------------------------ the key-frame loop
def moving_frames(n: int, h: int = 48, w: int = 64) -> np.ndarray:
    """(n, h, w, 3) uint8: noise background with a bright square moving right."""
    rng = np.random.default_rng(0)
    bg = rng.integers(0, 120, (h, w, 3), dtype=np.uint8)
    frames = np.repeat(bg[None], n, axis=0)
    for i in range(n):
        frames[i, 12:28, 8 + i: 24 + i] = (240, 200, 40)
    return frames


class ScriptedGenerator:
    """Stands in for MaskGenerator: the k-th call (the k-th key frame) returns per_call[k], best first; records the
    features it was handed."""

    def __init__(self, per_call: list[list[np.ndarray]]):
        self.per_call = per_call
        self.features = []

    def generate_masks(self, frame, features=None):
        k = len(self.features)
        self.features.append(features)
        masks = self.per_call[k] if k < len(self.per_call) else []

        class Found:
            ious = torch.linspace(1, 0, len(masks))

            def __len__(self):
                return len(masks)

            def mask(self, i):
                return torch.from_numpy(masks[i])

        return Found()


def test_key_frames_start_new_objects():
    hw = (48, 64)
    frames = moving_frames(10, *hw)
    a, a_dup, b = box(12, 28, 8, 24, hw), box(14, 26, 10, 22, hw), box(32, 44, 40, 56, hw)
    late = box(0, 8, 0, 8, hw)
    gen = ScriptedGenerator([[a, a_dup, b], [late], []])
    # a negative object-score bias: tracked objects are "not visible", so nothing covers the late mask
    ta = TrackAll(small_model(obj_bias=-2.0), frames, key_every=4, generator=gen, min_new_area=10, progress=False)
    got = list(ta.run())
    assert [r.frame_idx for r in got] == list(range(10))
    assert [r.frame_idx for r in got if r.key_frame] == [0, 4, 8]
    assert {r.frame_idx: r.new_ids for r in got if r.new_ids} == {0: [1, 2], 4: [3]}
    assert got[0].obj_ids == [1, 2] and got[3].obj_ids == [1, 2] and got[4].obj_ids == [1, 2, 3]
    assert got[9].obj_ids == [1, 2, 3]
    # frame 0 and the late key frame show the prompted masks (a mask prompt is taken as the mask, up to the
    # corners rounded by the round trip through the model's resolution)
    assert iou(got[0].label_map() == 1, a) > 0.9 and iou(got[0].label_map() == 2, b) > 0.9
    assert iou(got[4].label_map() == 3, late) > 0.8
    assert all(f is not None and f.embed.shape[0] == 1 for f in gen.features)  # the frame's features were passed
    ta.close()


def test_key_frames_reuse_the_tracker_features():
    """With a real MaskGenerator, each frame goes through the image encoder once, key frames included."""
    model = small_model(obj_bias=-2.0)
    calls = []
    encode = model.encode_image
    model.encode_image = lambda x: calls.append(x.shape) or encode(x)
    got = list(track_all(model, moving_frames(7), key_every=3, progress=False, points_per_side=2,
                         pred_iou_thresh=0.0, stability_score_thresh=0.0, min_new_area=1))
    assert [r.frame_idx for r in got if r.key_frame] == [0, 3, 6] and len(got) == 7
    assert len(calls) == 7


def test_key_frame_covered_is_the_tracked_union(monkeypatch):
    frames = moving_frames(7)
    seen = []
    real = tav.select_new_objects

    def spy(candidates, covered, **kw):
        seen.append(None if covered is None else covered.copy())
        return real(candidates, covered, **kw)

    monkeypatch.setattr(tav, "select_new_objects", spy)
    a = box(12, 28, 8, 24, (48, 64))
    gen = ScriptedGenerator([[a], [a], [a]])
    got = list(track_all(small_model(obj_bias=2.0), frames, key_every=3, generator=gen, progress=False))
    assert seen[0] is None and len(seen) == 3
    # key frame 6 started nothing: what the rule saw as covered is exactly the union of the reported masks
    assert got[6].new_ids == []
    np.testing.assert_array_equal(seen[2], got[6].masks.any(axis=0))
    # (this random model's object 1 drifts away from the candidate) frame 3: 14 % of the candidate is covered ->
    # new object 2; frame 6: 36 % covered -> not new
    assert (a & seen[1]).sum() / a.sum() <= 0.3 and got[3].new_ids == [2]
    assert (a & seen[2]).sum() / a.sum() > 0.3
    assert iou(got[3].masks[1], a & ~seen[1]) > 0.8  # object 2 got the uncovered part only
    # object 1 kept its pixels (but for a few on the border, where the resized mask prompt's logit is higher)
    assert (seen[1] & got[3].masks[0]).sum() >= 0.97 * seen[1].sum()
    assert all((r.masks.sum(axis=0) <= 1).all() for r in got)


def test_max_frames_max_objects_and_errors():
    frames = moving_frames(8)
    hw = (48, 64)
    gen = ScriptedGenerator([[box(0, 8, 0, 8, hw), box(30, 40, 30, 40, hw)], [box(40, 48, 50, 60, hw)]])
    ta = TrackAll(small_model(obj_bias=-2.0), frames, key_every=4, generator=gen, min_new_area=10, max_objects=1,
                  progress=False)
    got = list(ta.run(max_frames=5))
    assert [r.frame_idx for r in got] == list(range(6))
    assert got[0].new_ids == [1] and ta.dropped == 2 and got[5].obj_ids == [1]
    with pytest.raises(ValueError, match="key_every"):
        TrackAll(small_model(), frames, key_every=0)
    with pytest.raises(ValueError, match="new_object_overlap"):
        TrackAll(small_model(), frames, new_object_overlap=2.0)
    # nothing found on frame 0: empty frames until a key frame finds something
    gen = ScriptedGenerator([[], [box(0, 8, 0, 8, hw)]])
    got = list(track_all(small_model(obj_bias=-2.0), frames, key_every=3, generator=gen, min_new_area=10,
                         progress=False))
    assert [r.obj_ids for r in got[:3]] == [[], [], []] and got[3].new_ids == [1] and got[7].obj_ids == [1]
    assert not got[0].label_map().any()


def test_drop_after_ends_objects_gone_for_n_frames():
    hw = (48, 64)
    frames = moving_frames(10, *hw)
    a, b = box(12, 28, 8, 24, hw), box(32, 44, 40, 56, hw)

    def run(obj_bias, drop_after, per_call):
        ta = TrackAll(small_model(obj_bias=obj_bias), frames, key_every=4, generator=ScriptedGenerator(per_call),
                      min_new_area=10, drop_after=drop_after, progress=False)
        got = list(ta.run())
        ta.close()
        return got

    # not visible after their prompt frame (negative object score): gone on frames 1-3, ended on key frame 4
    got = run(-2.0, 3, [[a, b], [], []])
    assert got[0].obj_ids == [1, 2] and got[0].masks.any(axis=(1, 2)).all()
    assert not any(r.masks.any() for r in got[1:4])
    assert {r.frame_idx: r.ended_ids for r in got if r.ended_ids} == {4: [1, 2]}
    assert got[4].obj_ids == [1, 2] and all(r.obj_ids == [] for r in got[5:])
    # a new object on a later key frame gets a fresh id and its own count
    late = box(0, 8, 0, 8, hw)
    got = run(-2.0, 3, [[a], [late], []])
    assert got[4].new_ids == [2] and got[4].ended_ids == [1] and got[5].obj_ids == [2] and got[8].ended_ids == [2]
    # not yet gone long enough at key frame 4 (5 frames asked): kept; ended at key frame 8
    got = run(-2.0, 5, [[a, b], [], []])
    assert got[4].ended_ids == [] and got[7].obj_ids == [1, 2] and got[8].ended_ids == [1, 2]
    # visible objects are never ended; without drop_after nothing ends
    assert not any(r.ended_ids for r in run(2.0, 1, [[a, b], [], []]))
    assert not any(r.ended_ids for r in run(-2.0, None, [[a, b], [], []]))
    with pytest.raises(ValueError, match="drop_after"):
        TrackAll(small_model(), frames, drop_after=0)


# ------------------------------------------------------------------------------------------ the command
DEMO = DEFAULT_MODEL_PATH.parents[1] / "assets" / "demo.mp4"
KEY_EVERY, LAST = 5, 15  # key frames 0, 5, 10, 15; the demo's object 3 enters from the right at frame 5


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """`samstream track-all` on the shipped demo clip with the embedded default model (its default thresholds),
    frames 0..15 -> (output folder, label maps (T, H, W), ground-truth labels (T, H, W), demo facts)."""
    if not DEFAULT_MODEL_PATH.is_file() or not DEMO.is_file():
        pytest.skip("the embedded default model or the demo clip is not there")
    from samstream.train.synthetic import SynthConfig, generate_video

    facts = json.loads(DEMO.with_suffix(".json").read_text())
    out = tmp_path_factory.mktemp("track_all") / "out"
    assert main(["track-all", str(DEMO), "-o", str(out), "--format", "png,json,mp4", "--key-every", str(KEY_EVERY),
                 "--max-frames", str(LAST), "--quiet"]) == 0
    pngs = sorted(out.glob("[0-9]*.png"))
    assert [p.name for p in pngs] == [f"{t:05d}.png" for t in range(LAST + 1)]
    labels = np.stack([read_label_png(p)[0] for p in pngs])  # (T, H, W) uint8
    gt = generate_video(facts["seed"], SynthConfig(**facts["config"])).labels[: LAST + 1]
    return out, labels, gt, facts


def first_frames(labels: np.ndarray) -> dict[int, int]:
    """object id -> first frame where it has a pixel."""
    out: dict[int, int] = {}
    for t, lab in enumerate(labels):
        for i in np.unique(lab):
            out.setdefault(int(i), t)
    out.pop(0, None)
    return out


def test_track_all_demo_outputs(demo_run):
    out, labels, gt, _ = demo_run
    assert labels.shape == (LAST + 1, 240, 320)
    first = first_frames(labels)
    # objects on frame 0, at least one of them lying on a ground-truth object
    on0 = [i for i, t in first.items() if t == 0]
    assert on0, "no object found on frame 0"
    assert any(((labels[0] == i) & (gt[0] > 0)).sum() >= 0.8 * (labels[0] == i).sum() for i in on0)
    # objects start on key frames only, with increasing ids (whether one starts after frame 0 depends on the
    # weights: test_track_all_demo_entering_object; the rule itself: test_key_frames_start_new_objects)
    assert all(t % KEY_EVERY == 0 for t in first.values()), first
    assert sorted(first) == sorted(first, key=lambda i: (first[i], i))
    # JSON: one row per frame; each object's masks disjoint and equal to the label maps
    data = json.loads((out / "masks.json").read_text())
    assert data["masklet_frame_idx"] == list(range(LAST + 1)) and data["video_frame_count"] == 60
    assert set(data["masklet_id"]) >= set(first)
    for t, row in enumerate(data["masklet"]):
        masks = np.stack([decode_rle(r) for r in row]).astype(bool)  # (O, H, W)
        assert masks.sum(axis=0).max() <= 1, f"overlapping masks on frame {t}"
        for oid, m in zip(data["masklet_id"], masks):
            np.testing.assert_array_equal(m, labels[t] == oid)
    assert (out / "overlay.mp4").stat().st_size > 1000


@pytest.mark.xfail(strict=True, reason="the shipped release settings start no object on the entering object 3 "
                   "(one starts on key frame 10 elsewhere)")
def test_track_all_demo_entering_object(demo_run):
    """Object 3 enters from the right at frame 5: a key frame after that starts an object lying on it.
    Whether one does depends on the weights, the calibrated thresholds and the tracked objects' masks (a candidate
    mostly covered by them starts nothing). With overlapping memories an earlier release of the same weights
    started one on key frame 15, 88 % of it on object 3 (J 0.73); with the shipped non-overlapping memories none
    lies on object 3, nor with SAM 2's 16 object pointers."""
    _, labels, gt, facts = demo_run
    assert facts["first_visible"]["3"] == 5
    first = first_frames(labels)
    hits = {i: t for i, t in first.items() if t > 0
            and ((labels[t] == i) & (gt[t] == 3)).sum() >= 0.5 * (labels[t] == i).sum()}
    assert hits, (f"no new object on the entering object 3 at key frames {list(range(KEY_EVERY, LAST + 1, KEY_EVERY))}"
                  f" (objects started: {first})")


def test_track_all_cli_errors(tmp_path, capsys):
    out = str(tmp_path / "out")
    assert main(["track-all", str(tmp_path / "missing.mp4"), "-o", out]) == 2
    assert "not found" in capsys.readouterr().err
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video at all" * 10)
    torch.manual_seed(0)
    from samstream import save_model

    ckpt = save_model(small_model(), tmp_path / "small.safetensors")
    assert main(["track-all", str(bad), "-o", out, "--model", str(ckpt)]) == 2
    assert "cannot be opened" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    with pytest.raises(SystemExit):
        main(["track-all", str(bad), "-o", out, "--key-every", "0"])
    assert "expected an integer >= 1" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["track-all", str(bad), "-o", out, "--format", "gif"])
    assert "unknown format" in capsys.readouterr().err
    assert main(["track-all", str(bad), "-o", out, "--max-objects", "300"]) == 2
    assert "max-objects" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["track-all", str(bad), "-o", out, "--drop-after", "0"])
    assert "expected an integer >= 1" in capsys.readouterr().err


def test_track_all_cli_drop_after(tmp_path, monkeypatch):
    from PIL import Image

    from samstream import save_model

    frames = tmp_path / "frames"
    frames.mkdir()
    for t, f in enumerate(moving_frames(4)):
        Image.fromarray(f).save(frames / f"{t:05d}.png")
    torch.manual_seed(0)
    ckpt = save_model(small_model(obj_bias=-2.0), tmp_path / "small.safetensors")
    seen = {}

    class Spy(tav.TrackAll):
        def __init__(self, *a, **kw):
            seen.update(kw)
            super().__init__(*a, **kw)

    monkeypatch.setattr(tav, "TrackAll", Spy)
    args = ["track-all", str(frames), "-o", str(tmp_path / "out"), "--model", str(ckpt), "--points-per-side", "2",
            "--quiet"]
    assert main(args + ["--drop-after", "2"]) == 0 and seen["drop_after"] == 2
    assert len(list((tmp_path / "out").glob("*.png"))) == 4
    assert main(args + ["--overwrite"]) == 0 and seen["drop_after"] is None  # a rerun into the same folder


def test_cli_mirror_option_reaches_the_tracker(tmp_path, monkeypatch):
    import samstream.amg.video as amg_video

    seen = []

    class Stop(Exception):
        pass

    def spy(*a, predictor_options=None, **k):
        seen.append(predictor_options)
        raise Stop

    monkeypatch.setattr(amg_video, "TrackAll", spy)
    for flag, want in (([], None), (["--mirror"], {"mirror": True})):
        with pytest.raises(Stop):
            main(["track-all", str(DEMO), "-o", str(tmp_path / "o"), "--device", "cpu", "--quiet", *flag])
        assert seen.pop() == want
