"""`samstream synth`: seed parsing, the DAVIS-layout folder it writes, and its all-or-nothing write."""
from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

from samstream.cli import main
from samstream.cli.synth import parse_seeds
from samstream.io import read_label_png
from samstream.train.synthetic import SynthConfig, generate_video
from samstream.train.synthetic_set import write_synthetic_set

SMALL = ["--frames", "3", "--height", "48", "--width", "64"]


@pytest.mark.parametrize("text, seeds", [
    ("5", [5]), ("1000000:1000003", [1000000, 1000001, 1000002]), ("7,9", [7, 9]), ("0:2, 10", [0, 1, 10])])
def test_parse_seeds(text, seeds):
    assert parse_seeds(text) == seeds


@pytest.mark.parametrize("text, match", [
    ("a:b", "expected START:END"), ("1:2:3", "expected START:END"), ("", "expected START:END"),
    ("5:5", "empty range"), ("9:3", "empty range"), ("-1", ">= 0"), ("1:3,2", "repeated")])
def test_bad_seeds_are_refused(text, match):
    with pytest.raises(argparse.ArgumentTypeError, match=match):
        parse_seeds(text)


def test_bad_seeds_exit_with_a_message(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["synth", str(tmp_path / "x"), "--seeds", "10-20"])
    assert e.value.code == 2 and "bad --seeds '10-20'" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_writes_a_davis_folder_matching_the_generator(tmp_path):
    out = tmp_path / "held"
    assert main(["synth", str(out), "--seeds", "1000000:1000002", "-q", *SMALL]) == 0
    seqs = ["synth1000000", "synth1000001"]
    assert sorted(p.name for p in (out / "Annotations" / "480p").iterdir()) == seqs
    assert sorted(p.name for p in (out / "JPEGImages" / "480p" / seqs[1]).iterdir()) == \
        ["00000.jpg", "00001.jpg", "00002.jpg"]
    cfg = SynthConfig(num_frames=3, height=48, width=64)
    vid = generate_video(1000001, cfg)
    labels, _ = read_label_png(out / "Annotations" / "480p" / seqs[1] / "00002.png")
    assert np.array_equal(labels, vid.labels[2])  # exact labels, the generator's video for that seed
    events = json.loads((out / "events.json").read_text())
    assert set(events) == set(seqs) and events[seqs[1]]["objects"] == vid.object_ids
    meta = json.loads((out / "synth.json").read_text())
    assert meta["seeds"] == [1000000, 1000001] and meta["config"]["num_frames"] == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["held"]  # no temporary folder left behind


def test_existing_output_is_kept_unless_force(tmp_path, capsys):
    out = tmp_path / "held"
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    assert main(["synth", str(out), "--seeds", "3", "-q", *SMALL]) == 2
    assert "exists" in capsys.readouterr().err and (out / "mine.txt").read_text() == "keep"
    assert main(["synth", str(out), "--seeds", "3", "-q", "--force", *SMALL]) == 0
    assert not (out / "mine.txt").exists() and (out / "events.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["held"]


def test_an_interrupted_write_leaves_nothing_that_looks_complete(tmp_path, monkeypatch):
    from samstream.train import synthetic

    real = synthetic.write_davis_folder

    def half_then_fail(root, seeds, cfg=None, **kw):
        real(root, list(seeds)[:1], cfg)  # one video on disk, then the process "dies"
        raise KeyboardInterrupt

    monkeypatch.setattr(synthetic, "write_davis_folder", half_then_fail)
    with pytest.raises(KeyboardInterrupt):
        write_synthetic_set(tmp_path / "held", [1, 2], SynthConfig(num_frames=2, height=32, width=32))
    assert list(tmp_path.iterdir()) == []


def test_warns_on_seeds_the_default_model_was_trained_on(tmp_path, capsys):
    from samstream.train.recipe import STAGES

    last = max(s.videos for s in STAGES) - 1  # the largest stage's last seed: still a training seed
    assert main(["synth", str(tmp_path / "a"), "--seeds", f"{last},{last + 1}", *SMALL]) == 0
    assert f"1 seed(s) are training seeds (< {last + 1})" in capsys.readouterr().err
    assert main(["synth", str(tmp_path / "b"), "--seeds", f"{last + 1}", *SMALL]) == 0
    assert "training seeds" not in capsys.readouterr().err


def test_jobs_write_the_same_folder_byte_for_byte(tmp_path, capsys):
    one, two = tmp_path / "one", tmp_path / "two"
    assert main(["synth", str(one), "--seeds", "3:8", "--jobs", "1", *SMALL]) == 0
    assert main(["synth", str(two), "--seeds", "3:8", "--jobs", "2", *SMALL]) == 0
    assert "5/5" in capsys.readouterr().err  # the progress bar, counted in videos

    def files(root):
        return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}

    a, b = files(one), files(two)
    assert len(a) == 5 * 3 * 2 + 2 and a == b  # frames, labels, events.json and synth.json
    assert list(json.loads((two / "events.json").read_text())) == [f"synth{s:06d}" for s in range(3, 8)]
