"""Images as users have them: 16-bit and float files keep their content, oversized and animated ones are refused
with a message that says what to do."""
from __future__ import annotations

import struct
import warnings
import zlib

import numpy as np
import pytest
from PIL import Image

from samstream.io import FormatError, read_label_png
from samstream.io import images as image_files
from samstream.transforms import pil_to_rgb, to_rgb_array

RNG = np.random.default_rng(0)
VALUES16 = np.array([[0, 255, 256, 4095], [32768, 40000, 65280, 65535]], dtype=np.uint16)


def write_png16(path, data: np.ndarray) -> None:
    """A 16-bit PNG written byte by byte: (H, W) gray, (H, W, 2) gray+alpha, (H, W, 3) RGB, (H, W, 4) RGBA."""
    h, w = data.shape[:2]
    color_type = 0 if data.ndim == 2 else {2: 4, 3: 2, 4: 6}[data.shape[2]]  # PNG colour types
    raw = b"".join(b"\0" + row.astype(">u2").tobytes() for row in data.reshape(h, -1))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, color_type, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    path.write_bytes(png)


def test_16bit_grayscale_png_written_by_pil_keeps_its_content(tmp_path):
    path = tmp_path / "gray16.png"
    Image.fromarray(VALUES16).save(path)
    assert Image.open(path).mode == "I;16"
    got = to_rgb_array(path)
    assert got.dtype == np.uint8 and got.shape == (2, 4, 3)
    assert np.array_equal(got, np.repeat((VALUES16 >> 8).astype(np.uint8)[..., None], 3, axis=2))
    assert got[1, 3, 0] == 255 and got[0, 1, 0] == 0  # 65535 -> 255; 255 is dark in 16-bit, not white


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_16bit_pngs_of_every_colour_type_keep_their_content(tmp_path, channels):
    data = RNG.integers(0, 65536, size=(6, 5, channels), dtype=np.uint16)
    path = tmp_path / f"c{channels}.png"
    write_png16(path, data[..., 0] if channels == 1 else data)
    got = to_rgb_array(path)
    want = (data >> 8).astype(np.uint8)
    colour = want[..., :1].repeat(3, axis=2) if channels <= 2 else want[..., :3]  # alpha is dropped
    assert np.array_equal(got, colour)


@pytest.mark.parametrize("mode", ["I;16", "I;16B", "I"])
def test_16bit_pil_images_keep_their_content(mode):
    arr = VALUES16.astype({"I;16": "<u2", "I;16B": ">u2", "I": np.int32}[mode])
    im = Image.fromarray(arr)
    assert im.mode == mode
    assert np.array_equal(to_rgb_array(im)[..., 1], (VALUES16 >> 8).astype(np.uint8))


def test_32bit_integer_image_outside_16bit_range_is_refused():
    with pytest.raises(ValueError, match=r"values 0\.\.70000.*0\.\.65535"):
        pil_to_rgb(Image.fromarray(np.array([[0, 70000]], dtype=np.int32)))


def test_float_images_are_scaled_from_0_1_or_refused():
    im = Image.fromarray(np.array([[0.0, 0.5, 1.0]], dtype=np.float32))
    assert im.mode == "F"
    assert to_rgb_array(im)[0, :, 0].tolist() == [0, 128, 255]
    with pytest.raises(ValueError, match=r"float image with values 0\.0\.\.255\.0; expected 0\.\.1"):
        to_rgb_array(Image.fromarray(np.array([[0.0, 255.0]], dtype=np.float32)))
    with pytest.raises(ValueError, match="NaN"):
        to_rgb_array(Image.fromarray(np.array([[0.0, np.nan]], dtype=np.float32)))


def test_8bit_images_are_unchanged(tmp_path):
    rgb = RNG.integers(0, 256, size=(5, 7, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    Image.fromarray(rgb[..., 0]).save(tmp_path / "l.png")
    assert np.array_equal(to_rgb_array(tmp_path / "rgb.png"), rgb)
    assert np.array_equal(to_rgb_array(tmp_path / "l.png"), rgb[..., :1].repeat(3, axis=2))
    assert np.array_equal(to_rgb_array(Image.fromarray(rgb).convert("RGBA")), rgb)


def test_oversized_image_is_refused_with_its_size_and_the_way_to_allow_it(tmp_path, monkeypatch):
    path = tmp_path / "big.png"
    Image.fromarray(np.zeros((40, 50, 3), np.uint8)).save(path)
    monkeypatch.setenv("SAMSTREAM_MAX_IMAGE_PIXELS", "1000")
    with pytest.raises(ValueError, match=r"big\.png: image is 50x40 = 2,000 pixels, over the limit of 1,000 pixels.*"
                                         r"set SAMSTREAM_MAX_IMAGE_PIXELS"):
        to_rgb_array(path)
    with pytest.raises(ValueError, match=r"big\.png: image is 50x40"):  # mask files too
        read_label_png(path)
    monkeypatch.setenv("SAMSTREAM_MAX_IMAGE_PIXELS", "2000")
    assert to_rgb_array(path).shape == (40, 50, 3)
    monkeypatch.setenv("SAMSTREAM_MAX_IMAGE_PIXELS", "none")
    assert to_rgb_array(path).shape == (40, 50, 3)


def test_limit_constant_applies_without_the_environment_variable(tmp_path, monkeypatch):
    path = tmp_path / "big.png"
    Image.fromarray(np.zeros((40, 50, 3), np.uint8)).save(path)
    monkeypatch.delenv("SAMSTREAM_MAX_IMAGE_PIXELS", raising=False)
    assert image_files.max_image_pixels() == image_files.MAX_IMAGE_PIXELS == 200_000_000
    monkeypatch.setattr(image_files, "MAX_IMAGE_PIXELS", 1999)
    with pytest.raises(ValueError, match="over the limit of 1,999 pixels"):
        to_rgb_array(path)


def test_pils_own_guard_gives_the_same_message_and_no_warning(tmp_path, monkeypatch):
    # PIL warns above its MAX_IMAGE_PIXELS and raises above twice that, before samstream sees the size.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    monkeypatch.setenv("SAMSTREAM_MAX_IMAGE_PIXELS", "1000")
    warn, error = tmp_path / "warn.png", tmp_path / "error.png"
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(warn)  # 1,600 pixels: PIL would warn
    Image.fromarray(np.zeros((50, 50, 3), np.uint8)).save(error)  # 2,500 pixels: PIL would raise
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with pytest.raises(ValueError, match=r"warn\.png: image is 40x40 = 1,600 pixels, over the limit of 1,000"):
            to_rgb_array(warn)
        with pytest.raises(ValueError, match=r"error\.png: image is 2,500 pixels, over the limit of 1,000"):
            to_rgb_array(error)


def test_bad_limit_setting_is_named(tmp_path, monkeypatch):
    path = tmp_path / "x.png"
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(path)
    for bad in ("lots", "-5", "0"):
        monkeypatch.setenv("SAMSTREAM_MAX_IMAGE_PIXELS", bad)
        with pytest.raises(ValueError, match=rf"SAMSTREAM_MAX_IMAGE_PIXELS='{bad}': expected a positive number"):
            to_rgb_array(path)


def test_animated_gif_is_refused_as_an_image(tmp_path):
    path = tmp_path / "anim.gif"
    frames = [Image.fromarray(np.full((8, 8, 3), v, np.uint8)) for v in (0, 255)]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    with pytest.raises(ValueError, match=r"anim\.gif is a GIF image of 2 frames.*read it as a video"):
        to_rgb_array(path)
    with Image.open(path) as im, pytest.raises(ValueError, match="2 frames"):
        to_rgb_array(im)


def test_still_gif_is_read(tmp_path):
    path = tmp_path / "still.gif"
    Image.fromarray(np.full((8, 8, 3), 255, np.uint8)).save(path)
    assert to_rgb_array(path).min() == 255


def test_undecodable_file_is_named(tmp_path):
    path = tmp_path / "junk.png"
    path.write_bytes(b"not an image")
    with pytest.raises(FormatError, match=r"junk\.png: cannot be decoded as an image"):
        to_rgb_array(path)
