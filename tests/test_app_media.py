"""Media for the browser: display sizes, frame JPEGs and their cache, mask overlays, colours."""
from __future__ import annotations

import io
import threading

import numpy as np
import pytest
from PIL import Image

from samstream.app import media
from samstream.app.media import FrameImages, default_colour, display_size, overlay_png
from samstream.io.palette import davis_palette


def decode(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))


@pytest.fixture
def frames_dir(tmp_path):
    """Five 200x100 PNG frames; frame i is flat grey 40 * i."""
    folder = tmp_path / "seq"
    folder.mkdir()
    for i in range(5):
        Image.fromarray(np.full((100, 200, 3), 40 * i, np.uint8)).save(folder / f"{i:05d}.png")
    return folder


def test_display_size():
    assert display_size(1920, 1080, 1280) == (1280, 720)
    assert display_size(1080, 1920, 1280) == (720, 1280)
    assert display_size(640, 480, 1280) == (640, 480)  # never upscaled
    assert display_size(1000, 3, 100) == (100, 1)  # never 0
    with pytest.raises(ValueError):
        display_size(100, 100, 0)


def test_jpeg_sizes_content_and_rgb(frames_dir):
    fi = FrameImages(frames_dir)
    assert fi.num_frames == 5
    small = decode(fi.jpeg(3, max_side=50))
    assert small.shape == (25, 50, 3)
    assert abs(float(small.mean()) - 120) < 3  # frame 3, not another
    assert decode(fi.jpeg(2, max_side=1280)).shape == (100, 200, 3)
    rgb = fi.rgb(4)
    assert rgb.shape == (100, 200, 3) and rgb.dtype == np.uint8 and (rgb == 160).all()
    rgb[:] = 0  # the caller's copy: the cached frame stays as read
    assert (fi.rgb(4) == 160).all()
    with pytest.raises(IndexError):
        fi.jpeg(5)
    with pytest.raises(ValueError):
        fi.jpeg(0, quality=0)
    fi.close()


def test_jpeg_cache_is_lru_keyed_by_frame_and_size(frames_dir, monkeypatch):
    fi = FrameImages(frames_dir, cache_frames=2)
    a = fi.jpeg(0, max_side=100)
    reads = []
    real_read = fi._src.read
    monkeypatch.setattr(fi._src, "read", lambda i: reads.append(i) or real_read(i))
    fi._raw.clear()  # count source reads from here on
    assert fi.jpeg(0, max_side=100) is a  # cached bytes, no decode
    assert fi.jpeg(0, max_side=500) == fi.jpeg(0, max_side=200)  # both full size: one entry
    assert reads == [0]
    assert len(fi._jpegs) == 2
    fi.jpeg(1, max_side=100)  # evicts the least recently used: frame 0 at 100 px
    assert (0, (100, 50), 85) not in fi._jpegs and (0, (200, 100), 85) in fi._jpegs
    assert len(fi._jpegs) == 2
    fi.close()


def test_jpeg_is_thread_safe(frames_dir):
    fi = FrameImages(frames_dir, cache_frames=3)
    errors, results = [], {}

    def work(k):
        try:
            for i in range(10):
                t = (k + i) % 5
                results[k, i] = (t, float(decode(fi.jpeg(t, max_side=60 + t)).mean()))
        except Exception as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    assert all(abs(mean - 40 * t) < 3 for t, mean in results.values())
    fi.close()


def test_video_file_frames(tmp_path):
    from tests.helpers import write_mp4

    fi = FrameImages(write_mp4(tmp_path / "v.mp4", n=6, h=32, w=48))
    for t in (5, 1, 3):  # backward jumps too
        assert abs(float(fi.rgb(t).mean()) - 20 * t) < 4
    assert decode(fi.jpeg(2, max_side=24)).shape == (16, 24, 3)
    fi.close()


def test_default_colour_is_the_davis_palette():
    assert default_colour(1) == "#800000"
    pal = davis_palette()
    r, g, b = (int(c) for c in pal[7])
    assert default_colour(7) == f"#{r:02x}{g:02x}{b:02x}"
    with pytest.raises(ValueError):
        default_colour(256)


def test_overlay_pixels():
    mask = np.zeros((40, 80), bool)
    mask[10:30, 20:60] = True  # a 40x20 box, full resolution
    png = overlay_png({3: mask}, {3: "#10ff20"}, (80, 40), alpha=100)
    img = Image.open(io.BytesIO(png))
    assert img.mode == "RGBA" and img.size == (80, 40)
    px = np.asarray(img)
    assert (px[20, 40] == (16, 255, 32, 100)).all()  # inside: colour at alpha
    assert (px[~mask][:, 3] == 0).all()  # outside: transparent
    contour = px[..., 3] == 255
    ring = mask.copy()
    ring[12:28, 22:58] = False  # the 2-px inner edge of the box
    assert (contour == ring).all()
    assert (px[contour][:, :3] == (16, 255, 32)).all()
    assert ((px[..., 3] == 100) == (mask & ~ring)).all()


def test_overlay_downscale_order_default_colour_and_border():
    big = np.zeros((400, 800), bool)
    big[100:300, 200:600] = True
    other = np.zeros((400, 800), bool)
    other[:, :400] = True  # touches the frame's border on three sides
    px = np.asarray(Image.open(io.BytesIO(overlay_png({1: big, 2: other}, {1: "#0000ff"}, (80, 40)))))
    assert px.shape == (40, 80, 4)
    r2, g2, b2 = (int(c) for c in davis_palette()[2])
    assert (px[20, 50] == (0, 0, 255, 128)).all()  # object 1 alone, at the downscaled place
    assert (px[20, 30] == (r2, g2, b2, 128)).all()  # both: the later object is drawn over
    assert (px[20, 39] == (r2, g2, b2, 255)).all()  # object 2's edge inside the frame
    assert (px[0, 10] == (r2, g2, b2, 128)).all()  # the frame's border is no object edge
    assert (px[20, 70] == 0).all()
    assert (np.asarray(Image.open(io.BytesIO(overlay_png({}, {}, (8, 4))))) == 0).all()
    with pytest.raises(ValueError):
        overlay_png({1: big}, {1: "red"}, (80, 40))


def test_overlay_is_fast_at_720p():
    import time

    masks = {}
    for k in range(1, 5):
        m = np.zeros((1080, 1920), bool)
        m[100 * k: 100 * k + 400, 300 * k: 300 * k + 500] = True
        masks[k] = m
    overlay_png(masks, {}, (1280, 720))
    t = time.perf_counter()
    overlay_png(masks, {}, (1280, 720))
    assert time.perf_counter() - t < 0.5  # ~40 ms here; a per-pixel loop takes minutes


def test_raw_cache_is_bounded(frames_dir, monkeypatch):
    monkeypatch.setattr(media, "RAW_CACHE_BYTES", 2 * 100 * 200 * 3)
    fi = FrameImages(frames_dir)
    for t in range(5):
        fi.rgb(t)
    assert sorted(fi._raw) == [3, 4]
    fi.close()
