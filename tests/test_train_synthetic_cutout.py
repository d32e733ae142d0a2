"""The photographic training generator (cutout) and the generator registry: determinism, exact labels,
scripted events, data specs, `samstream synth --generator`, the source split, missing assets, and that the
videos look photographic (image statistics unlike the shapes generator's)."""
from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

from samstream.cli import main
from samstream.train import generators
from samstream.train import synthetic_cutout as sc
from samstream.train.data import ClipDataset, SynthVideoRange, open_videos
from samstream.train.photo_sources import assets_root
from samstream.train.synthetic import SynthConfig

try:
    assets_root()
    HAVE_ASSETS = True
except FileNotFoundError:
    HAVE_ASSETS = False
# every test but the missing-assets one renders videos from the real photos
needs_assets = pytest.mark.skipif(not HAVE_ASSETS, reason="the sam2-assets folder is not here (set $SAMSTREAM_ASSETS)")

SMALL = sc.CutoutConfig(height=96, width=128, num_frames=12)
CLI_SMALL = ["--frames", "4", "--height", "48", "--width", "64", "--jobs", "1", "-q"]


@needs_assets
def test_deterministic_from_seed():
    a, b, c = sc.generate_video(3, SMALL), sc.generate_video(3, SMALL), sc.generate_video(4, SMALL)
    assert np.array_equal(a.frames, b.frames) and np.array_equal(a.labels, b.labels) and a.events == b.events
    assert not np.array_equal(a.frames, c.frames)
    assert a.frames.shape == (12, 96, 128, 3) and a.frames.dtype == np.uint8 and a.labels.shape == (12, 96, 128)
    assert a.name == "cutout0000003" and generators.generate_video("cutout", 3, SMALL).name == a.name


@pytest.mark.parametrize("seed", [0, 7, 12])
@needs_assets
def test_labels_are_exactly_the_frontmost_opaque_layer(seed):
    vid = sc.generate_video(seed, SMALL)
    scene = sc.build_scene(seed, SMALL)
    for t in (0, 5, 11):
        expect = np.zeros((96, 128), np.uint8)
        for layer in sorted(scene.layers, key=lambda ly: ly.depth):  # back to front
            got = sc.render_layer(layer, t, 96, 128, sc.layer_exposure(layer, t, scene.exposure))
            if got is not None:
                y0, x0, _, alpha = got
                expect[y0:y0 + alpha.shape[0], x0:x0 + alpha.shape[1]][alpha >= 0.5] = layer.label
        assert np.array_equal(vid.labels[t], expect)
    present = sorted(int(k) for k in np.unique(vid.labels) if k)
    assert vid.object_ids == present and 1 <= len(present) <= SMALL.max_objects
    assert all(k in present for k in (*vid.events["occlusion"], *vid.events["leave_return"]))


@needs_assets
def test_varied_scenes_and_about_half_with_an_event():
    cfg = sc.CutoutConfig(height=96, width=128)  # the default 24 frames: the event rate is set for those
    vids = [sc.generate_video(s, cfg) for s in range(32)]
    hard = [v for v in vids if v.events["occlusion"] or v.events["leave_return"]]
    assert 0.3 <= len(hard) / len(vids) <= 0.75
    for v in hard:  # the reported object really vanishes and comes back
        obj = (v.events["occlusion"] + v.events["leave_return"])[0]
        vis = (v.labels == obj).reshape(len(v.labels), -1).any(1)
        first, last = np.argmax(vis), len(vis) - 1 - np.argmax(vis[::-1])
        assert not vis[first:last + 1].all()
    assert len({len(v.object_ids) for v in vids}) > 1
    scenes = [sc.build_scene(s, SMALL) for s in range(24)]
    assert any(ly.label == 0 for s in scenes for ly in s.layers)  # distractors / occluders
    assert len({s.jpeg for s in scenes}) > 5 and all(60 <= s.jpeg <= 95 for s in scenes)


@needs_assets
def test_occlusion_and_leave_are_scripted_on_demand():
    occ = sc.CutoutConfig(height=96, width=128, num_frames=24, p_leave=0.0, p_occlusion=1.0)
    assert sum(1 in sc.generate_video(s, occ).events["occlusion"] for s in range(6)) >= 4
    lv = sc.CutoutConfig(height=96, width=128, num_frames=24, p_leave=1.0)
    assert sum(1 in sc.generate_video(s, lv).events["leave_return"] for s in range(6)) >= 4


def test_events_rule():
    labels = np.zeros((5, 4, 4), np.uint8)
    labels[[0, 1, 4], 0, 0] = 1  # object 1: gone on frames 2-3 and back
    labels[[0, 2], 1, 1] = 2  # object 2: gone on frame 1, in the frame: covered
    labels[0, 2, 2] = 3  # object 3: never back, no event
    inside = {1: np.array([1, 1, 0, 0, 1], bool), 2: np.ones(5, bool), 3: np.ones(5, bool)}
    assert sc.events_of(labels, inside) == {"occlusion": [2], "leave_return": [1]}
    inside[1][2] = True  # one gap frame covered, one outside: both
    assert sc.events_of(labels, inside) == {"occlusion": [1, 2], "leave_return": [1]}


@needs_assets
def test_photographic_unlike_shapes():
    def mid_gradients(rng_):  # share of horizontal grey steps between 2 and 25: natural images have many
        vals = []
        for v in rng_:
            g = np.stack([v.frame(t) for t in (0, 6)]).astype(np.float32).mean(-1)
            dx = np.abs(np.diff(g, axis=2))
            vals.append(((dx >= 2) & (dx <= 25)).mean())
        return float(np.median(vals))

    shapes = SynthVideoRange(0, 6, SynthConfig(height=96, width=128, num_frames=12))
    cutout = SynthVideoRange(0, 6, SMALL, generator="cutout")
    m_shapes, m_cut = mid_gradients(shapes), mid_gradients(cutout)
    assert m_cut > 0.25 and m_cut > 3 * m_shapes
    for s in range(6):  # every pixel source is one of the listed, training-side sources
        scene = sc.build_scene(s, SMALL)
        assert scene.sources and set(scene.sources) <= set(sc.SOURCES)


@needs_assets
def test_data_specs_and_clip_dataset(tmp_path):
    r = open_videos("cutout:5:8")
    assert isinstance(r, SynthVideoRange) and r.generator == "cutout"
    assert [v.name for v in r] == ["cutout0000005", "cutout0000006", "cutout0000007"]
    assert open_videos("shapes:5:7")[0].name == "synth000005" and open_videos("synthetic:5:7")[1].name == "synth000006"
    for bad in ("cutout:5", "cutout:a:b", "cutout:9:5"):
        with pytest.raises(ValueError, match="bad synthetic data"):
            open_videos(bad)
    with pytest.raises(ValueError, match="CutoutConfig"):
        SynthVideoRange(0, 3, SynthConfig(), generator="cutout")
    with pytest.raises(ValueError, match="unknown generator"):
        generators.module("nope")
    big = SynthVideoRange(0, 900_000, SMALL, generator="cutout")
    clip = ClipDataset(big, 64, num_frames=3).sample(np.random.default_rng(0))
    assert clip.images.shape == (3, 3, 64, 64) and clip.masks.shape[0] == 3 and clip.masks[0].any()
    assert clip.name.startswith("cutout") and int(clip.name[6:]) < 900_000


@needs_assets
def test_a_mixture_spec_draws_from_each_part_by_its_length():
    mix = open_videos("cutout:5:8+shapes:0:2")
    assert len(mix) == 5
    assert [v.name for v in mix] == ["cutout0000005", "cutout0000006", "cutout0000007", "synth000000", "synth000001"]
    assert mix[-1].name == "synth000001"
    with pytest.raises(IndexError):
        mix[5]
    names = [ClipDataset(mix, 32).sample(np.random.default_rng(i)).name for i in range(40)]
    share = sum(n.startswith("cutout") for n in names) / len(names)
    assert 0.4 < share < 0.8  # 3/5 of the draws


@needs_assets
def test_every_object_is_visible_on_frame_0():
    """Seed 1324's first scene hides its one object behind an occluder all along, and held-out seed 1000040's
    object enters later: both are drawn again, so the DAVIS protocol (objects of frame 0) can prompt them all."""
    for seed in (1324, 1_000_040):
        first = sc._render(sc.build_scene(seed), sc.CutoutConfig(), "x")
        assert not (first.labels[0] > 0).any() or not first.object_ids
        v = sc.generate_video(seed)
        assert v.object_ids and v.name == f"cutout{seed:07d}"
        assert all(v.masks(k)[0].any() for k in v.object_ids)


@needs_assets
def test_synth_cli_writes_a_folder_eval_reads(tmp_path, capsys):
    from samstream.eval.dataset import detect_layout, read_labels, resolve_mask_root
    from samstream.eval.events import find_events, read_events

    out = tmp_path / "held"
    assert main(["synth", str(out), "--generator", "cutout", "--seeds", "1000000:1000002", *CLI_SMALL]) == 0
    seqs = ["cutout1000000", "cutout1000001"]
    masks = resolve_mask_root(out)
    assert sorted(p.name for p in masks.iterdir()) == seqs and detect_layout(masks / seqs[1]) == "davis"
    cfg = sc.CutoutConfig(num_frames=4, height=48, width=64)
    vid = sc.generate_video(1000001, cfg)
    assert np.array_equal(read_labels(masks / seqs[1] / "00003.png"), vid.labels[3])
    events = read_events(find_events(out))
    assert set(events) == set(seqs)
    assert json.loads((out / "events.json").read_text())[seqs[1]]["objects"] == vid.object_ids
    meta = json.loads((out / "synth.json").read_text())
    assert meta["generator"] == "cutout" and meta["config"]["num_frames"] == 4 and meta["seeds"] == [1000000, 1000001]
    # in memory, a drawn video shows the pixels of the written folder
    from samstream.train.data import davis_videos

    written = {v.name: v for v in davis_videos(out)}
    mem = SynthVideoRange(1000001, 1000002, cfg, generator="cutout")[0]
    assert np.array_equal(mem.frame(2), written[seqs[1]].frame(2))
    assert "training seeds" not in capsys.readouterr().err
    assert main(["synth", str(tmp_path / "t"), "--generator", "cutout", "--seeds", "5", "--frames", "2",
                 "--height", "48", "--width", "64", "--jobs", "1"]) == 0
    assert "1 seed(s) are training seeds (< 1000000)" in capsys.readouterr().err
    assert main(["synth", str(tmp_path / "b"), "--generator", "cutout", "--backgrounds", str(tmp_path),
                 "--seeds", "1000000", *CLI_SMALL]) == 2
    assert "--backgrounds is for the shapes generator" in capsys.readouterr().err


def test_missing_assets_is_a_clear_error(tmp_path, monkeypatch, capsys):
    with pytest.raises(FileNotFoundError, match=f"assets folder {tmp_path}.*SAMSTREAM_ASSETS"):
        sc.generate_video(0, sc.CutoutConfig(assets=str(tmp_path)))
    monkeypatch.setenv("SAMSTREAM_ASSETS", str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="nowhere"):
        sc.generate_video(0)
    assert main(["synth", str(tmp_path / "o"), "--generator", "cutout", "--seeds", "1000000", *CLI_SMALL]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cutout: the assets folder") and err.count("\n") == 1
    assert not (tmp_path / "o").exists()
    with pytest.raises(ValueError, match="height, width >= 32"):
        sc.generate_video(0, sc.CutoutConfig(height=8))


@needs_assets
def test_sources_split_from_collage():
    assert len(set(sc.SOURCES)) == len(sc.SOURCES) == 7
    if importlib.util.find_spec("samstream.train.synthetic_collage") is None:
        pytest.skip("the collage generator is not here")
    collage = generators.module("collage")
    assert not set(sc.SOURCES) & set(collage.SOURCES)
    # not the same files under other names either
    root = assets_root()
    mine = {(root / s).resolve() for s in sc.SOURCES}
    theirs = {(root / s).resolve() for s in collage.SOURCES if not s.startswith("pkg:")}
    assert not mine & theirs
