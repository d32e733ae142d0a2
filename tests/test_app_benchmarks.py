"""Smoke tests of the app's benchmarks (benchmarks/app_long_video.py, app_latency.py, annotation.py): each runs on
tiny inputs against a real server process, and its output is checked for structure and sanity, so the benchmarks
cannot rot. They time nothing: the figures are the benchmarks' own, run by hand (docs/app.md, "Measured")."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
pytest.importorskip("httpx")

from benchmarks import annotation, app_long_video, data_engine

ROOT = Path(__file__).resolve().parents[1]


def test_long_video_benchmark_reports_open_time_and_memory(tmp_path):
    out = tmp_path / "long.json"
    res = app_long_video.main(["--frames", "40", "--scrub", "12", "--propagate-seconds", "2", "--json", str(out)])
    assert json.loads(out.read_text()) == res
    assert res["frames"] == res["num_frames_seen"] == 40
    assert 0 < res["open_s"] < 60
    assert len(res["load_before"]) == 3 and len(res["load_after"]) == 3
    for phase in ("scrub", "propagate"):
        s = res[phase]
        assert s["samples_mb"] and all(v > 50 for v in s["samples_mb"])   # a Python process with torch
        assert s["max_mb"] == max(s["samples_mb"])
    assert res["scrub"]["median_ms"] <= res["scrub"]["p95_ms"]
    prop = res["propagate"]
    assert prop["state"] in ("done", "cancelled") and 0 < prop["frames_done"] <= 40
    assert res["stored_frames"] == prop["frames_done"]   # every tracked frame was stored


def test_latency_benchmark_times_clicks_in_the_browser(tmp_path):
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    pytest.importorskip("playwright")
    if not Path(chromium).exists():
        pytest.skip("chromium is not installed")
    from benchmarks import app_latency

    out = tmp_path / "lat.json"
    res = app_latency.main(["--clicks", "3", "--json", str(out)])
    assert json.loads(out.read_text()) == res
    assert len(res["clicks"]) == 3
    assert len({(k["frame"], k["obj_id"]) for k in res["clicks"]}) == 3   # another frame and object each time
    for k in res["clicks"]:
        # the order of events: pointer, click request answered, overlay requested and answered, overlay drawn
        assert 0 <= k["click_sent_ms"] < k["click_answered_ms"] <= k["overlay_sent_ms"] < k["overlay_answered_ms"]
        assert k["overlay_answered_ms"] <= k["to_overlay_ms"] <= k["to_idle_ms"]
    for key in ("browser_to_overlay", "browser_to_idle", "click_request_in_browser", "click_route_from_python"):
        s = res[key]
        assert s["n"] == 3 and 0 < s["min_ms"] <= s["median_ms"] <= s["p95_ms"] <= s["max_ms"]


def _davis_folder(root: Path, frames: int = 4, seq: str = "seq") -> None:
    """One sequence, two objects: a square moving right (object 1, absent on the last frame) and a fixed disc."""
    yy, xx = np.mgrid[:96, :128]
    (root / "JPEGImages" / "480p" / seq).mkdir(parents=True)
    (root / "Annotations" / "480p" / seq).mkdir(parents=True)
    for t in range(frames):
        labels = np.zeros((96, 128), np.uint8)
        if t < frames - 1:
            labels[30:60, 10 + 8 * t: 40 + 8 * t] = 1
        labels[(yy - 50) ** 2 + (xx - 100) ** 2 < 15 ** 2] = 2
        rgb = np.full((96, 128, 3), 40, np.uint8)
        rgb[labels == 1] = (230, 60, 40)
        rgb[labels == 2] = (40, 80, 230)
        Image.fromarray(rgb).save(root / "JPEGImages" / "480p" / seq / f"{t:05d}.jpg", quality=95)
        img = Image.fromarray(labels, mode="P")
        img.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0] + [0] * 759)
        img.save(root / "Annotations" / "480p" / seq / f"{t:05d}.png")


def test_annotation_benchmark_annotates_in_both_modes(tmp_path, capsys):
    data = tmp_path / "davis"
    _davis_folder(data)
    out = tmp_path / "ann.json"
    res = annotation.main(["--data", str(data), "--max-clicks", "3", "--json", str(out), "-q"])
    assert json.loads(out.read_text()) == res
    rows = res["masklets"]
    assert sorted((r["object"], r["mode"]) for r in rows) == [(1, "image"), (1, "video"), (2, "image"), (2, "video")]
    for r in rows:
        assert r["frames"] == 4 and 0 <= r["J"] <= 1 and 0 <= r["F"] <= 1 and r["seconds"] > 0
        assert 1 <= r["clicks"] <= 3 * r["frames"] and r["frames_clicked"] <= r["frames"]
        if r["mode"] == "image":
            assert r["propagations"] == 0
            assert r["frames_clicked"] == (3 if r["object"] == 1 else 4)   # no click where the object is absent
        else:
            assert r["propagations"] >= 1
        if r["frames_below_target"] == 0:
            assert r["J"] >= 0.9
    s = res["summary"]
    for mode in ("image", "video"):
        assert s[mode]["masklets"] == 2 and s[mode]["J&F"] == pytest.approx((s[mode]["J"] + s[mode]["F"]) / 2, abs=1e-4)
    assert res["ratio_image_over_video"]["clicks"] == pytest.approx(
        s["image"]["clicks_per_masklet"] / s["video"]["clicks_per_masklet"], abs=0.01)
    printed = capsys.readouterr().out
    assert "image / video:" in printed and "clicks/masklet" in printed


def test_annotation_benchmark_refuses_a_folder_that_is_not_davis(tmp_path):
    with pytest.raises(SystemExit, match="not a DAVIS-layout folder"):
        annotation.main(["--data", str(tmp_path)])


def test_data_engine_benchmark_annotates_trains_switches_and_reannotates(tmp_path, capsys):
    _davis_folder(tmp_path / "a", seq="train_seq")
    _davis_folder(tmp_path / "t", seq="test_seq")
    work, out = tmp_path / "work", tmp_path / "de.json"
    res = data_engine.main(["--annotate", str(tmp_path / "a"), "--test", str(tmp_path / "t"), "--steps", "2",
                            "--max-clicks", "3", "--work", str(work), "--json", str(out), "-q"])
    assert json.loads(out.read_text()) == res
    assert res["sequences"] == {"annotate": ["train_seq"], "test": ["test_seq"]}
    for key in ("before", "annotated", "after"):
        assert sorted(r["object"] for r in res[key]) == [1, 2] and all(r["mode"] == "video" for r in res[key])
    # the training set holds the annotated video's masked frames only, never a test video
    trained = sorted(p.name for p in (work / "trainset" / "JPEGImages" / "480p").iterdir())
    assert trained and all(name.startswith("train_seq") for name in trained)
    assert res["trainset_frames"] == len(list((work / "trainset" / "Annotations" / "480p").rglob("*.png"))) > 0
    # the app really switched to the weights the fine-tune wrote, and they differ from the starting ones
    weights = work / "library" / "models" / "data-engine" / "model.safetensors"
    assert res["switched_to"] == "models/data-engine/model.safetensors" and weights.is_file()
    assert weights.read_bytes() != data_engine.EMBEDDED.read_bytes()
    s = res["summary"]
    assert res["clicks_before_over_after"] == pytest.approx(
        s["before"]["clicks_per_masklet"] / s["after"]["clicks_per_masklet"], abs=0.01)
    assert "clicks per test masklet, before / after" in capsys.readouterr().out


def test_data_engine_benchmark_refuses_the_same_videos_for_both_sets(tmp_path):
    _davis_folder(tmp_path / "a")
    with pytest.raises(SystemExit, match="must be different"):
        data_engine.main(["--annotate", str(tmp_path / "a"), "--test", str(tmp_path / "a")])
