"""Video: every kind of frame source, lazy reading, bounded caches and clear errors."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image

from samstream.video import (
    FrameReadError,
    FrameUnavailableError,
    VideoPredictor,
    open_source,
)
from samstream.video.frames import FrameStore, LRUCache
from samstream.video.sources import (
    ArraySource,
    ImageFolderSource,
    IteratorSource,
    VideoFileSource,
    natural_key,
)
from tests.helpers import (
    BEDROOM_MP4,
    BLACKSWAN,
    remux_faststart,
    small_model,
    synthetic_frames,
    torch_threads,
    truncated_mp4,
)


@pytest.fixture(scope="module")
def model():
    return small_model()


def _decode_all(path, n=None):
    import av

    with av.open(str(path)) as c:
        out = []
        for f in c.decode(video=0):
            out.append(f.to_ndarray(format="rgb24"))
            if n is not None and len(out) >= n:
                break
        return out


def test_folder_with_any_names_is_read_in_natural_order(tmp_path, model):
    names = ["shot 10.jpg", "shot 2.png", "shot 1.webp", "Shot 3.JPG", "shot 21.jpeg"]
    src = sorted(BLACKSWAN.glob("*.jpg"))[:5]
    for f, name in zip(src, names):
        Image.open(f).save(tmp_path / name)
    (tmp_path / ".hidden.jpg").write_bytes(b"not an image")
    (tmp_path / "notes.txt").write_text("ignored")
    s = open_source(tmp_path)
    assert isinstance(s, ImageFolderSource) and s.num_frames == 5
    assert [p.name for p in s.files] == ["shot 1.webp", "shot 2.png", "Shot 3.JPG", "shot 10.jpg", "shot 21.jpeg"]
    assert np.array_equal(s.read(1), np.asarray(Image.open(tmp_path / "shot 2.png").convert("RGB")))
    assert sorted(["a10", "a2", "a1b", "a1"], key=natural_key) == ["a1", "a1b", "a2", "a10"]
    with torch_threads(1):
        vp = VideoPredictor(model, tmp_path, progress=False)
        assert vp.video_size == (480, 854)
        vp.add_points(0, 1, [[400, 250]])
        assert [r.frame_idx for r in vp.propagate()] == [0, 1, 2, 3, 4]


def test_mp4_is_decoded_lazily_with_random_access():
    s = open_source(BEDROOM_MP4)
    assert isinstance(s, VideoFileSource) and s.num_frames == 200 and round(s.fps) == 30
    ref = _decode_all(BEDROOM_MP4, 160)
    for i in (0, 1, 150, 10, 149, 151, 40):  # forward, far jumps, backward steps
        assert np.array_equal(s.read(i), ref[i]), i
    with pytest.raises(FrameUnavailableError, match="out of range"):
        s.read(200)
    s.close()


def test_backward_reading_through_the_store_decodes_each_frame_a_bounded_number_of_times(model):
    store = FrameStore(open_source(BEDROOM_MP4), model, frame_cache_items=32)
    ref = _decode_all(BEDROOM_MP4, 121)
    src = store.source
    calls = []
    orig = src.read_run
    src.read_run = lambda idx, lo: calls.append(idx) or orig(idx, lo)
    for i in range(120, 60, -1):
        assert np.array_equal(store.frame(i), ref[i])
    assert len(calls) <= 60 // src.chunk + 1  # one decode run per chunk of frames, not one per frame
    assert len(store.frames_cache) <= 32


def test_iterator_source_reads_on_demand_and_knows_its_end(model):
    frames = synthetic_frames(5)
    pulled = []

    def gen():
        for i, f in enumerate(frames):
            pulled.append(i)
            yield f

    store = FrameStore(open_source(gen()), model, frame_cache_items=3)
    assert isinstance(store.source, IteratorSource) and store.num_frames is None
    assert np.array_equal(store.frame(1), frames[1]) and pulled == [0, 1]
    assert store.has_frame(4) and not store.has_frame(5) and store.source.exhausted
    with pytest.raises(FrameUnavailableError, match="no longer available"):
        store.frame(0)  # fell out of the 3-frame cache; a one-pass stream cannot re-read it
    with pytest.raises(FrameUnavailableError, match="ended after 5 frames"):
        store.frame(7)


def test_truncated_mp4_reads_until_the_damage_then_names_file_and_frame(tmp_path):
    cut = truncated_mp4(tmp_path)
    s = open_source(cut)
    assert s.num_frames == 200  # what the file declares
    ref = _decode_all(BEDROOM_MP4, 11)
    assert np.array_equal(s.read(10), ref[10])
    with pytest.raises(FrameReadError, match=r"cut\.mp4: .*frame \d+.*truncated or corrupt"):
        for i in range(11, 200):
            s.read(i)


def test_unreadable_files_give_clear_errors(tmp_path):
    bad = tmp_path / "garbage.mp4"
    bad.write_bytes(np.random.default_rng(0).integers(0, 255, 5000, dtype=np.uint8).tobytes())
    with pytest.raises(FrameReadError, match=r"garbage.mp4: cannot be opened as a video"):
        open_source(bad)
    with pytest.raises(FileNotFoundError, match="video not found"):
        open_source(tmp_path / "missing.mp4")
    folder = tmp_path / "frames"
    folder.mkdir()
    with pytest.raises(FrameReadError, match="no image files"):
        open_source(folder)
    for i, f in enumerate(sorted(BLACKSWAN.glob("*.jpg"))[:3]):
        shutil.copy(f, folder / f"{i}.jpg")
    data = (folder / "1.jpg").read_bytes()
    (folder / "1.jpg").write_bytes(data[: len(data) // 3])  # a truncated JPEG
    s = open_source(folder)
    assert s.read(0).shape == (480, 854, 3)
    with pytest.raises(FrameReadError, match=r"1\.jpg \(frame 1\): cannot be decoded"):
        s.read(1)


def test_frames_of_another_size_and_bad_arrays_are_refused(model):
    frames = synthetic_frames(3) + [np.zeros((40, 64, 3), np.uint8)]
    store = FrameStore(ArraySource(frames), model)
    store.frame(0)
    with pytest.raises(FrameReadError, match="frame 3 is 64x40, but the video's frames are 64x48"):
        store.frame(3)
    with pytest.raises(ValueError, match=r"\(T, H, W, 3\)"):
        open_source(np.zeros((3, 48, 64), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        ArraySource([np.zeros((48, 64, 3), np.float32)]).read(0)
    import torch

    with pytest.raises(TypeError, match="not torch tensors"):
        open_source(torch.zeros(2, 48, 64, 3))
    assert open_source(np.stack(synthetic_frames(4))).num_frames == 4


def test_features_are_cached_in_a_bounded_lru(model):
    store = FrameStore(ArraySource(synthetic_frames(10)), model, feature_cache=3)
    with torch_threads(1):
        for i in [0, 1, 2, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9]:
            store.features(i)
    assert store.encode_count == 10 and len(store.features_cache) == 3
    cache = LRUCache(10, max_bytes=1000)
    for i in range(5):
        cache.put(i, np.zeros(300, np.uint8))
    assert len(cache) == 3 and cache.nbytes == 900 and 0 not in cache and 4 in cache


def test_container_without_a_frame_count(tmp_path):
    """Matroska stores no frame count: it is found from the packets, without decoding."""
    mkv = remux_faststart(BEDROOM_MP4, tmp_path / "clip.mkv", max_frames=30)
    s = open_source(mkv)
    assert s.num_frames == 30
    ref = _decode_all(mkv)
    assert len(ref) == 30
    assert np.array_equal(s.read(29), ref[29]) and np.array_equal(s.read(3), ref[3])


def test_unreadable_image_file_given_as_a_video_is_refused_when_opened(tmp_path, model):
    bad = tmp_path / "garbage.gif"
    bad.write_bytes(b"GIF89a" + bytes(range(200)))
    with pytest.raises(FrameReadError, match=r"garbage\.gif: cannot be decoded as an image or an animation"):
        open_source(bad)
    with pytest.raises(FrameReadError, match=r"garbage\.gif: cannot be decoded"):
        VideoPredictor(model, bad, progress=False)
