"""Synthetic videos: deterministic, pixel-exact masks, occlusion and leave-and-return events, DAVIS export."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from samstream.io import read_label_png
from samstream.train.synthetic import (
    ObjectSpec,
    SynthConfig,
    background_at,
    build_scene,
    generate_video,
    render_object,
    render_scene,
    write_davis_folder,
)

SMALL = SynthConfig(height=96, width=128, num_frames=12)


def test_deterministic_from_seed():
    a, b, c = generate_video(3, SMALL), generate_video(3, SMALL), generate_video(4, SMALL)
    assert np.array_equal(a.frames, b.frames) and np.array_equal(a.labels, b.labels) and a.events == b.events
    assert not np.array_equal(a.frames, c.frames)
    assert a.frames.shape == (12, 96, 128, 3) and a.frames.dtype == np.uint8 and a.labels.shape == (12, 96, 128)


@pytest.mark.parametrize("seed", [0, 11])
def test_masks_are_exactly_the_rendered_objects(seed):
    cfg = SynthConfig(height=120, width=160, num_frames=24)
    vid = generate_video(seed, cfg)
    bg, objs, drift = build_scene(seed, cfg)
    for t in (0, 9, 13, 23):
        covered = np.zeros(vid.labels[t].shape, bool)
        for obj in sorted(objs, key=lambda o: -o.depth):  # front to back
            amodal, colour = render_object(obj, t, cfg.height, cfg.width)
            visible = amodal & ~covered
            if obj.label:
                assert np.array_equal(vid.labels[t] == obj.label, visible)
            assert np.array_equal(vid.frames[t][visible], colour[visible])  # the object's own texture
            covered |= amodal
        assert np.array_equal(vid.frames[t][~covered], background_at(bg, drift, t)[~covered])
        assert np.array_equal(vid.labels[t] > 0, np.isin(vid.labels[t], vid.object_ids))


def test_front_object_wins():
    tex = {"kind": "stripes", "c1": [255, 0, 0], "c2": [255, 0, 0], "freq": 0.3, "seed": 1}
    mk = lambda label, depth, cx, col: ObjectSpec(
        "rect", 10, 1.0, {**tex, "c1": col, "c2": col}, (cx, 20.0), (0.0, 0.0), (0, 0, 10, 0), 0.0, 0.0, 0.0,
        10.0, depth, label)
    frame, labels = render_scene([mk(1, 0.0, 20.0, [255, 0, 0]), mk(2, 1.0, 30.0, [0, 255, 0])],
                                 np.zeros((40, 60, 3), np.uint8), 0)
    assert labels[20, 25] == 2 and frame[20, 25].tolist() == [0, 255, 0]  # overlap: the nearer object
    assert labels[20, 12] == 1 and frame[20, 12].tolist() == [255, 0, 0]
    assert (labels == 1).sum() == 10 * 20 and (labels == 2).sum() == 20 * 20  # exact pixel areas


def test_varied_scenes_and_events():
    vids = [generate_video(s, SynthConfig(height=120, width=160, num_frames=24)) for s in range(12)]
    occl = [v for v in vids if v.events["occlusion"]]
    leave = [v for v in vids if v.events["leave_return"]]
    assert len(occl) >= 1 and len(leave) >= 3
    for v in occl + leave:  # the reported object really vanishes and comes back
        obj = (v.events["occlusion"] + v.events["leave_return"])[0]
        vis = (v.labels == obj).reshape(len(v.labels), -1).any(1)
        first, last = np.argmax(vis), len(vis) - 1 - np.argmax(vis[::-1])
        assert not vis[first:last + 1].all()
    assert len({len(v.object_ids) for v in vids}) > 1
    sizes = [(v.labels[0] == 1).sum() for v in vids if (v.labels[0] == 1).any()]
    assert max(sizes) > 3 * min(sizes)


def test_occlusion_and_leave_are_scripted_on_demand():
    occ = SynthConfig(height=120, width=160, num_frames=24, p_leave=0.0, p_occlusion=1.0)
    assert sum(bool(generate_video(s, occ).events["occlusion"]) for s in range(6)) >= 4
    lv = SynthConfig(height=120, width=160, num_frames=24, p_leave=1.0)
    assert sum(bool(generate_video(s, lv).events["leave_return"]) for s in range(6)) >= 5


def test_distractors_copy_an_object_look():
    cfg = SynthConfig(num_distractors=2)
    _, objs, _ = build_scene(5, cfg)
    distractors = [o for o in objs if o.label == 0]
    assert len(distractors) >= 2
    assert all(any(d.texture is o.texture and d.shape == o.shape for o in objs if o.label) for d in distractors)


def test_photo_backgrounds(tmp_path):
    Image.new("RGB", (300, 200), (10, 200, 30)).save(tmp_path / "bg.png")
    vid = generate_video(1, SynthConfig(height=60, width=80, num_frames=2, background_dir=str(tmp_path),
                                        num_distractors=0))
    bgpix = vid.frames[0][vid.labels[0] == 0]
    assert len(bgpix) > 1000 and (bgpix == [10, 200, 30]).all(1).mean() > 0.95  # the photo shows through
    with pytest.raises(FileNotFoundError, match="background folder"):
        generate_video(1, SynthConfig(background_dir=str(tmp_path / "missing")))


def test_write_davis_folder(tmp_path):
    report = write_davis_folder(tmp_path, [2, 3], SMALL)
    assert set(report) == {"synth000002", "synth000003"}
    assert json.loads((tmp_path / "events.json").read_text()) == report
    vid = generate_video(2, SMALL)
    frames = sorted((tmp_path / "JPEGImages" / "480p" / "synth000002").glob("*.jpg"))
    assert [f.name for f in frames[:2]] == ["00000.jpg", "00001.jpg"] and len(frames) == 12
    lab, _ = read_label_png(tmp_path / "Annotations" / "480p" / "synth000002" / "00005.png")
    assert np.array_equal(lab, vid.labels[5])
