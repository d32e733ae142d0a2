"""Ids and names that become parts of a path are checked in one place: nothing is written outside its folder."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

from samstream.io import (
    FormatError,
    SavMasklets,
    encode_rle,
    export_sav_folders,
    frame_name,
    load_sav_json,
    object_name,
    parse_sav_dict,
    safe_name,
    write_davis_sequence,
    write_sav_video,
)

MASK = np.eye(4, dtype=bool)
LABELS = np.eye(4, dtype=np.uint8)
BAD_NAMES = ["../../escaped", "..", ".", "", ".hidden", "a/b", "a\\b", "a\0b"]


def all_files(root) -> list[str]:
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, files in os.walk(root) for f in files)


@pytest.mark.parametrize("obj", BAD_NAMES)
def test_sav_object_id_that_leaves_its_folder_is_refused(tmp_path, obj):
    base = tmp_path / "a" / "b" / "video"  # "../../escaped" would land in tmp_path / "a"
    with pytest.raises(ValueError, match="object id") as e:
        write_sav_video(base, {obj: {0: MASK}})
    assert repr(obj) in str(e.value)
    assert all_files(tmp_path) == []


def test_absolute_ids_and_frame_names_are_refused(tmp_path):
    target = tmp_path / "elsewhere"
    with pytest.raises(ValueError, match="object id"):
        write_sav_video(tmp_path / "video", {str(target): {0: MASK}})
    with pytest.raises(ValueError, match="frame name"):
        write_sav_video(tmp_path / "video", {1: {str(target / "x"): MASK}})
    with pytest.raises(ValueError, match="frame name"):
        write_davis_sequence(tmp_path / "seq", {str(target / "x"): LABELS})
    assert all_files(tmp_path) == []


@pytest.mark.parametrize("frame", BAD_NAMES)
def test_davis_frame_name_that_leaves_its_folder_is_refused(tmp_path, frame):
    with pytest.raises(ValueError, match="frame name") as e:
        write_davis_sequence(tmp_path / "a" / "seq", {frame: LABELS})
    assert repr(frame) in str(e.value)
    assert all_files(tmp_path) == []


@pytest.mark.parametrize("bad", [-3, True, 1.5, None])
def test_ids_must_be_names_or_non_negative_integers(tmp_path, bad):
    with pytest.raises(ValueError, match=r"object id"):
        write_sav_video(tmp_path / "video", {bad: {0: MASK}})
    with pytest.raises(ValueError, match=r"frame name"):
        write_davis_sequence(tmp_path / "seq", {bad: LABELS})
    assert all_files(tmp_path) == []


def test_every_name_is_checked_before_anything_is_written(tmp_path):
    with pytest.raises(ValueError, match=r"'\.\./x'"):
        write_sav_video(tmp_path / "video", {0: {0: MASK, 4: MASK}, 1: {0: MASK, "../x": MASK}})
    with pytest.raises(ValueError, match=r"'\.\./x'"):
        write_davis_sequence(tmp_path / "seq", {0: LABELS, "../x": LABELS})
    assert all_files(tmp_path) == []


def test_two_ids_with_one_name_are_refused(tmp_path):
    with pytest.raises(ValueError, match="both give the name '007'"):
        write_sav_video(tmp_path / "video", {7: {0: MASK}, "007": {0: MASK}})
    with pytest.raises(ValueError, match="both give the name '00001'"):
        write_davis_sequence(tmp_path / "seq", {1: LABELS, "00001": LABELS})
    assert all_files(tmp_path) == []


def test_valid_names_are_kept(tmp_path):
    assert frame_name(42) == "00042" and frame_name(np.int64(7)) == "00007" and frame_name("shot 2") == "shot 2"
    assert object_name(7) == "007" and object_name("person") == "person"
    assert safe_name("a.b-c_d", "name") == "a.b-c_d"
    write_sav_video(tmp_path / "video", {"cat": {"f1": MASK}, np.int64(3): {0: MASK}})
    assert all_files(tmp_path) == [os.path.join("video", "003", "00000.png"), os.path.join("video", "cat", "f1.png")]


def sav_dict(ids) -> dict:
    rle = encode_rle(MASK)  # {"size": [4, 4], "counts": str}
    return {"video_id": "v", "video_height": 4.0, "video_width": 4.0, "masklet_id": ids,
            "masklet": [[rle] * len(ids)], "masklet_num": len(ids)}


@pytest.mark.parametrize("bad, index", [([0, 1.5], 1), ([-3], 0), ([True, 1], 0), (["2"], 0), ([0, None], 1)])
def test_sav_masklet_ids_must_be_non_negative_integers(tmp_path, bad, index):
    path = tmp_path / "v_manual.json"
    path.write_text(json.dumps(sav_dict(bad)))
    with pytest.raises(FormatError, match=rf"v_manual\.json: field 'masklet_id\[{index}\]': expected a non-negative"):
        load_sav_json(path)


def test_sav_masklet_ids_must_be_unique():
    with pytest.raises(FormatError, match=r"field 'masklet_id\[2\]': masklet id 1 is also masklet_id\[1\]"):
        parse_sav_dict(sav_dict([0, 1, 1]), "x.json")


def test_sav_whole_float_ids_are_integers():
    assert parse_sav_dict(sav_dict([0.0, 2.0])).masklet_ids == [0, 2]


@pytest.mark.parametrize("ids", [["../x"], [0, -1], [1.5], [2, 2]])
def test_export_checks_every_masklet_id_first(tmp_path, ids):
    ok = parse_sav_dict(sav_dict(list(range(len(ids)))))
    bad = SavMasklets(video_id="v", height=4, width=4, video_frame_count=4, masklet_ids=ids, rles=ok.rles)
    with pytest.raises(ValueError, match="masklet id"):
        export_sav_folders(bad, tmp_path / "a" / "video")
    assert all_files(tmp_path) == []
