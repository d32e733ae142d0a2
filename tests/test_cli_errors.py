"""The CLI's error path: output folders are new or replaced knowingly (--overwrite), every expected error is one
line `error: ...` with a non-zero exit code (never a traceback), and a failed write keeps the old file."""
from __future__ import annotations

import errno
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from samstream import save_model
from samstream.cli import build_parser, error_message, main
from samstream.cli.args import VIDEO_OUTPUTS, OutputFolder
from samstream.io import atomic
from samstream.io.atomic import atomic_write_bytes
from samstream.io.png import read_label_png
from tests.helpers import small_config, small_model, synthetic_frames


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return save_model(small_model(), tmp_path_factory.mktemp("model") / "small.safetensors")


def _frames(d, n):
    d.mkdir()
    for i, f in enumerate(synthetic_frames(n)):
        Image.fromarray(f).save(d / f"{i:05d}.png")
    return d


@pytest.fixture(scope="module")
def data(tmp_path_factory, ckpt):
    """Inputs for every command: frames, one image, a file to put outputs under, a non-empty folder."""
    root = tmp_path_factory.mktemp("inputs")
    frames = _frames(root / "frames", 3)
    (root / "afile").write_text("not a folder")
    (root / "full").mkdir()
    (root / "full" / "notes.txt").write_text("someone's file")
    return {"root": root, "frames": frames, "image": frames / "00000.png", "file": root / "afile",
            "full": root / "full", "missing": root / "missing", "model": str(ckpt)}


def _names(d):
    return sorted(p.name for p in d.iterdir())


def _one_line_error(err: str) -> str:
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


# ------------------------------------------------------------------------------------------ output folders
def test_track_refuses_a_non_empty_folder_and_overwrite_replaces_the_earlier_run(tmp_path, ckpt, capsys):
    """A 3-frame rerun into the folder of an 8-frame run: refused; with --overwrite the folder holds exactly the
    new run's 3 PNGs (no masks.json or overlay.mp4 it did not ask for), and the user's own file stays."""
    long, short = _frames(tmp_path / "long", 8), _frames(tmp_path / "short", 3)
    out = tmp_path / "out"
    base = ["--prompt", "0:1:20,20", "-o", str(out), "--model", str(ckpt), "--quiet", "--device", "cpu"]
    assert main(["track", str(long), *base, "--format", "png,json,mp4"]) == 0
    (out / "notes.txt").write_text("mine")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    capsys.readouterr()
    assert main(["track", str(short), *base]) == 2
    line = _one_line_error(capsys.readouterr().err)
    assert "is not empty" in line and "--overwrite" in line and str(out) in line
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # a refusal changes nothing
    # with --overwrite, a run that fails before writing (a prompt past the end) keeps the earlier outputs too
    assert main(["track", str(short), *base[2:], "--prompt", "7:1:20,20", "--overwrite"]) == 2
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    capsys.readouterr()
    assert main(["track", str(short), *base, "--overwrite"]) == 0
    assert _names(out) == ["00000.png", "00001.png", "00002.png", "notes.txt"]
    assert (out / "notes.txt").read_text() == "mine"
    assert read_label_png(out / "00000.png")[0].shape == (48, 64)
    assert "deleted 10 file(s) of an earlier run" in capsys.readouterr().err


def test_output_folder_rules(tmp_path):
    f = tmp_path / "afile"
    f.write_text("x")
    with pytest.raises(NotADirectoryError, match="is a file"):
        OutputFolder(f, VIDEO_OUTPUTS)
    with pytest.raises(NotADirectoryError, match=f"under {f}, which is a file"):
        OutputFolder(f / "a" / "b", VIDEO_OUTPUTS)
    frames = tmp_path / "frames"
    frames.mkdir()
    (frames / "00000.png").write_bytes(b"a frame")
    with pytest.raises(ValueError, match="is the input folder"):
        OutputFolder(frames, VIDEO_OUTPUTS, overwrite=True, inputs=(frames,))
    # eval vos: masks/<seq>/*.png and the results; folders it empties go, other files stay
    out = tmp_path / "res"
    for rel in ("masks/a/00000.png", "masks/a/00001.png", "masks/b/x.png", "masks/b/keep.txt", "results.json",
                "results.csv", "other.json", "deep/masks/a/0.png"):
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_text("x")
    vos = ("masks/*/*.png", "results.json", "results.csv", "jf_per_sequence.png")
    with pytest.raises(FileExistsError, match="not empty"):
        OutputFolder(out, vos)
    assert OutputFolder(out, vos, overwrite=True).prepare() == out
    left = sorted(os.path.relpath(os.path.join(d, n), out) for d, _, files in os.walk(out) for n in files)
    assert left == ["deep/masks/a/0.png", "masks/b/keep.txt", "other.json"] and not (out / "masks" / "a").exists()
    # an input inside the output folder is never deleted, even if it is named like an output
    (out / "00007.png").write_text("input frame")
    OutputFolder(out, VIDEO_OUTPUTS, overwrite=True, inputs=(out / "00007.png",)).prepare()
    assert (out / "00007.png").read_text() == "input frame"
    # a new folder is created, parents included
    assert OutputFolder(tmp_path / "new" / "x", VIDEO_OUTPUTS).prepare().is_dir()


# ------------------------------------------------------------------------------------------ failed writes
def _failing_open(err: int, create: bool):
    """`open` for samstream.io.atomic that fails with `err`: at once, or (create) after making the file, on write."""
    real = open

    def fake(path, mode="r", *a, **k):
        if not create:
            raise OSError(err, os.strerror(err), str(path))
        f = real(path, mode, *a, **k)

        def write(_data):
            raise OSError(err, os.strerror(err))

        f.write = write
        return f

    return fake


def test_read_only_filesystem_raises_the_write_error_not_the_cleanup_error(tmp_path, monkeypatch):
    target = tmp_path / "mask.png"
    target.write_bytes(b"old")
    monkeypatch.setattr(atomic, "open", _failing_open(errno.EROFS, create=False), raising=False)

    def unlink(path, *a, **k):  # on a read-only filesystem the clean-up fails too
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))

    monkeypatch.setattr(atomic.os, "unlink", unlink)
    with pytest.raises(OSError) as e:
        atomic_write_bytes(target, b"new")
    assert e.value.errno == errno.EROFS and e.value.filename == str(target)  # names the target, not the temp
    assert e.value.__context__ is None and e.value.__cause__ is None  # no chained clean-up error
    assert target.read_bytes() == b"old"


def test_disk_full_keeps_the_old_file_and_removes_the_temporary(tmp_path, monkeypatch):
    target = tmp_path / "masks.json"
    target.write_bytes(b"old")
    monkeypatch.setattr(atomic, "open", _failing_open(errno.ENOSPC, create=True), raising=False)
    with pytest.raises(OSError) as e:
        atomic_write_bytes(target, b"new")
    assert e.value.errno == errno.ENOSPC
    assert target.read_bytes() == b"old" and _names(tmp_path) == ["masks.json"]


def test_write_into_a_folder_or_under_a_file_names_it(tmp_path):
    (tmp_path / "d").mkdir()
    with pytest.raises(IsADirectoryError, match="it is a folder"):
        atomic_write_bytes(tmp_path / "d", b"x")
    (tmp_path / "f").write_text("x")
    with pytest.raises(NotADirectoryError, match=f"{tmp_path / 'f'} is a file"):
        atomic_write_bytes(tmp_path / "f" / "sub" / "x.json", b"x")


@pytest.mark.parametrize("err", [errno.ENOSPC, errno.EROFS, errno.EACCES])
@pytest.mark.parametrize("command", ["segment", "track"])
def test_environment_errors_are_one_line_and_exit_1(tmp_path, data, capsys, monkeypatch, err, command):
    monkeypatch.setattr(atomic, "open", _failing_open(err, create=err == errno.ENOSPC), raising=False)
    out = tmp_path / "out"
    argv = (["segment", str(data["image"]), "--point", "10,10"] if command == "segment" else
            ["track", str(data["frames"]), "--prompt", "0:1:10,10", "--quiet"])
    assert main([*argv, "-o", str(out), "--model", data["model"], "--device", "cpu"]) == 1
    line = _one_line_error(capsys.readouterr().err)
    assert os.strerror(err) in line and str(out) in line
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary file left


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes into read-only folders")
def test_real_read_only_folder(tmp_path, data, capsys):
    out = tmp_path / "out"
    out.mkdir()
    out.chmod(0o555)
    try:
        assert main(["segment", str(data["image"]), "--point", "10,10", "-o", str(out), "--model", data["model"]]) == 1
    finally:
        out.chmod(0o755)
    assert "Permission denied" in _one_line_error(capsys.readouterr().err)


def test_error_message_formats():
    assert error_message(OSError(errno.ENOSPC, "No space left on device", "/o/x.png")) == \
        "/o/x.png: No space left on device"
    assert error_message(FileExistsError("out exists: pass --resume")) == "out exists: pass --resume"
    assert error_message(ValueError("two\nlines")) == "two lines"


# ------------------------------------------------------------------------------------------ every command
def _cases(d) -> dict[str, tuple[list[str], str]]:
    """name -> (argv, words the one-line error must hold), for every command of `samstream --help`."""
    r, img, frames, f, full, miss, m = (str(d[k]) for k in ("root", "image", "frames", "file", "full", "missing",
                                                            "model"))
    seg = ["segment", img, "--point", "10,10", "--model", m]
    trk = ["track", frames, "--prompt", "0:1:10,10", "--model", m, "--quiet"]
    sga = ["segment-all", img, "--model", m, "--points-per-side", "2", "--quiet"]
    tra = ["track-all", frames, "--model", m, "--points-per-side", "2", "--quiet"]
    vos = ["eval", "vos", "--data", r, "--model", m, "-q"]
    trn = ["train", "--config", "tiny", "--data", "synthetic:0:2", "--steps", "1", "--quiet"]
    under = f"{f}/out"
    return {
        "segment: missing image": (["segment", miss, "--point", "1,1", "-o", f"{r}/o", "--model", m], "not found"),
        "segment: output under a file": ([*seg, "-o", under], "which is a file"),
        "segment: non-empty output": ([*seg, "-o", full], "not empty"),
        "segment: bad number": (["segment", img, "--point", "1,x", "-o", f"{r}/o"], "--point"),
        "segment: bad device": ([*seg, "-o", f"{r}/o", "--device", "foo"], "unknown device"),
        "segment: missing model": (["segment", img, "--point", "1,1", "-o", f"{r}/o", "--model", miss], "not found"),
        "track: missing video": (["track", miss, "--prompt", "0:1:5,5", "-o", f"{r}/o", "--model", m], miss),
        "track: output under a file": ([*trk, "-o", under], "which is a file"),
        "track: non-empty output": ([*trk, "-o", full], "not empty"),
        "track: bad number": ([*trk, "-o", f"{r}/o", "--max-frames", "-1"], "--max-frames"),
        "track: bad device": ([*trk, "-o", f"{r}/o", "--device", "foo"], "unknown device"),
        "segment-all: missing input": (["segment-all", miss, "-o", f"{r}/o", "--model", m], "not found"),
        "segment-all: output under a file": ([*sga, "-o", under], "which is a file"),
        "segment-all: non-empty output": ([*sga, "-o", full], "not empty"),
        "segment-all: bad number": ([*sga, "-o", f"{r}/o", "--points-per-batch", "0"], "--points-per-batch"),
        "segment-all: bad device": ([*sga, "-o", f"{r}/o", "--device", "foo"], "unknown device"),
        "track-all: missing video": (["track-all", miss, "-o", f"{r}/o", "--model", m], "not found"),
        "track-all: output under a file": ([*tra, "-o", under], "which is a file"),
        "track-all: non-empty output": ([*tra, "-o", full], "not empty"),
        "track-all: bad number": ([*tra, "-o", f"{r}/o", "--key-every", "0"], "--key-every"),
        "track-all: bad device": ([*tra, "-o", f"{r}/o", "--device", "foo"], "unknown device"),
        "eval score: missing folders": (["eval", "score", "--gt", miss, "--pred", miss, "-q"], miss),
        "eval score: output under a file": (["eval", "score", "--gt", r, "--pred", r, "--json", under], "is a file"),
        "eval score: bad number": (["eval", "score", "--gt", r, "--pred", r, "--procs", "0"], "--procs"),
        "eval vos: missing data": (["eval", "vos", "--data", miss, "-o", f"{r}/o", "--model", m], miss),
        "eval vos: output under a file": ([*vos, "-o", under], "which is a file"),
        "eval vos: non-empty output": ([*vos, "-o", full], "not empty"),
        "eval vos: bad device": ([*vos, "-o", f"{r}/o", "--device", "foo"], "unknown device"),
        "eval image: missing data": (["eval", "image", "--data", miss, "--model", m, "-q"], miss),
        "eval image: output under a file": (["eval", "image", "--data", r, "--json", under], "is a file"),
        "eval image: bad number": (["eval", "image", "--data", r, "--max-clicks", "0"], "--max-clicks"),
        "eval image: bad device": (["eval", "image", "--data", r, "--device", "cuda:x"], "device"),
        "train: missing data": (["train", "--config", "tiny", "--data", miss, "--steps", "1", "--out", f"{r}/t"],
                                "not found"),
        "train: output under a file": ([*trn, "--out", under], "is a file"),
        "train: bad number": ([*trn, "--out", f"{r}/t", "--steps", "0"], "--steps"),
        "train: bad device": ([*trn, "--out", f"{r}/t", "--device", "foo"], "unknown device"),
        "train-default: missing data": (["train-default", "--out", f"{r}/td", "--data", miss, "--quiet"], "not found"),
        "train-default: output under a file": (["train-default", "--out", under], "is a file"),
        "train-default: bad number": (["train-default", "--out", f"{r}/td", "--scale", "-1"], "--scale"),
        "train-default: bad device": (["train-default", "--out", f"{r}/td", "--device", "foo"], "unknown device"),
        "finetune-default: missing init": (["finetune-default", "--out", f"{r}/ft", "--init", miss], "not found"),
        "finetune-default: output is a file": (["finetune-default", "--out", f], "is a file"),
        "finetune-default: bad number": (["finetune-default", "--out", f"{r}/ft", "--minutes", "0"], "--minutes"),
        "finetune-default: bad device": (["finetune-default", "--out", f"{r}/ft", "--device", "foo"], "unknown device"),
        "synth: output under a file": (["synth", under, "--seeds", "0:1", "-q"], "is a file"),
        "synth: existing output": (["synth", full, "--seeds", "0:1", "-q"], "--force"),
        "synth: bad number": (["synth", f"{r}/s", "--seeds", "5:1", "-q"], "--seeds"),
        "batch: missing manifest": (["batch", "track", miss, "-o", f"{r}/b"], "not found"),
        "batch: bad manifest": (["batch", "track", f, "-o", f"{r}/b"], "line 1"),
        "batch: bad number": (["batch", "track", f, "-o", f"{r}/b", "--workers", "0"], "--workers"),
        "batch: missing data": (["batch", "eval", "vos", "--data", miss, "-o", f"{r}/b"], miss),
        "export: unknown config": (["export", "sam2.1-hiera-huge", "--random-weights", "-o", f"{r}/e"],
                                   "unknown model name"),
        "export: missing checkpoint": (["export", miss, "-o", f"{r}/e"], "checkpoint not found"),
        "export: existing output": (["export", "default", "-o", full], "is not empty"),
        "export: output under a file": (["export", "default", "-o", under], "is a file"),
        "export: bad opset": (["export", "default", "-o", f"{r}/e", "--opset", "12"], "opset must be"),
        "app: missing data": (["app", "--data", miss], "not a folder"),
        "app: data is a file": (["app", "--data", f], "not a folder"),
        "app: bad number": (["app", "--data", r, "--port", "70000"], "--port"),
        "app: bad precision": (["app", "--data", r, "--precision", "fp64"], "--precision"),
        "app: open to the network": (["app", "--data", r, "--host", "0.0.0.0"], "has no accounts"),
    }


CASES = list(_cases({k: f"<{k}>" for k in ("root", "image", "frames", "file", "full", "missing", "model")}))


def test_every_command_has_cases():
    sub = build_parser()._subparsers._group_actions[0].choices
    names = {f"eval {e}" for e in sub["eval"]._subparsers._group_actions[0].choices} | set(sub) - {"eval"}
    assert {c.split(":")[0] for c in CASES} == names


@pytest.mark.parametrize("case", CASES)
def test_bad_arguments_give_one_line_and_a_non_zero_exit(case, data, capsys):
    argv, words = _cases(data)[case]
    try:
        rc = main(argv)
    except SystemExit as e:  # argparse: usage and one "error:" line
        rc = e.code
        err = capsys.readouterr().err
        assert "Traceback" not in err and words in err.splitlines()[-1], err
    else:
        assert words in _one_line_error(capsys.readouterr().err)
    assert rc in (1, 2)
    assert _names(data["full"]) == ["notes.txt"] and data["file"].read_text() == "not a folder"


def test_cuda_without_cuda_is_refused_by_every_command(data, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    r = str(data["root"])
    for argv in (["segment", str(data["image"]), "--point", "1,1", "-o", f"{r}/o"],
                 ["track", str(data["frames"]), "--prompt", "0:1:1,1", "-o", f"{r}/o"],
                 ["segment-all", str(data["image"]), "-o", f"{r}/o"],
                 ["track-all", str(data["frames"]), "-o", f"{r}/o"],
                 ["eval", "vos", "--data", r, "-o", f"{r}/o"], ["eval", "image", "--data", r],
                 ["train", "--data", "synthetic", "--steps", "1", "--out", f"{r}/t"],
                 ["train-default", "--out", f"{r}/t"], ["finetune-default", "--out", f"{r}/t"]):
        with pytest.raises(SystemExit) as e:
            main([*argv, "--device", "cuda"])
        assert e.value.code == 2 and "CUDA is not available" in capsys.readouterr().err, argv


def test_oversized_image_is_one_line(data, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("SAMSTREAM_MAX_IMAGE_PIXELS", "1000")
    assert main(["segment", str(data["image"]), "--point", "1,1", "-o", str(tmp_path / "o"),
                 "--model", data["model"]]) == 2
    assert "over the limit of 1,000 pixels" in _one_line_error(capsys.readouterr().err)


def test_train_into_an_existing_run_and_resume_with_another_config(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    torch.save({"model": {}, "optimizer": {}, "scheduler": {}, "step": 1, "rng": {},
                "model_config": small_config().to_json()}, out / "checkpoint.pt")
    argv = ["train", "--config", "tiny", "--data", "synthetic:0:2", "--steps", "2", "--out", str(out), "--quiet",
            "--device", "cpu"]
    assert main(argv) == 2
    assert "pass --resume" in _one_line_error(capsys.readouterr().err)
    assert main([*argv, "--resume"]) == 2
    line = _one_line_error(capsys.readouterr().err)  # the training slice's message: the config, not a size dump
    assert "'test-mini'" in line and "model_config.json" in line


def test_subprocess_errors_have_no_traceback(data, tmp_path):
    """The installed entry point, as a user runs it: a few of the cases above in a real process."""
    image = np.zeros((8, 8, 3), np.uint8)
    Image.fromarray(image).save(tmp_path / "i.png")
    for argv, code in ((["track", str(data["frames"]), "--prompt", "0:1:5,5", "-o", str(data["full"]),
                         "--model", data["model"]], 2),
                       (["segment", str(tmp_path / "i.png"), "--point", "1,1", "-o", str(data["file"])], 2),
                       (["train", "--data", "synthetic", "--steps", "1", "--out", str(tmp_path), "--device", "x"], 2)):
        p = subprocess.run([sys.executable, "-m", "samstream.cli", *argv], capture_output=True, text=True,
                           timeout=120)
        assert p.returncode == code and "Traceback" not in p.stderr and "error:" in p.stderr, (argv, p.stderr)
