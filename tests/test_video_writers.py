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
