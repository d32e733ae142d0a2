"""Training data: every dataset kind loads into clips; sampling and augmentation behave."""
from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from samstream.train.augment import AugmentConfig, augment_clip, resize_clip
from samstream.train.data import (
    ClipDataset,
    ClipSampler,
    SynthVideoRange,
    coco_videos,
    davis_videos,
    open_videos,
    sav_videos,
    synthetic_videos,
)
from samstream.train.synthetic import SynthConfig, write_davis_folder

DAVIS = Path(__file__).resolve().parents[2] / "shared" / "data" / "davis2016"
NOAUG = None


def _check(clip, t, size=64):
    assert clip.images.shape == (t, 3, size, size) and clip.images.dtype == torch.float32
    assert clip.masks.shape[:2] == (t, len(clip.object_ids)) and clip.masks.dtype == torch.bool
    assert clip.masks[0].flatten(1).any(1).all()  # every chosen object is visible on the first frame
    assert abs(clip.images.mean().item()) < 3  # ImageNet-normalised


def test_davis_folder():
    vids = davis_videos(DAVIS)
    assert {v.name for v in vids} >= {"blackswan", "surf"}
    ds = ClipDataset(vids, 64, num_frames=4, max_objects=3, augment=AugmentConfig())
    rng = np.random.default_rng(0)
    clip = ds.sample(rng)
    _check(clip, 4)
    assert clip.frame_indices == list(range(clip.frame_indices[0], clip.frame_indices[0] + 4))
    assert open_videos(str(DAVIS))[0].name == vids[0].name


def test_davis_multi_object_palette(tmp_path):
    from samstream.train.synthetic import write_davis_folder

    write_davis_folder(tmp_path, [0], SynthConfig(height=48, width=64, num_frames=6, max_objects=3, min_objects=3))
    vids = open_videos(str(tmp_path))
    objs = vids[0].objects(0)
    assert len(objs) >= 2 and all(m.dtype == bool for m in objs.values())
    clip = ClipDataset(vids, 64, num_frames=3, max_objects=2, augment=NOAUG).sample(np.random.default_rng(1))
    _check(clip, 3)
    assert len(clip.object_ids) == 2


def _coco(tmp_path):
    from samstream.io import encode_rle

    Image.new("RGB", (40, 30), (200, 10, 10)).save(tmp_path / "a.jpg")
    m = np.zeros((30, 40), bool)
    m[5:15, 5:25] = True
    rle = encode_rle(m)
    rle = {"size": rle["size"], "counts": rle["counts"].decode() if isinstance(rle["counts"], bytes) else rle["counts"]}
    data = {"images": [{"id": 7, "file_name": "a.jpg", "height": 30, "width": 40}],
            "annotations": [{"id": 1, "image_id": 7, "category_id": 1, "segmentation": rle, "bbox": [5, 5, 20, 10],
                             "area": 200, "iscrowd": 0},
                            {"id": 2, "image_id": 7, "category_id": 1, "bbox": [20, 18, 10, 10], "area": 100,
                             "iscrowd": 0, "segmentation": [[20, 18, 30, 18, 30, 28, 20, 28]]}],
            "categories": [{"id": 1, "name": "thing"}]}
    (tmp_path / "coco.json").write_text(json.dumps(data))
    return tmp_path / "coco.json", m


def test_coco_images_are_one_frame_clips(tmp_path):
    path, m = _coco(tmp_path)
    vids = coco_videos(path)
    assert len(vids) == 1 and len(vids[0]) == 1
    objs = vids[0].objects(0)
    assert set(objs) == {1, 2} and np.array_equal(objs[1], m) and objs[2].sum() == 100
    clip = ClipDataset(open_videos(str(path)), 64, num_frames=8, augment=NOAUG).sample(np.random.default_rng(0))
    _check(clip, 1)  # a one-frame clip, whatever num_frames asks


def test_coco_missing_image(tmp_path):
    path, _ = _coco(tmp_path)
    (tmp_path / "a.jpg").unlink()
    with pytest.raises(FileNotFoundError, match=r"a.jpg"):
        coco_videos(path)


def test_sav_layout(tmp_path):
    from samstream.io import SavMasklets, encode_rle, save_sav_json

    h, w = 32, 48
    rles = []
    for t in range(3):  # annotated frames 0, 4, 8 of the 24 fps video
        a = np.zeros((h, w), bool)
        a[4 + t:12 + t, 6:20] = True
        b = np.zeros((h, w), bool)
        if t < 2:
            b[20:28, 30:40] = True
        rles.append([encode_rle(a), encode_rle(b)])
    save_sav_json(tmp_path / "vid1_manual.json", SavMasklets("vid1", h, w, 12, [0, 1], rles))
    (tmp_path / "vid1").mkdir()
    for fi in (0, 4, 8):
        Image.new("RGB", (w, h), (fi * 20, 50, 50)).save(tmp_path / "vid1" / f"{fi:05d}.jpg")
    vids = open_videos(str(tmp_path))
    assert [v.name for v in vids] == ["vid1"] and len(vids[0]) == 3
    assert set(vids[0].objects(0)) == {0, 1} and set(vids[0].objects(2)) == {0}
    clip = ClipDataset(vids, 64, num_frames=3, augment=NOAUG).sample(np.random.default_rng(0))
    _check(clip, 3)
    assert not clip.masks[2, clip.object_ids.index(1)].any()  # absent later: all-zero target
    assert sav_videos(tmp_path)[0].frame(1)[0, 0, 0] == pytest.approx(80, abs=3)


def test_synthetic_source_and_bad_specs(tmp_path):
    vids = synthetic_videos([0, 1], SynthConfig(height=48, width=64, num_frames=5))
    _check(ClipDataset(vids, 64, num_frames=2, augment=AugmentConfig()).sample(np.random.default_rng(0)), 2)
    r = open_videos("synthetic:5:9")
    assert isinstance(r, SynthVideoRange) and [v.name for v in r] == [f"synth00000{i}" for i in range(5, 9)]
    assert (open_videos("synthetic").start, open_videos("synthetic").stop) == (0, 64)
    for bad in ("synthetic:5", "synthetic:a:b", "synthetic:9:5", "synthetic:1:2:3"):
        with pytest.raises(ValueError, match="bad synthetic data"):
            open_videos(bad)
    with pytest.raises(FileNotFoundError, match="not found"):
        open_videos(str(tmp_path / "nope"))
    with pytest.raises(ValueError, match="layout"):
        open_videos(str(tmp_path))


def test_synthetic_range_renders_what_a_written_folder_holds(tmp_path):
    cfg = SynthConfig(height=48, width=64, num_frames=6)
    write_davis_folder(tmp_path, [7, 8], cfg)
    written = {v.name: v for v in davis_videos(tmp_path)}
    r = SynthVideoRange(7, 9, cfg)
    assert len(r) == 2 and [v.name for v in r] == ["synth000007", "synth000008"]
    for v in r:
        w = written[v.name]
        assert len(v) == len(w) == 6
        for t in range(6):
            np.testing.assert_array_equal(v.frame(t), w.frame(t))  # the JPEG pixels, not the rendered ones
            assert v.objects(t).keys() == w.objects(t).keys()
            assert all(np.array_equal(m, w.objects(t)[k]) for k, m in v.objects(t).items())
    raw = synthetic_videos([7], cfg)[0]  # the rendered pixels differ from the written (JPEG) ones
    assert not np.array_equal(raw.frame(0), r[0].frame(0))
    # nothing is kept between draws: each index gives a new, not yet rendered video
    assert r[0] is not r[0] and r[-1].name == "synth000008"
    with pytest.raises(IndexError):
        r[2]
    with pytest.raises(ValueError, match="seed range"):
        SynthVideoRange(5, 5)
    # a range far larger than any folder on disk costs nothing until a clip is drawn
    big = SynthVideoRange(0, 10**6, cfg)
    clip = ClipDataset(big, 64, num_frames=3, augment=NOAUG).sample(np.random.default_rng(0))
    _check(clip, 3)
    assert clip.name.startswith("synth") and int(clip.name[5:]) < 10**6


def test_sampler_window_and_object_limit():
    vids = synthetic_videos([0], SynthConfig(height=48, width=64, num_frames=10, min_objects=3, max_objects=3))
    s = ClipSampler(num_frames=4, max_objects=2)
    rng = np.random.default_rng(0)
    starts = set()
    for _ in range(50):
        idx, ids, first = s.sample(vids[0], rng)
        assert len(idx) == 4 and idx == list(range(idx[0], idx[0] + 4)) and len(ids) <= 2
        assert all(i in first for i in ids)
        starts.add(idx[0])
    assert len(starts) > 3


def test_augmentation_consistent_over_clip():
    frames = np.zeros((3, 40, 40, 3), np.uint8)
    masks = np.zeros((3, 1, 40, 40), bool)
    frames[:, 10:20, 5:15] = 255
    masks[:, 0, 10:20, 5:15] = True
    flip = AugmentConfig(hflip=1.0, affine=0.0, brightness=0, contrast=0, saturation=0, grayscale=0,
                         frame_brightness=0, frame_contrast=0, frame_saturation=0)
    f, m = augment_clip(frames, masks, np.random.default_rng(0), flip)
    assert m[:, 0, 10:20, 25:35].all() and m.sum() == 3 * 100 and (f[:, 15, 30] == 255).all()
    full = AugmentConfig(hflip=0.0, affine=1.0, degrees=25, shear=20, scale=(0.9, 1.1))
    f, m = augment_clip(frames, masks, np.random.default_rng(3), full)
    assert m.dtype == bool and all(np.array_equal(m[0], m[t]) for t in range(3))  # one draw for the whole clip
    bright = f.mean(-1) > 128
    inter, union = (bright & m[:, 0]).sum(), (bright | m[:, 0]).sum()
    assert inter / union > 0.7  # the mask moved with the image
    rf, rm = resize_clip(f, m, 64)
    assert rf.shape == (3, 64, 64, 3) and rm.shape == (3, 1, 64, 64) and rm.dtype == bool


def test_sampler_strided_windows():
    vids = synthetic_videos([0], SynthConfig(height=48, width=64, num_frames=10, min_objects=2, max_objects=2))
    rng = np.random.default_rng(0)
    s = ClipSampler(num_frames=4, max_objects=2, max_stride=3)
    strides = set()
    for _ in range(60):
        idx, _, _ = s.sample(vids[0], rng)
        steps = {b - a for a, b in itertools.pairwise(idx)}
        assert len(idx) == 4 and len(steps) == 1 and idx[0] >= 0 and idx[-1] < 10
        strides |= steps
    assert strides == {1, 2, 3}
    # a stride too long for the video shrinks to the longest that fits: 6 frames of 10 -> stride 1
    idx, _, _ = ClipSampler(num_frames=6, max_objects=1, max_stride=5).sample(vids[0], rng)
    assert idx == list(range(idx[0], idx[0] + 6))
    # max_stride 1 draws nothing extra: the data stream of existing runs is unchanged
    a = ClipSampler(num_frames=4, max_objects=2).sample(vids[0], np.random.default_rng(5))
    b = ClipSampler(num_frames=4, max_objects=2, max_stride=1).sample(vids[0], np.random.default_rng(5))
    assert a[0] == b[0] and a[1] == b[1]
    with pytest.raises(ValueError, match="max_stride must be >= 1, got 4, 0"):
        ClipSampler(num_frames=4, max_objects=1, max_stride=0)
    with pytest.raises(ValueError, match=r"frames per clip .* got 0, 1"):
        ClipSampler(num_frames=0, max_objects=1)


class _Scripted:
    """A video whose objects' areas follow a script: {id: [area per frame]} as square masks."""

    def __init__(self, name, areas):
        self.name, self._areas = name, areas

    def __len__(self):
        return len(next(iter(self._areas.values())))

    def frame(self, t):
        return np.zeros((20, 20, 3), np.uint8)

    def objects(self, t):
        out = {}
        for k, a in self._areas.items():
            if a[t]:
                m = np.zeros((20, 20), bool)
                m.flat[:a[t]] = True
                out[k] = m
        return out


def _is_hard(areas, idx, ids, ratio=0.25):
    return any(min(areas[k][t] for t in idx[1:]) < ratio * areas[k][idx[0]] for k in ids)


def test_sampler_hard_windows():
    # object 1 is covered on frames 8-9 (area 40 -> 4 -> 0); objects 2 and 3 stay whole
    areas = {1: [40] * 7 + [4, 0, 0] + [40] * 6, 2: [30] * 16, 3: [25] * 16}
    video = _Scripted("scripted", areas)
    rng = np.random.default_rng(0)
    s = ClipSampler(num_frames=4, max_objects=2, max_stride=2, hard_prob=1.0)
    seen_strides = set()
    for _ in range(40):
        idx, ids, first = s.sample(video, rng)
        assert 1 in ids and len(ids) == 2 and all(k in first for k in ids)
        assert _is_hard(areas, idx, [1]), idx
        seen_strides.add(idx[1] - idx[0])
    assert seen_strides == {1, 2}
    # reversed windows are judged in their own direction: object 1 must be whole on the first (last-in-time) frame
    rev = ClipSampler(num_frames=4, max_objects=1, reverse_prob=1.0, hard_prob=1.0)
    for _ in range(20):
        idx, ids, _ = rev.sample(video, rng)
        assert idx == sorted(idx, reverse=True) and ids == [1] and _is_hard(areas, idx, [1]), idx
    # without the bias, windows are drawn as before: the same stream as a sampler that never heard of it
    plain = [ClipSampler(num_frames=4, max_objects=2, max_stride=2, **kw).sample(video, np.random.default_rng(3))[:2]
             for kw in ({}, {"hard_prob": 0.0})]
    assert plain[0] == plain[1]
    hits = sum(_is_hard(areas, *ClipSampler(4, 2).sample(video, rng)[:2]) for _ in range(200))
    assert hits < 100  # the bias is what makes every window hard above
    # a video with no hard window falls back to the plain draw
    calm = _Scripted("calm", {2: [30] * 16})
    idx, ids, _ = s.sample(calm, rng)
    assert ids == [2] and len(idx) == 4
    with pytest.raises(ValueError, match="hard_prob"):
        ClipSampler(num_frames=4, max_objects=1, hard_prob=1.5)
    ds = ClipDataset([video], 32, num_frames=4, max_objects=1, augment=None, hard_prob=1.0)
    clip = ds.sample(rng)
    assert clip.object_ids == [1] and _is_hard(areas, clip.frame_indices, [1])
