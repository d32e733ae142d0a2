"""SA-V masklet JSON: the example files decode to the counts, sizes and statistics they declare."""
from __future__ import annotations

import json

import numpy as np
import pytest

from samstream.io import (
    FormatError,
    export_sav_folders,
    load_sav_json,
    parse_sav_dict,
    read_sav_video,
    save_sav_json,
)
from tests.helpers import SAV_EXAMPLE

MANUAL = SAV_EXAMPLE / "sav_000001_manual.json"
AUTO = SAV_EXAMPLE / "sav_000001_auto.json"


@pytest.fixture(scope="module")
def manual():
    return load_sav_json(MANUAL)


@pytest.mark.parametrize("path, n_masklets, kind", [(MANUAL, 5, "manual"), (AUTO, 9, "auto")])
def test_example_counts_and_sizes(path, n_masklets, kind):
    s = load_sav_json(path)
    assert s.video_id == "sav_000001"
    assert s.num_masklets == n_masklets
    assert s.num_annotated_frames == 121  # 483 frames at 24 fps, annotated every 4th
    assert (s.height, s.width) == (848, 480)
    assert s.video_frame_count == 483
    assert s.frame_indices[-1] == 480
    assert s.meta["masklet_type"] == [kind] * n_masklets
    assert s.mask(0, 0).shape == (848, 480)


@pytest.mark.parametrize("path", [MANUAL, AUTO])
def test_decoded_masks_agree_with_the_files_own_statistics(path):
    # masklet_size_abs (mean area over visible frames), masklet_first_appeared_frame and
    # masklet_visibility_changes are stored in the file; we recompute them from the decoded RLEs.
    s = load_sav_json(path)
    areas = s.areas()  # (T, N)
    assert areas.shape == (121, s.num_masklets)
    visible = areas > 0
    for k in range(s.num_masklets):
        vis = visible[:, k]
        assert areas[vis, k].mean() == pytest.approx(s.meta["masklet_size_abs"][k], rel=1e-9)
        first = int(np.argmax(vis))
        assert first == s.meta["masklet_first_appeared_frame"][k]
        assert int(np.sum(vis[first + 1:] != vis[first:-1])) == s.meta["masklet_visibility_changes"][k]
    # decoding the pixels gives the same areas as the run lengths
    t = 60
    assert [int(m.sum()) for m in s.frame_masks(t)] == areas[t].tolist()


def test_masklet_stack_and_late_appearance(manual):
    stack = manual.masklet_masks(3)  # (T, H, W): masklet 3 first appears on annotated frame 113
    assert stack.shape == (121, 848, 480)
    assert not stack[:113].any() and stack[113].any()


def test_save_load_round_trip(manual, tmp_path):
    save_sav_json(tmp_path / "x.json", manual)
    again = load_sav_json(tmp_path / "x.json")
    assert again.rles == manual.rles and again.masklet_ids == manual.masklet_ids
    assert again.meta["masklet_size_abs"] == manual.meta["masklet_size_abs"]


def test_export_to_sav_folders(manual, tmp_path):
    small = parse_sav_dict({**json.loads(MANUAL.read_text()), "masklet": manual.rles[:3]})
    n = export_sav_folders(small, tmp_path / "sav_000001")
    assert n == 5 * 3
    got = read_sav_video(tmp_path / "sav_000001")
    assert sorted(got) == ["000", "001", "002", "003", "004"]
    assert sorted(got["002"]) == ["00000", "00004", "00008"]
    assert np.array_equal(got["001"]["00008"], manual.mask(2, 1))


def _corrupt(tmp_path, edit):
    data = json.loads(MANUAL.read_text())
    edit(data)
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(data))
    return p


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda d: d["masklet"][3][1].update(size=[480, 848]), r"masklet\[3\]\[1\]\.size"),
        (lambda d: d["masklet"][7].pop(), r"masklet\[7\].*expected 5 RLEs"),
        (lambda d: d.update(masklet_num=4), "masklet_num"),
        (lambda d: d.update(masklet_size_abs=[1.0]), "masklet_size_abs"),
        (lambda d: d.pop("video_height"), "video_height"),
        (lambda d: d.update(video_width="wide"), "video_width"),
        (lambda d: d["masklet"][0].__setitem__(0, {"size": [848, 480], "counts": [1, 2]}), r"masklet\[0\]\[0\]"),
    ],
)
def test_corrupt_files_name_the_field(tmp_path, edit, match):
    p = _corrupt(tmp_path, edit)
    with pytest.raises(FormatError, match=match) as e:
        load_sav_json(p)
    assert str(p) in str(e.value)


def test_bad_counts_fail_when_decoded(tmp_path):
    p = _corrupt(tmp_path, lambda d: d["masklet"][2][4].update(counts="0000"))
    s = load_sav_json(p)  # RLE strings decode lazily
    with pytest.raises(FormatError, match=r"masklet\[2\]\[4\].*sum to"):
        s.mask(2, 4)


def test_truncated_json(tmp_path):
    p = tmp_path / "cut.json"
    p.write_text(MANUAL.read_text()[:1000])
    with pytest.raises(FormatError, match=r"cut\.json.*invalid JSON"):
        load_sav_json(p)
