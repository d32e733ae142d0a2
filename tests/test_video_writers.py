"""Video: writers of tracking results (indexed PNG, SA-V style JSON, overlay mp4), atomic and incremental."""
from __future__ import annotations

import numpy as np
import pytest

from samstream.io.png import read_label_png
from samstream.io.rle import decode_rle
from samstream.io.sav import load_sav_json
from samstream.video.predictor import FrameResult
from samstream.video.writers import (
    JsonWriter,
    OverlayVideoWriter,
    PngWriter,
    overlay_frame,
)
from tests.helpers import synthetic_frames


def _result(t: int, ids=(1, 2), h=48, w=64) -> FrameResult:
    logits = np.full((len(ids), h, w), -5.0, np.float32)
    for k in range(len(ids)):
        logits[k, 5 + 10 * k: 15 + 10 * k, 5 + t: 25 + t] = 3.0 + k
    return FrameResult(t, list(ids), logits, np.array([1.5] * len(ids), np.float32))


def _smooth_frames(n: int) -> list[np.ndarray]:
    """Flat frames (random texture would be smeared by the codec's chroma subsampling)."""
    return [np.full((48, 64, 3), (90, 110, 130), np.uint8) for _ in range(n)]


def _decode_video(path):
    import av

    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def test_png_writer_writes_indexed_label_maps(tmp_path):
    w = PngWriter(tmp_path / "out")
    r = _result(3)
    p = w.write(r)
    assert p.name == "00003.png"
    labels, palette = read_label_png(p)
    assert np.array_equal(labels, r.label_map()) and set(np.unique(labels)) == {0, 1, 2}
    assert palette is not None and tuple(palette[1]) == (128, 0, 0)  # DAVIS colours
    assert w.fill_missing(5, (48, 64)) == 4 and sorted(x.name for x in (tmp_path / "out").iterdir()) == \
        [f"{i:05d}.png" for i in range(5)]
    with pytest.raises(ValueError, match=r"1..255"):
        w.write(_result(0, ids=(1, 300)))
    assert not list((tmp_path / "out").glob(".*"))  # no temporary files left


def test_json_writer_is_sav_style_and_flushed_atomically(tmp_path):
    path = tmp_path / "masks.json"
    w = JsonWriter(path, "clip", (48, 64), 6, flush_seconds=0.0)
    for t in (2, 0, 1):
        w.write(_result(t))
    assert path.exists()  # flushed while running, not only at the end
    w.write(_result(1, ids=(1, 2, 3)))  # a later object joins
    w.close()
    m = load_sav_json(path)
    assert m.masklet_ids == [1, 2, 3] and m.video_frame_count == 6 and (m.height, m.width) == (48, 64)
    assert m.meta["masklet_frame_idx"] == [0, 1, 2]
    assert np.array_equal(decode_rle(m.rles[2][1]), _result(2).masks[1])
    assert not decode_rle(m.rles[0][2]).any()  # object 3 had no result on frame 0


def test_overlay_video_in_order_and_recomposed(tmp_path):
    frames = _smooth_frames(5)
    w = OverlayVideoWriter(tmp_path / "a.mp4", lambda i: frames[i], fps=10)
    for t in range(5):
        w.write(_result(t))
    w.close()
    got = _decode_video(tmp_path / "a.mp4")
    assert len(got) == 5 and got[0].shape == (48, 64, 3)
    exp = overlay_frame(frames[2], _result(2).label_map())
    assert np.abs(got[2].astype(int) - exp).mean() < 6  # lossy codec
    inside = (10, 17)  # object 1 on frame 2: tinted dark red, clearly not the plain frame
    assert np.abs(exp[inside].astype(int) - frames[2][inside]).max() > 40
    assert np.abs(got[2][inside].astype(int) - exp[inside]).max() < 15

    # frames arriving backward: composed at close from the label PNGs, in frame order
    png = PngWriter(tmp_path / "labels")
    w = OverlayVideoWriter(tmp_path / "b.mp4", lambda i: frames[i], fps=10, labels_dir=tmp_path / "labels")
    for t in (4, 3, 2, 1, 0):
        png.write(_result(t))
        w.write(_result(t))
    w.close()
    got = _decode_video(tmp_path / "b.mp4")
    assert len(got) == 5 and np.abs(got[4].astype(int) - overlay_frame(frames[4], _result(4).label_map())).mean() < 6


def test_interrupted_overlay_keeps_finished_frames(tmp_path):
    frames = synthetic_frames(6)
    w = OverlayVideoWriter(tmp_path / "c.mp4", lambda i: frames[i], fps=10)
    with pytest.raises(KeyboardInterrupt):
        try:
            for t in range(6):
                if t == 3:
                    raise KeyboardInterrupt
                w.write(_result(t))
        finally:
            w.close()
    assert len(_decode_video(tmp_path / "c.mp4")) == 3
    assert [p.name for p in tmp_path.iterdir()] == ["c.mp4"]  # no temporary file left behind


def test_writers_remove_temp_files_that_killed_runs_left(tmp_path):
    import os
    import subprocess
    import sys

    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    dead, live = p.pid, os.getppid()  # a finished process; one still running (it may still be writing)
    stale = [f".00007.png.{dead}.0123abcd.tmp", f".masks.json.{dead}.89abcdef.tmp", f".overlay.{dead}.tmp.mp4",
             f".overlay.{os.getpid()}.tmp.mp4"]  # this process's own: nothing is half-written before a writer opens
    kept = [f".00007.png.{live}.0123abcd.tmp", f".overlay.{live}.tmp.mp4",
            f".notes.txt.{dead}.0123abcd.tmp", f".other.{dead}.tmp.mp4", ".cache.tmp", "keep.txt"]  # not ours
    for name in stale + kept:
        (tmp_path / name).write_bytes(b"x")
    PngWriter(tmp_path)
    assert (tmp_path / stale[1]).exists() and not (tmp_path / stale[0]).exists()  # each writer: its own files
    JsonWriter(tmp_path / "masks.json", "clip", (48, 64), 6)
    OverlayVideoWriter(tmp_path / "overlay.mp4", lambda i: None)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(kept)


def test_writers_closed_after_an_interruption_agree(tmp_path):
    """The JSON is flushed at close (not only every flush_seconds): PNGs, JSON rows and overlay frames agree."""
    frames = _smooth_frames(6)
    png = PngWriter(tmp_path)
    writers = [png, JsonWriter(tmp_path / "masks.json", "clip", (48, 64), 6, flush_seconds=3600),
               OverlayVideoWriter(tmp_path / "overlay.mp4", lambda i: frames[i], fps=10, labels_dir=tmp_path)]
    with pytest.raises(KeyboardInterrupt):
        try:
            for t in range(6):
                if t == 4:
                    raise KeyboardInterrupt
                for w in writers:
                    w.write(_result(t))
        finally:
            for w in writers:
                w.close()
    assert sorted(p.name for p in tmp_path.glob("*.png")) == [f"{i:05d}.png" for i in range(4)]
    assert load_sav_json(tmp_path / "masks.json").meta["masklet_frame_idx"] == [0, 1, 2, 3]
    assert len(_decode_video(tmp_path / "overlay.mp4")) == 4
    assert not list(tmp_path.glob(".*"))
