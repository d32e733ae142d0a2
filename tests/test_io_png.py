"""Label / binary PNGs, the DAVIS palette, atomic writes and the DAVIS / SA-V folder layouts."""
from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from samstream.io import (
    FormatError,
    atomic_write_bytes,
    davis_palette,
    read_binary_png,
    read_davis_sequence,
    read_label_png,
    read_sav_video,
    write_binary_png,
    write_davis_sequence,
    write_label_png,
    write_sav_video,
)
from tests.helpers import DAVIS16_ANN


def test_davis_palette_known_colours():
    pal = davis_palette()
    assert pal.shape == (256, 3) and pal.dtype == np.uint8
    # PASCAL VOC / DAVIS colours: background black, 1 dark red, 2 green, 3 olive, 4 navy; void 255
    assert pal[:5].tolist() == [[0, 0, 0], [128, 0, 0], [0, 128, 0], [128, 128, 0], [0, 0, 128]]
    assert pal[255].tolist() == [224, 224, 192]


def test_label_round_trip_with_davis_palette(tmp_path):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 256, size=(37, 53)).astype(np.uint8)
    p = write_label_png(tmp_path / "a" / "00000.png", labels)
    img = Image.open(p)
    assert img.mode == "P"  # indexed, as DAVIS expects
    got, pal = read_label_png(p)
    assert np.array_equal(got, labels) and np.array_equal(pal, davis_palette())
    assert not [n for n in os.listdir(tmp_path / "a") if n.endswith(".tmp")]


def test_rewrite_keeps_the_input_palette(tmp_path):
    labels = np.zeros((8, 8), np.uint8)
    labels[2:5, 2:5] = 1
    labels[6, 6] = 2
    img = Image.frombytes("P", (8, 8), labels.tobytes())
    custom = [0, 0, 0, 10, 20, 30, 40, 50, 60]
    img.putpalette(custom)
    img.save(tmp_path / "in.png")
    got, pal = read_label_png(tmp_path / "in.png")
    write_label_png(tmp_path / "out.png", got, palette=pal)
    again, pal2 = read_label_png(tmp_path / "out.png")
    assert np.array_equal(again, labels)
    assert pal2[:3].tolist() == [[0, 0, 0], [10, 20, 30], [40, 50, 60]]


def test_grayscale_and_one_bit_images_read_as_labels(tmp_path):
    a = np.array([[0, 3], [7, 255]], np.uint8)
    Image.fromarray(a).save(tmp_path / "l.png")
    got, pal = read_label_png(tmp_path / "l.png")
    assert got.tolist() == a.tolist() and pal is None
    Image.fromarray(np.array([[True, False]])).save(tmp_path / "b.png")
    assert read_label_png(tmp_path / "b.png")[0].tolist() == [[1, 0]]
    # the DAVIS 2016 annotations are 0/255 grayscale
    davis = read_binary_png(DAVIS16_ANN / "blackswan" / "00000.png")
    assert davis.dtype == bool and 30000 < davis.sum() < 50000


def test_binary_png_round_trip_and_one_object_rule(tmp_path):
    m = np.zeros((9, 11), bool)
    m[2:6, 3:9] = True
    write_binary_png(tmp_path / "000" / "00004.png", m)
    assert np.array_equal(read_binary_png(tmp_path / "000" / "00004.png"), m)
    two = m.astype(np.uint8)
    two[0, 0] = 2
    write_label_png(tmp_path / "two.png", two)
    with pytest.raises(FormatError, match=r"two\.png.*non-zero values \[1, 2\]"):
        read_binary_png(tmp_path / "two.png")
    assert read_binary_png(tmp_path / "two.png", single_object=False).sum() == m.sum() + 1


def test_unreadable_and_wrong_mode_files(tmp_path):
    (tmp_path / "junk.png").write_bytes(b"definitely not a png")
    with pytest.raises(FormatError, match=r"junk\.png.*image data"):
        read_label_png(tmp_path / "junk.png")
    good = tmp_path / "good.png"
    write_label_png(good, np.ones((40, 40), np.uint8))
    data = good.read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(FormatError, match=r"cut\.png"):
        read_label_png(tmp_path / "cut.png")
    Image.new("RGB", (4, 4)).save(tmp_path / "rgb.png")
    with pytest.raises(FormatError, match=r"rgb\.png: field 'mode'"):
        read_label_png(tmp_path / "rgb.png")
    arr16 = np.full((3, 3), 300, np.uint16)
    Image.fromarray(arr16).save(tmp_path / "i16.png")
    with pytest.raises(FormatError, match="values up to 300"):
        read_label_png(tmp_path / "i16.png")
    with pytest.raises(FileNotFoundError):
        read_label_png(tmp_path / "absent.png")


def test_writer_rejects_bad_arrays(tmp_path):
    with pytest.raises(ValueError, match=r"0..255"):
        write_label_png(tmp_path / "x.png", np.full((2, 2), 256))
    with pytest.raises(ValueError, match="2-D"):
        write_label_png(tmp_path / "x.png", np.zeros((2, 2, 3), np.uint8))
    with pytest.raises(ValueError, match="integers or bool"):
        write_label_png(tmp_path / "x.png", np.zeros((2, 2), np.float32))
    assert not (tmp_path / "x.png").exists()


def test_atomic_write_replaces_and_cleans_up(tmp_path):
    target = tmp_path / "f.bin"
    atomic_write_bytes(target, b"old")
    atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"new"
    with pytest.raises(TypeError):
        atomic_write_bytes(target, "not bytes")  # fails while writing the temporary file
    assert target.read_bytes() == b"new"  # the old content survives a failed write
    assert os.listdir(tmp_path) == ["f.bin"]


def test_davis_sequence_round_trip(tmp_path):
    frames = {i: (np.arange(12 * 16).reshape(12, 16) % (i + 2)).astype(np.uint8) for i in range(3)}
    write_davis_sequence(tmp_path / "seq", frames)
    assert sorted(os.listdir(tmp_path / "seq")) == ["00000.png", "00001.png", "00002.png"]
    got, pal = read_davis_sequence(tmp_path / "seq")
    assert list(got) == ["00000", "00001", "00002"]
    assert all(np.array_equal(got[f"{i:05d}"], frames[i]) for i in frames)
    assert np.array_equal(pal, davis_palette())


def test_sav_video_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    masks = {obj: {f: rng.random((10, 14)) < 0.3 for f in (0, 4, 8)} for obj in (0, 1, 12)}
    write_sav_video(tmp_path / "sav_000001", masks)
    assert sorted(os.listdir(tmp_path / "sav_000001")) == ["000", "001", "012"]
    assert sorted(os.listdir(tmp_path / "sav_000001" / "001")) == ["00000.png", "00004.png", "00008.png"]
    got = read_sav_video(tmp_path / "sav_000001")
    for obj, frames in masks.items():
        for f, m in frames.items():
            assert np.array_equal(got[f"{obj:03d}"][f"{f:05d}"], m)
