"""Bad prompts are refused by name before anything changes: NaN / infinite coordinates, fractional or unknown
labels, frame indices outside the video, masks that are not binary or not the frame's size. The image API, the
video API, the drop-in (compat) predictors and the CLI all go through the same checks."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from samstream import save_model
from samstream.cli import main
from samstream.compat import SAM2ImagePredictor
from samstream.predictor import ImagePredictor
from samstream.video import VideoPredictor
from samstream.video.compat import SAM2VideoPredictor
from samstream.video.sources import FrameUnavailableError
from tests.helpers import save_indexed, small_model, synthetic_frames

NAN, INF = float("nan"), float("inf")
FINITE = "coordinates must be finite numbers"
LABELS = r"point labels must be 1 \(foreground\) or 0 \(background\)"


@pytest.fixture(scope="module")
def model():
    return small_model()


@pytest.fixture(scope="module")
def frames():
    return synthetic_frames(4)  # 48x64


@pytest.fixture(scope="module")
def image_predictor(model, frames):
    p = ImagePredictor(model)
    p.set_image(frames[0])
    return p


# ------------------------------------------------------------------------------------------ image API
BAD_IMAGE_PROMPTS = [
    (dict(points=[[NAN, 10]]), rf"point 0 is \(nan, 10\): {FINITE}"),
    (dict(points=[[10, 10], [20, INF]], labels=[1, 0]), rf"point 1 is \(20, inf\): {FINITE}"),
    (dict(points=[[-INF, 10]]), FINITE),
    (dict(points=[[[1, 1], [2, 2]], [[3, 3], [NAN, NAN]]]), rf"point 1 of prompt 1 is \(nan, nan\): {FINITE}"),
    (dict(box=[0, 0, NAN, 10]), rf"box is \(0, 0, nan, 10\): {FINITE}"),
    (dict(box=[[0, 0, 10, 10], [0, 0, INF, 10]]), rf"box 1 is \(0, 0, inf, 10\): {FINITE}"),
    (dict(points=[[10, 10]], box=[NAN, 0, 10, 10]), FINITE),
    (dict(points=[[10, 10]], labels=[0.5]), rf"{LABELS}, got 0.5 for point 0"),
    (dict(points=[[10, 10], [20, 20]], labels=[1, 1.2]), rf"{LABELS}, got 1.2 for point 1"),
    (dict(points=[[10, 10]], labels=[NAN]), rf"{LABELS}, got nan"),
    (dict(points=[[10, 10]], labels=[2]), rf"{LABELS}, got 2 for point 0"),  # box corners are ours to add
    (dict(points=[[10, 10]], labels=[-1]), rf"{LABELS}, got -1"),  # so is padding
    (dict(points=[[10, 10]], labels=["fg"]), "point labels must be numbers"),
    (dict(points=[[10, 10], [20]]), r"points must be numbers of shape \(N, 2\)"),
    (dict(mask_input=np.full((1, 16, 16), np.nan, np.float32)), "mask_input holds NaN or infinite values"),
    (dict(points=[[10, 10]], mask_input=np.full((1, 16, 16), -np.inf)), "mask_input holds NaN or infinite"),
]


@pytest.mark.parametrize("kwargs, message", BAD_IMAGE_PROMPTS)
def test_image_predictor_refuses(image_predictor, kwargs, message):
    emb = image_predictor.get_image_embedding().clone()
    with pytest.raises(ValueError, match=message):
        image_predictor.predict(**kwargs)
    assert torch.equal(image_predictor.get_image_embedding(), emb), "a bad prompt must not lose the image"


def test_image_checks_that_existed_still_hold(image_predictor):
    with pytest.raises(ValueError, match="x1 < x0"):
        image_predictor.predict(box=[30, 0, 10, 10])
    with pytest.raises(ValueError, match=r"point \(70, 10\) lies outside the 64x48 image"):
        image_predictor.predict([[70, 10]])


def test_whole_float_labels_are_the_integers(image_predictor):
    pts = [[20, 20], [40, 30]]
    ints = image_predictor.predict(pts, [1, 0], return_logits=True)
    floats = image_predictor.predict(np.asarray(pts, np.float32), np.array([1.0, 0.0]), return_logits=True)
    bools = image_predictor.predict(pts, [True, False], return_logits=True)
    for a, b, c in zip(ints, floats, bools):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)
    assert np.isfinite(ints[1]).all()


def test_predict_batch_refuses_a_bad_prompt_for_any_image(model, frames):
    p = ImagePredictor(model)
    p.set_image_batch(frames[:2])
    with pytest.raises(ValueError, match=rf"point 0 is \(nan, 5\): {FINITE}"):
        p.predict_batch([[[5, 5]], [[NAN, 5]]], [[1], [1]])
    with pytest.raises(ValueError, match=rf"{LABELS}, got 0.5"):
        p.predict_batch([[[5, 5]], [[5, 5]]], [[1], [0.5]])
    masks, scores, _ = p.predict_batch([[[5, 5]], [[5, 5]]], [[1], [1.0]])
    assert len(masks) == 2 and all(np.isfinite(s).all() for s in scores)


def test_compat_image_predictor_refuses(model, frames):
    p = SAM2ImagePredictor(model)
    p.set_image(frames[0])
    with pytest.raises(ValueError, match=FINITE):
        p.predict(point_coords=np.array([[NAN, 1.0]]), point_labels=np.array([1]))
    with pytest.raises(ValueError, match=LABELS):
        p.predict(point_coords=np.array([[1.0, 1.0]]), point_labels=np.array([0.5]))
    with pytest.raises(ValueError, match=FINITE):
        p.predict(box=torch.tensor([0.0, 0.0, INF, 4.0]))


# ------------------------------------------------------------------------------------------ video API
@pytest.fixture
def video(model, frames):
    with VideoPredictor(model, frames, progress=False) as vp:
        yield vp


@pytest.mark.parametrize("frame", [-1, -4, 4, 100])
def test_video_frame_index_outside_the_video(video, frame):
    stats = video.state.stats()
    # refused, never counted from the end; the error is a ValueError (one line in the CLI) and an IndexError
    with pytest.raises(FrameUnavailableError, match=rf"frame index {frame} out of range: .* \(0\.\.3\)"):
        video.add_points(frame, 1, [[10, 10]])
    with pytest.raises(ValueError, match=rf"frame index {frame} out of range"):
        video.add_box(frame, 1, [0, 0, 10, 10])
    with pytest.raises(IndexError, match=rf"frame index {frame} out of range"):
        video.add_mask(frame, 1, np.ones((48, 64), bool))
    assert video.obj_ids == [] and video.state.stats() == stats


BAD_VIDEO_PROMPTS = [
    (lambda vp: vp.add_points(1, 1, [[NAN, 10]]), rf"object 1 on frame 1: point 0 is \(nan, 10\): {FINITE}"),
    (lambda vp: vp.add_points(1, 1, [[10, 10]], box=[0, 0, 20, INF]), rf"box is \(0, 0, 20, inf\): {FINITE}"),
    (lambda vp: vp.add_box(1, 1, [NAN, 0, 20, 20]), FINITE),
    (lambda vp: vp.add_points(1, 1, [[10, 10]], [0.5]), rf"object 1 on frame 1: {LABELS}, got 0.5"),
    (lambda vp: vp.add_points(1, 1, [[10, 10], [20, 20]], [1, 1.2]), rf"{LABELS}, got 1.2 for point 1"),
    (lambda vp: vp.add_box(1, 1, [0, 0, 20, 20], [[5, 5]], [0.5]), LABELS),
    (lambda vp: vp.add_mask(1, 1, np.full((48, 64), np.nan)), "object 1 on frame 1: mask holds NaN or infinite"),
    (lambda vp: vp.add_mask(1, 1, np.full((48, 64), 0.3, np.float32)),
     r"mask holds values other than 0 and 1 \(from 0.3 to 0.3\).*threshold"),
    (lambda vp: vp.add_mask(1, 1, np.zeros((48, 60), bool)), "mask is 60x48, but the video is 64x48"),
    (lambda vp: vp.add_mask(1, 1, np.zeros((1, 48, 64), bool)), r"mask must be 2-D \(H, W\)"),
    (lambda vp: vp.add_mask(1, 1, np.full((48, 64), "x")), "mask must be a binary"),
]


@pytest.mark.parametrize("call, message", BAD_VIDEO_PROMPTS)
def test_video_predictor_refuses(video, call, message):
    video.add_points(0, 2, [[30, 20]])
    stats = video.state.stats()  # (the caches may have read the frame)
    with pytest.raises(ValueError, match=message):
        call(video)
    assert video.obj_ids == [2] and video.state.stats() == stats, "a bad prompt must change nothing"
    assert 1 not in video.state.objects


def test_video_checks_that_existed_still_hold(video):
    with pytest.raises(ValueError, match="x1 < x0"):
        video.add_box(0, 1, [30, 0, 10, 10])
    with pytest.raises(ValueError, match="outside the 64x48 image"):
        video.add_points(0, 1, [[10, 60]])
    assert video.obj_ids == []


def test_video_whole_float_labels_and_binary_float_masks(model, frames):
    def track(prompt):
        with VideoPredictor(model, frames, progress=False) as vp:
            prompt(vp)
            return [r.masks for r in vp.propagate()]

    ints = track(lambda vp: vp.add_points(0, 1, [[20, 20], [40, 30]], [1, 0]))
    floats = track(lambda vp: vp.add_points(0, 1, np.array([[20.0, 20.0], [40.0, 30.0]]), np.array([1.0, 0.0])))
    assert all(np.array_equal(a, b) for a, b in zip(ints, floats))
    m = np.zeros((48, 64), bool)
    m[10:30, 20:44] = True
    as_bool = track(lambda vp: vp.add_mask(0, 1, m))
    as_float = track(lambda vp: vp.add_mask(0, 1, m.astype(np.float32)))
    as_uint8 = track(lambda vp: vp.add_mask(0, 1, m.astype(np.uint8) * 255))
    assert all(np.array_equal(a, b) and np.array_equal(a, c) for a, b, c in zip(as_bool, as_float, as_uint8))


def test_compat_video_predictor_refuses(model, frames):
    p = SAM2VideoPredictor(model)
    state = p.init_state(frames)
    with pytest.raises(ValueError, match=FINITE):
        p.add_new_points_or_box(state, 0, 1, points=np.array([[NAN, 1.0]], np.float32), labels=np.array([1]))
    with pytest.raises(ValueError, match=LABELS):
        p.add_new_points_or_box(state, 0, 1, points=[[1.0, 1.0]], labels=torch.tensor([0.5]))
    with pytest.raises(ValueError, match=FINITE):
        p.add_new_points_or_box(state, 0, 1, box=[0, 0, NAN, 4])
    with pytest.raises(ValueError, match="frame index -1 out of range"):
        p.add_new_points_or_box(state, -1, 1, points=[[1.0, 1.0]], labels=[1])
    with pytest.raises(ValueError, match="mask holds NaN"):
        p.add_new_mask(state, 0, 1, torch.full((48, 64), float("nan")))
    assert p.add_new_points_or_box(state, 0, 1, points=[[10.0, 10.0]], labels=[1.0])[1] == [1]


# ------------------------------------------------------------------------------------------ CLI
@pytest.fixture(scope="module")
def ckpt(model, tmp_path_factory):
    return save_model(model, tmp_path_factory.mktemp("model") / "small.safetensors")


@pytest.fixture(scope="module")
def folder(frames, tmp_path_factory):
    d = tmp_path_factory.mktemp("frames")
    for i, f in enumerate(frames):
        Image.fromarray(f).save(d / f"{i:05d}.png")
    save_indexed(d.parent / "empty.png", np.zeros((48, 64), np.uint8))
    save_indexed(d.parent / "obj.png", np.pad(np.ones((20, 20), np.uint8), ((10, 18), (10, 34))))
    return d


def _one_line_error(capsys, message):
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert message in lines[0], err


@pytest.mark.parametrize("args, message", [
    (["--prompt", "-1:1:10,10"], "frame index -1 out of range"),
    (["--prompt=-1:1:10,10"], "frame index -1 out of range"),
    (["--prompt", "4:1:10,10"], "frame index 4 out of range"),
    (["--box", "-2:1:0,0,10,10"], "frame index -2 out of range"),
    (["--prompt", "0:1:nan,10"], "object 1 on frame 0: point 0 is (nan, 10): coordinates must be finite"),
    (["--prompt", "0:1:10,10", "--prompt", "0:1:20,inf"], "point 1 is (20, inf)"),
    (["--box", "1:2:0,0,inf,10"], "object 2 on frame 1: box is (0, 0, inf, 10)"),
    (["--prompt", "0:1:10,10,0.5"], "point labels must be 1 (foreground) or 0 (background), got 0.5"),
    (["--prompt", "0:1:10,10,2"], "got 2 for point 0"),
    (["--mask", "0:1:{empty}"], "the mask is empty"),
    (["--mask", "-1:1:{obj}"], "frame index -1 out of range"),
])
def test_track_cli_refuses_bad_prompts_in_one_line(tmp_path, folder, ckpt, capsys, args, message):
    out = tmp_path / "out"
    args = [a.format(empty=folder.parent / "empty.png", obj=folder.parent / "obj.png") for a in args]
    rc = main(["track", str(folder), *args, "-o", str(out), "--model", str(ckpt), "--quiet", "--device", "cpu"])
    assert rc != 0
    _one_line_error(capsys, message)
    assert not out.exists() or not any(out.iterdir())


def test_track_cli_takes_whole_float_labels_and_mask_files(tmp_path, folder, ckpt):
    out = tmp_path / "out"
    assert main(["track", str(folder), "--prompt", "0:1:20,20,1.0", "--prompt", "0:1:50,40,0.0",
                 "--mask", f"0:2:{folder.parent / 'obj.png'}", "-o", str(out), "--model", str(ckpt), "--quiet",
                 "--device", "cpu"]) == 0
    assert sorted(p.name for p in out.iterdir()) == [f"{i:05d}.png" for i in range(4)]


@pytest.mark.parametrize("args, message", [
    (["--point", "nan,10"], "point 0 is (nan, 10): coordinates must be finite"),
    (["--point", "10,10", "--point", "20,-inf,0"], "point 1 is (20, -inf)"),
    (["--box", "0,0,10,nan"], "box is (0, 0, 10, nan)"),
    (["--point", "10,10,0.5"], "point labels must be 1 (foreground) or 0 (background), got 0.5"),
    (["--point", "-5,10"], "point (-5, 10) lies outside the 64x48 image"),
])
def test_segment_cli_refuses_bad_prompts_in_one_line(tmp_path, frames, ckpt, capsys, args, message):
    img = tmp_path / "img.png"
    Image.fromarray(frames[0]).save(img)
    out = tmp_path / "out"
    assert main(["segment", str(img), *args, "-o", str(out), "--model", str(ckpt)]) != 0
    _one_line_error(capsys, message)
    assert not out.exists() or not any(out.iterdir())
