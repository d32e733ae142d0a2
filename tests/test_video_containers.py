"""Video files of every container and codec FFmpeg reads open and give all their frames, in order, read
in order and at random; image files with several frames (GIF, APNG, WebP, TIFF) are videos of them all.

Every file is written in the test with PyAV (or PIL) itself. Frame i is a flat grey of brightness
16 + 8 i, so its index can be read back from its mean despite compression.
"""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from samstream import save_model
from samstream.cli import main
from samstream.io.png import read_label_png
from samstream.video import FrameReadError, FrameUnavailableError, VideoPredictor, open_source
from samstream.video.frames import FrameStore
from samstream.video.sources import ImageFileSource, VideoFileSource
from tests.helpers import small_model, torch_threads

av = pytest.importorskip("av")

N = 24


def _frame(i: int) -> np.ndarray:
    return np.full((48, 64, 3), 16 + 8 * i, np.uint8)


def _index(frame: np.ndarray) -> int:
    return round((float(frame.mean()) - 16) / 8)


def _long_frame(i: int) -> np.ndarray:
    """Frame i of up to 625: i % 25 in the top half's brightness, i // 25 in the bottom half's."""
    a = np.empty((48, 64, 3), np.uint8)
    a[:24], a[24:] = 16 + 8 * (i % 25), 16 + 8 * (i // 25)
    return a


def _long_index(frame: np.ndarray) -> int:
    return _index(frame[:20]) + 25 * _index(frame[28:])


def _has_encoder(codec: str) -> bool:
    try:
        av.codec.Codec(codec, "w")
    except Exception:
        return False
    return True


# (file name, container format (None: from the name), codec, pixel format)
CASES = [
    ("mpeg4.mp4", None, "mpeg4", "yuv420p"),
    ("h264.mp4", None, "libx264", "yuv420p"),
    ("hevc.mp4", None, "libx265", "yuv420p"),
    ("h264.mkv", None, "libx264", "yuv420p"),
    ("mpeg4.mkv", None, "mpeg4", "yuv420p"),
    ("ffv1.mkv", None, "ffv1", "yuv420p"),
    ("mpeg4.avi", None, "mpeg4", "yuv420p"),
    ("mjpeg.avi", None, "mjpeg", "yuvj420p"),
    ("h264.mov", None, "libx264", "yuv420p"),
    ("qtrle.mov", None, "qtrle", "rgb24"),
    ("vp8.webm", None, "libvpx", "yuv420p"),
    ("vp9.webm", None, "libvpx-vp9", "yuv420p"),
    ("mpeg2.ts", None, "mpeg2video", "yuv420p"),
    ("h264.ts", None, "libx264", "yuv420p"),
    ("mpeg2.m2ts", "mpegts", "mpeg2video", "yuv420p"),
    ("mpeg1.mpg", "mpeg", "mpeg1video", "yuv420p"),
    ("mpeg2.mpg", "mpeg", "mpeg2video", "yuv420p"),
    ("flv1.flv", None, "flv", "yuv420p"),
    ("wmv2.wmv", "asf", "wmv2", "yuv420p"),
    ("raw.y4m", "yuv4mpegpipe", "rawvideo", "yuv420p"),
    ("vp8.ivf", "ivf", "libvpx", "yuv420p"),
    ("mpeg4.m4v", "m4v", "mpeg4", "yuv420p"),
    ("h264.h264", "h264", "libx264", "yuv420p"),  # a raw stream: no timestamps at all
    ("hevc.hevc", "hevc", "libx265", "yuv420p"),
]


def write_video(path, fmt, codec, pix_fmt, n=N, frame=_frame):
    """n frames through PyAV: short groups of pictures with B-frames where the codec has them, so
    that reading at random seeks to keyframes inside the file."""
    if not _has_encoder(codec):
        pytest.skip(f"this PyAV build has no {codec} encoder")
    with av.open(str(path), "w", format=fmt) as c:
        s = c.add_stream(codec, rate=25)
        s.width, s.height, s.pix_fmt = 64, 48, pix_fmt
        s.bit_rate = 4_000_000  # flat frames keep their brightness
        if codec in ("mpeg4", "mpeg2video", "mpeg1video", "libx264", "flv", "wmv2"):
            s.gop_size = 8
        if codec in ("mpeg4", "mpeg2video", "mpeg1video"):
            s.codec_context.max_b_frames = 2
        if codec == "libx265":
            s.options = {"x265-params": "keyint=8:log-level=none"}
        for i in range(n):
            for p in s.encode(av.VideoFrame.from_ndarray(frame(i), format="rgb24").reformat(format=pix_fmt)):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def decode_all(path) -> list[np.ndarray]:
    """The frames as decoding the whole file with PyAV gives them: what every read must match."""
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def _random_order(n: int) -> list[int]:
    return [n - 1, n - 6, n - 11, 3, 0, n // 2, n // 2 - 5, 1, n - 2, n - 7, n // 2 + 1, 2]


def check_all_frames(src, ref) -> None:
    """Every frame, read in order, at random (the seek path) and backwards in runs, is the reference's."""
    n = len(ref)
    assert src.num_frames == n
    for k in range(n):
        assert np.array_equal(src.read(k), ref[k]), f"in order: frame {k}"
    for k in _random_order(n):
        assert np.array_equal(src.read(k), ref[k]), f"at random: frame {k}"
    for k in range(n - 1, -1, -1):
        for j, f in src.fetch(k):
            assert np.array_equal(f, ref[j]), f"backwards: frame {j} (fetching {k})"


@pytest.mark.parametrize("name,fmt,codec,pix_fmt", CASES, ids=[c[0] for c in CASES])
def test_every_container_gives_all_its_frames_in_order(tmp_path, name, fmt, codec, pix_fmt):
    path = write_video(tmp_path / name, fmt, codec, pix_fmt)
    ref = decode_all(path)
    assert [_index(f) for f in ref] == list(range(N))  # the file holds what was written
    src = open_source(path)
    assert isinstance(src, VideoFileSource)
    check_all_frames(src, ref)
    src.close()


@pytest.mark.parametrize("name,codec", [("mpeg2.ts", "mpeg2video"), ("h264.ts", "libx264"),
                                        ("h264.mp4", "libx264")])
def test_stream_cut_inside_a_group_of_pictures_starts_at_its_first_decodable_frame(tmp_path, name, codec):
    """A recording cut mid-stream begins with frames that depend on what was cut off: the video is what
    decodes, from the first keyframe on (as any player shows it), not an error at frame 0."""
    full = write_video(tmp_path / f"full_{name}", None, codec, "yuv420p")
    cut = tmp_path / f"cut_{name}"
    with av.open(str(full)) as inp, av.open(str(cut), "w") as out:
        s = inp.streams.video[0]
        o = out.add_stream_from_template(s)
        for n, pk in enumerate(inp.demux(s)):
            if pk.dts is not None and n >= 3:  # drop the first keyframe and two frames after it
                pk.stream = o
                out.mux(pk)
    ref = decode_all(cut)
    assert 0 < len(ref) < N - 3 and _index(ref[0]) > 3  # the frames that depended on the cut are dropped
    src = open_source(cut)
    check_all_frames(src, ref)
    assert [_index(src.read(k)) for k in range(len(ref))] == list(range(N - len(ref), N))


@pytest.mark.parametrize("how", ["repeated", "reordered"])
def test_timestamps_that_disagree_with_the_decoded_order_do_not_name_frames(tmp_path, how):
    """A muxer's wrong timestamp (one frame given its neighbour's, or one past it): frames are still the
    decoded order's, at every index, whichever way they are read."""
    src = write_video(tmp_path / "src.mkv", None, "mpeg4", "yuv420p")
    dst = tmp_path / f"{how}.mkv"
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        s = inp.streams.video[0]
        o = out.add_stream_from_template(s)
        packets = [pk for pk in inp.demux(s) if pk.size]
        a, b = sorted(range(len(packets)), key=lambda k: packets[k].pts)[10:12]  # frames 10 and 11
        packets[a].pts = packets[b].pts + (0 if how == "repeated" else 1)
        for pk in packets:
            pk.stream = o
            out.mux(pk)
    ref = decode_all(dst)
    assert [_index(f) for f in ref] == list(range(N))
    check_all_frames(open_source(dst), ref)
    src2 = open_source(dst)  # the seek path first, before any frame was decoded in order
    assert [_index(src2.read(k)) for k in (N - 1, 12, 11, 10, 9, 0)] == [N - 1, 12, 11, 10, 9, 0]


@pytest.mark.parametrize("name,fmt,codec", [("long.ts", None, "mpeg2video"), ("long.mpg", "mpeg", "mpeg1video"),
                                            ("long.mp4", None, "libx264")])
def test_long_file_is_read_backwards_in_runs(tmp_path, name, fmt, codec):
    """600 frames, a keyframe every 8: reverse tracking (through the frame store, which reads runs) and far
    jumps give the decoded order's frames (an MPEG-TS seek lands keyframes after its target)."""
    path = write_video(tmp_path / name, fmt, codec, "yuv420p", n=600, frame=_long_frame)
    ref = decode_all(path)
    assert [_long_index(f) for f in ref] == list(range(600))
    store = FrameStore(open_source(path), small_model(), frame_cache_items=32)
    for k in range(599, -1, -1):
        f = store.frame(k)
        assert _long_index(f) == k and np.array_equal(f, ref[k]), k
    src = store.source
    for k in (0, 590, 300, 301, 17, 450, 449):
        assert np.array_equal(src.read(k), ref[k]), k


def test_ts_file_tracks_backwards_through_the_store(tmp_path):
    """Reverse tracking reads through the frame store: each frame is the one at its index."""
    path = write_video(tmp_path / "clip.ts", None, "mpeg2video", "yuv420p")
    store = FrameStore(open_source(path), small_model(), frame_cache_items=8)
    assert [_index(store.frame(k)) for k in range(N - 1, -1, -1)] == list(range(N - 1, -1, -1))


def test_truncated_ts_gives_the_frames_it_holds(tmp_path):
    """A TS cut in half (a recording stopped): every frame it still holds is read, in order; the frames
    whose data was cut off are not in the video, and asking past its end says so."""
    path = write_video(tmp_path / "clip.ts", None, "mpeg2video", "yuv420p")
    data = path.read_bytes()
    cut = tmp_path / "cut.ts"
    cut.write_bytes(data[: len(data) // 2])
    ref = decode_all(cut)
    assert 5 < len(ref) < N
    src = open_source(cut)
    check_all_frames(src, ref)
    shown = [_index(src.read(k)) for k in range(len(ref))]
    assert shown[0] == 0 and shown == sorted(set(shown))
    with pytest.raises(FrameUnavailableError, match=f"out of range: .*cut.ts has {len(ref)} frames"):
        src.read(len(ref))


# ------------------------------------------------------------------------------------------ image files
def _anim_frames(n: int) -> list[np.ndarray]:
    """Flat grey (index in the brightness) with a red square moving right: GIF and APNG then store most
    frames as the changed rectangle only, which reading must draw over the frame before."""
    out = []
    for i in range(n):
        a = _frame(i)
        a[10:20, 2 * i:2 * i + 10] = (200, 30, 30)
        out.append(a)
    return out


def _save_animation(path, frames, **kw):
    ims = [Image.fromarray(f) for f in frames]
    ims[0].save(path, save_all=True, append_images=ims[1:], duration=50, **kw)
    return path


@pytest.mark.parametrize("name,kw", [("anim.gif", {"loop": 0}), ("anim.png", {}), ("anim.webp", {"lossless": True}),
                                     ("stack.tif", {})])
def test_animated_image_is_a_video_of_all_its_frames(tmp_path, name, kw):
    frames = _anim_frames(20)
    path = _save_animation(tmp_path / name, frames, **kw)
    src = open_source(path)
    assert isinstance(src, ImageFileSource) and src.num_frames == 20
    if not name.endswith(".tif"):
        assert src.fps == 20.0  # 50 ms a frame
    check_all_frames(src, frames)


def test_animated_gif_matches_ffmpeg(tmp_path):
    """PIL's frames of a GIF are FFmpeg's (the two decoders agree on how frames are drawn over each other)."""
    path = _save_animation(tmp_path / "anim.gif", _anim_frames(20), loop=0, optimize=True)
    src = open_source(path)
    check_all_frames(src, decode_all(path))


@pytest.fixture(scope="module")
def model():
    return small_model()


def test_animated_gif_is_tracked_through_every_frame(tmp_path, model):
    path = _save_animation(tmp_path / "anim.gif", _anim_frames(20), loop=0)
    with torch_threads(1):
        vp = VideoPredictor(model, path, progress=False)
        assert vp.num_frames == 20 and vp.video_size == (48, 64)
        vp.add_points(0, 1, [[14, 15]])
        assert [r.frame_idx for r in vp.propagate()] == list(range(20))


def test_track_cli_on_an_animated_gif_writes_every_frame(tmp_path, model):
    path = _save_animation(tmp_path / "anim.gif", _anim_frames(20), loop=0)
    ckpt = save_model(model, tmp_path / "small.safetensors")
    out = tmp_path / "out"
    assert main(["track", str(path), "--prompt", "0:1:14,15", "-o", str(out), "--model", str(ckpt),
                 "--format", "png", "--quiet", "--device", "cpu"]) == 0
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert pngs == [f"{i:05d}.png" for i in range(20)]
    assert read_label_png(out / "00019.png")[0].shape == (48, 64)


@pytest.mark.parametrize("name", ["still.gif", "still.png"])
def test_still_image_is_a_video_of_one_frame(tmp_path, model, name):
    """A still image given as a video is a video of that one frame (as a list of one frame is)."""
    frame = _anim_frames(4)[3]
    path = tmp_path / name
    Image.fromarray(frame).save(path)
    src = open_source(path)
    assert isinstance(src, ImageFileSource) and src.num_frames == 1 and src.fps is None
    assert np.array_equal(src.read(0), frame)
    with torch_threads(1):
        vp = VideoPredictor(model, path, progress=False)
        vp.add_points(0, 1, [[14, 15]])
        assert [r.frame_idx for r in vp.propagate()] == [0]


def test_damaged_gif_reads_until_the_damage_then_names_file_and_frame(tmp_path):
    path = _save_animation(tmp_path / "anim.gif", _anim_frames(20), loop=0)
    data = path.read_bytes()
    cut = tmp_path / "cut.gif"
    cut.write_bytes(data[: len(data) // 2])
    src = open_source(cut)
    assert np.array_equal(src.read(0), _anim_frames(1)[0])
    with pytest.raises(FrameReadError, match=r"cut\.gif: frame \d+ of \d+ cannot be decoded.*truncated or corrupt"):
        for k in range(src.num_frames):
            src.read(k)


@pytest.mark.parametrize("name,fmt,codec", [("clip.ts", None, "mpeg2video"), ("clip.mpg", "mpeg", "mpeg1video")])
def test_track_cli_on_ts_and_mpg_tracks_every_frame_both_ways(tmp_path, model, name, fmt, codec):
    path = write_video(tmp_path / name, fmt, codec, "yuv420p")
    ckpt = save_model(model, tmp_path / "small.safetensors")
    out = tmp_path / "out"
    assert main(["track", str(path), "--prompt", f"{N // 2}:1:30,20", "--direction", "both", "-o", str(out),
                 "--model", str(ckpt), "--format", "png", "--quiet", "--device", "cpu"]) == 0
    assert sorted(p.name for p in out.glob("*.png")) == [f"{i:05d}.png" for i in range(N)]
