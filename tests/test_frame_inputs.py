"""Frame folders: frames decoded like images (16-bit content kept), one file per frame position."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from samstream.video.sources import FrameReadError, ImageFolderSource


def test_16_bit_png_frames_keep_their_content(tmp_path):
    rng = np.random.default_rng(0)
    grey = rng.integers(0, 65536, size=(12, 16), dtype=np.uint16)
    for i in range(2):
        Image.fromarray(grey).save(tmp_path / f"{i:05d}.png")
    assert Image.open(tmp_path / "00000.png").mode.startswith("I")
    frame = ImageFolderSource(tmp_path).read(1)
    assert frame.shape == (12, 16, 3) and frame.dtype == np.uint8
    np.testing.assert_array_equal(frame[..., 0], (grey >> 8).astype(np.uint8))
    assert frame.std() > 10  # not the all-white frame convert("RGB") gives


def test_same_frame_name_in_two_formats_is_refused(tmp_path):
    img = Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8))
    img.save(tmp_path / "00000.jpg")
    img.save(tmp_path / "00000.png")
    img.save(tmp_path / "00001.png")
    with pytest.raises(FrameReadError, match=r"00000\.jpg and 00000\.png"):
        ImageFolderSource(tmp_path)


def test_animated_frame_file_is_refused(tmp_path):
    frames = [Image.fromarray(np.full((8, 8, 3), v, dtype=np.uint8)) for v in (0, 200)]
    frames[0].save(tmp_path / "00000.gif", save_all=True, append_images=frames[1:])
    frames[0].save(tmp_path / "00001.png")
    src = ImageFolderSource(tmp_path)
    with pytest.raises(FrameReadError, match=r"frame 0.*2 frames"):
        src.read(0)
