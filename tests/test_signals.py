"""Termination signals end a command like Ctrl-C: its clean-up runs, finished frames agree across the PNGs,
masks.json and overlay.mp4, and no temporary file is left (samstream.cli.signals)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from samstream import save_model
from samstream.cli import main
from samstream.cli.signals import Interrupted, deferred, interruptible
from tests.helpers import small_model, synthetic_frames

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "samstream" / "assets" / "demo.mp4"  # 60 frames, 320x240


def _decoded_frames(path) -> int:
    import av

    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(video=0))


@pytest.fixture(autouse=True)
def default_signals():
    """SIGTERM and SIGHUP at their defaults, also where the tests run under nohup (which ignores SIGHUP, and
    an ignored signal stays ignored); children inherit this."""
    old = {s: signal.signal(s, signal.SIG_DFL) for s in (signal.SIGTERM, signal.SIGHUP)}
    yield
    for s, h in old.items():
        signal.signal(s, h)


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory) -> Path:
    """The demo clip played 4 times (240 frames): a run takes long enough to be stopped mid-way."""
    import av

    with av.open(str(DEMO)) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    path = tmp_path_factory.mktemp("clip") / "long.mp4"
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=24)
        s.width, s.height, s.pix_fmt = 320, 240, "yuv420p"
        for rgb in frames * 4:
            c.mux(s.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        c.mux(s.encode())
    return path


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGHUP"])
def test_signal_keeps_finished_frames_consistent(tmp_path, long_clip, sig):
    signum = getattr(signal, sig)
    out = tmp_path / "out"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "samstream.cli", "track", str(long_clip), "--prompt", "0:1:179,40",
                             "--prompt", "0:2:112,183", "-o", str(out), "--format", "png,json,mp4", "--quiet",
                             "--device", "cpu"], cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        while not (out / "00002.png").exists():
            assert proc.poll() is None, f"track ended before the signal: {proc.stderr.read()}"
            assert time.monotonic() < deadline, "no frames written in 300 s"
            time.sleep(0.02)
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + signum, err  # 143 for SIGTERM, 129 for SIGHUP, as a shell reports a kill
    assert f"interrupted by {sig}" in err
    pngs = sorted(p.name for p in out.glob("*.png"))
    k = len(pngs)
    assert 3 <= k < 240 and pngs == [f"{i:05d}.png" for i in range(k)]
    masks = json.loads((out / "masks.json").read_text())
    assert masks["masklet_frame_idx"] == list(range(k)) and len(masks["masklet"]) == k
    assert _decoded_frames(out / "overlay.mp4") == k
    assert sorted(p.name for p in out.iterdir()) == pngs + ["masks.json", "overlay.mp4"]  # no temporary files


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return save_model(small_model(), tmp_path_factory.mktemp("model") / "small.safetensors")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    d = tmp_path_factory.mktemp("frames")
    for i, f in enumerate(synthetic_frames(6)):
        Image.fromarray(f).save(d / f"{i:05d}.jpg")
    return d


def test_next_run_removes_temp_files_of_killed_runs(tmp_path, folder, ckpt):
    out = tmp_path / "out"
    out.mkdir()
    dead = _dead_pid()
    stale = [f".overlay.{dead}.tmp.mp4", f".00003.png.{dead}.0123abcd.tmp", f".masks.json.{dead}.89abcdef.tmp"]
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        kept = [f".overlay.{sleeper.pid}.tmp.mp4",  # a running process may still write it
                ".notes.tmp", f".other.{dead}.tmp.mp4"]  # not names our writers use for this run's files
        for name in stale + kept:
            (out / name).write_bytes(b"x")
        assert main(["track", str(folder), "--prompt", "0:1:20,20", "-o", str(out), "--model", str(ckpt),
                     "--format", "png,json,mp4", "--overwrite", "--quiet", "--device", "cpu"]) == 0
    finally:
        sleeper.kill()
        sleeper.wait()
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(kept + [f"{i:05d}.png" for i in range(6)] + ["masks.json", "overlay.mp4"])


def test_signal_inside_deferred_block_is_raised_when_it_ends():
    steps = []
    with pytest.raises(Interrupted) as info, interruptible():
        with deferred():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.01)  # the handler runs here (main thread, between bytecodes): deferred
            steps.append("finished")
        steps.append("after")  # not reached
    assert steps == ["finished"] and info.value.exit_code == 143 and isinstance(info.value, KeyboardInterrupt)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # restored


def test_signal_outside_deferred_interrupts_and_later_ones_wait_for_clean_up():
    cleaned = []
    with pytest.raises(Interrupted, match="SIGHUP"), interruptible():
        try:
            os.kill(os.getpid(), signal.SIGHUP)
            time.sleep(1)
            pytest.fail("not interrupted")
        finally:
            os.kill(os.getpid(), signal.SIGTERM)  # a second signal during clean-up is ignored
            time.sleep(0.01)
            cleaned.append(True)
    assert cleaned == [True]


def test_ignored_signals_stay_ignored():
    old = signal.signal(signal.SIGHUP, signal.SIG_IGN)  # as under nohup
    try:
        with interruptible():
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
            os.kill(os.getpid(), signal.SIGHUP)
            time.sleep(0.01)
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, old)


def test_main_returns_128_plus_signal(monkeypatch, capsys):
    import samstream.cli as cli

    def killed(argv):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(1)
        return 0

    monkeypatch.setattr(cli, "run", killed)
    assert cli.main([]) == 143
    assert "interrupted by SIGTERM" in capsys.readouterr().err


class _Writer:
    def __init__(self, fail_on_close: bool):
        self.fail, self.closed, self.written = fail_on_close, False, 0

    def write(self, result):
        self.written += 1

    def close(self):
        self.closed = True
        if self.fail:
            raise OSError("disk full")


def test_every_writer_is_closed_when_one_fails():
    from samstream.cli.args import write_results

    writers = [_Writer(True), _Writer(False)]
    with pytest.raises(OSError, match="disk full"):
        write_results(writers, range(3))
    assert [w.closed for w in writers] == [True, True] and [w.written for w in writers] == [3, 3]

    def frames():
        yield 1
        raise ValueError("frame 1 cannot be decoded")

    writers = [_Writer(True), _Writer(False)]
    with pytest.raises(ValueError, match="cannot be decoded"):  # the error in flight, not the close's
        write_results(writers, frames())
    assert [w.closed for w in writers] == [True, True] and [w.written for w in writers] == [1, 1]
