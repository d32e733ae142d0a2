"""Export of a video's stored masks (samstream.app.export), and its contract: what the app exports for prompts
given over HTTP and propagated over the whole video is what `samstream track` writes for the same prompts."""
from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest

from samstream.app import export as ex
from samstream.app.store import Store, mask_record
from samstream.io.png import read_label_png
from samstream.io.rle import decode_rle
from samstream.io.yolo import yolo_to_mask

pytest.importorskip("fastapi")

from .test_app_api import CLICKS, client_for, make_library, open_video, wait_job

H, W, T = 12, 16, 4


@pytest.fixture(scope="module")
def model():
    from samstream.load import load_model

    return load_model(None)


def _obj(name=None, category=None):
    return {"name": name, "category": category, "colour": None, "hidden": False, "deleted": False}


def _square(y0, x0, y1, x1):
    m = np.zeros((H, W), dtype=bool)
    m[y0:y1, x0:x1] = True
    return m


@pytest.fixture
def store(tmp_path):
    """A store holding one video 'clips/my clip.mp4' (T frames of H x W) with two objects."""
    s = Store(tmp_path / "app.db")
    p = s.create_project("p")
    v = s.add_video(p["id"], "clips/my clip.mp4", "my clip.mp4", T, W, H, 24.0)
    with s.event(v["id"], "add_object", {}) as ev:
        ev.set_object(1, _obj("cat", "animal"))
        ev.set_object(2, _obj("dog", "animal"))
        ev.set_object(3, _obj("ball", None))
    yield s, v["id"]
    s.close()


def _run(fn, store, vid) -> bytes:
    out = io.BytesIO()
    fn(store, vid, out)
    return out.getvalue()


def _davis(store, vid) -> dict[str, np.ndarray]:
    zf = zipfile.ZipFile(io.BytesIO(_run(ex.write_davis, store, vid)))
    return {n: read_label_png(io.BytesIO(zf.read(n)))[0] for n in zf.namelist()}


def test_davis_overlaps_go_to_the_highest_score_and_hand_masks_win(store):
    s, vid = store
    with s.event(vid, "click", {}) as ev:
        ev.set_mask(1, 1, mask_record(_square(0, 0, 8, 8), 2.0, "propagated"))
        ev.set_mask(2, 1, mask_record(_square(4, 4, 12, 12), 5.0, "propagated"))  # wins the overlap by score
        ev.set_mask(1, 2, mask_record(_square(0, 0, 8, 8), None, "hand"))  # a hand mask beats any score
        ev.set_mask(2, 2, mask_record(_square(4, 4, 12, 12), 50.0, "propagated"))
        ev.set_mask(3, 3, mask_record(np.zeros((H, W), bool), -3.0, "propagated"))  # tracked, absent
    labels = _davis(s, vid)
    assert sorted(labels) == [f"{t:05d}.png" for t in range(T)]  # one PNG per frame of the video
    assert not labels["00000.png"].any() and not labels["00003.png"].any()  # no mask / absent: empty
    assert labels["00001.png"][5, 5] == 2 and labels["00001.png"][1, 1] == 1 and labels["00001.png"][10, 10] == 2
    assert labels["00002.png"][5, 5] == 1 and labels["00002.png"][10, 10] == 2
    assert labels["00001.png"].shape == (H, W)


def test_exports_leave_out_deleted_objects(store):
    s, vid = store
    with s.event(vid, "click", {}) as ev:
        ev.set_mask(1, 0, mask_record(_square(0, 0, 4, 4), 3.0, "prompt"))
        ev.set_mask(2, 0, mask_record(_square(6, 6, 10, 10), 3.0, "prompt"))
    with s.event(vid, "delete_object", {}) as ev:
        ev.set_object(2, {**_obj("dog", "animal"), "deleted": True})
    assert set(np.unique(_davis(s, vid)["00000.png"])) == {0, 1}
    sav = ex.sav_dict(s, vid)
    assert sav["masklet_id"] == [1]
    coco = ex.coco_dict(s, vid)
    assert [a["obj_id"] for a in coco["annotations"]] == [1]


def test_sav_dict_has_the_writer_layout(store):
    s, vid = store
    m1 = _square(0, 0, 4, 4)
    with s.event(vid, "click", {}) as ev:
        ev.set_mask(2, 1, mask_record(m1, 1.5, "propagated"))
        ev.set_mask(1, 3, mask_record(m1, None, "hand"))
    d = json.loads(_run(ex.write_sav, s, vid))
    assert d["video_id"] == "my clip" and (d["video_height"], d["video_width"], d["video_frame_count"]) == (H, W, T)
    assert d["masklet_frame_idx"] == [1, 3] and d["masklet_id"] == [2, 1] and d["masklet_num"] == 2
    assert d["masklet_score"] == [[1.5, None], [None, None]]
    assert decode_rle(d["masklet"][0][0]).sum() == 16 and not decode_rle(d["masklet"][0][1]).any()
    assert np.array_equal(decode_rle(d["masklet"][1][1]), m1)


def test_coco_and_yolo_give_back_the_masks(store):
    s, vid = store
    a, b = _square(1, 1, 5, 6), _square(6, 8, 11, 15)
    with s.event(vid, "click", {}) as ev:
        ev.set_mask(1, 0, mask_record(a, 2.0, "prompt"))
        ev.set_mask(3, 0, mask_record(b, None, "hand"))
        ev.set_mask(2, 2, mask_record(np.zeros((H, W), bool), -2.0, "propagated"))  # absent: no annotation
    coco = json.loads(_run(ex.write_coco, s, vid))
    assert [c["name"] for c in coco["categories"]] == ["animal", ex.DEFAULT_CATEGORY]
    assert len(coco["images"]) == T and coco["images"][0]["frame_index"] == 0
    anns = {x["obj_id"]: x for x in coco["annotations"]}
    assert set(anns) == {1, 3}
    assert np.array_equal(decode_rle(anns[1]["segmentation"]), a) and anns[1]["score"] == 2.0
    assert "score" not in anns[3] and anns[3]["category_id"] == 2 and anns[1]["category_id"] == 1
    assert anns[1]["bbox"] == [1.0, 1.0, 5.0, 4.0] and anns[1]["area"] == 20 and anns[1]["image_id"] == 1

    zf = zipfile.ZipFile(io.BytesIO(_run(ex.write_yolo, s, vid)))
    assert zf.read("classes.txt").decode() == f"animal\n{ex.DEFAULT_CATEGORY}\n"
    assert sorted(n for n in zf.namelist() if n.startswith("labels/")) == [f"labels/{t:05d}.txt" for t in range(T)]
    lines = zf.read("labels/00000.txt").decode().splitlines()
    assert [ln.split()[0] for ln in lines] == ["0", "1"]
    back = [yolo_to_mask([np.array(ln.split()[1:], float).reshape(-1, 2)], H, W) for ln in lines]
    assert np.array_equal(back[0], a) and np.array_equal(back[1], b)  # hole-free squares come back exactly
    assert zf.read("labels/00002.txt") == b""


def test_export_names_the_file_safely_and_refuses_unknown_formats(store):
    s, vid = store
    name, media = ex.export(s, vid, "davis", io.BytesIO())
    assert (name, media) == ("my_clip_davis.zip", "application/zip")
    assert ex.export(s, vid, "sav", io.BytesIO()) == ("my_clip_masks.json", "application/json")
    assert ex.safe_filename('../..\\a"b;c\r\n') == "a_b_c" and ex.safe_filename("...") == "video"
    with pytest.raises(ValueError, match="unknown export format"):
        ex.export(s, vid, "tiff", io.BytesIO())
    # the same masks give the same bytes (fixed zip time stamps)
    assert _run(ex.write_davis, s, vid) == _run(ex.write_davis, s, vid)


def test_app_export_equals_samstream_track(tmp_path, model):
    """Prompts given over HTTP and propagated over the whole video export the PNGs (byte for byte) and the
    masks.json (equal) that `samstream track` writes for the same prompts."""
    from samstream.cli import main

    data, clip = make_library(tmp_path)
    client = client_for(data, model)
    vid = open_video(client, "clip")
    for obj, (x, y) in CLICKS.items():
        assert client.post(f"/api/videos/{vid}/objects", json={}).json()["object"]["obj_id"] == obj
        assert client.post(f"/api/videos/{vid}/click", json={"obj_id": obj, "frame": 0, "x": x, "y": y}).status_code \
            == 200
    assert client.post(f"/api/videos/{vid}/propagate", json={"frame": 0, "direction": "forward"}).status_code == 202
    assert wait_job(client, vid)["state"] == "done"

    out = tmp_path / "track"
    argv = ["track", str(clip), "-o", str(out), "--format", "png,json", "--quiet", "--device", "cpu"]
    for obj, (x, y) in CLICKS.items():
        argv += ["--prompt", f"0:{obj}:{x},{y}"]
    assert main(argv) == 0

    r = client.get(f"/api/videos/{vid}/export", params={"format": "davis"})
    assert r.status_code == 200 and r.headers["content-disposition"] == 'attachment; filename="clip_davis.zip"'
    zf = zipfile.ZipFile(io.BytesIO(r.content))
    track_pngs = sorted(p.name for p in out.glob("*.png"))
    assert sorted(zf.namelist()) == track_pngs and len(track_pngs) == 8
    for name in track_pngs:
        assert zf.read(name) == (out / name).read_bytes(), name
    labels = read_label_png(out / "00000.png")[0]
    assert set(np.unique(labels)) == {0, 1, 2}  # both objects tracked: the comparison is not of empty files

    r = client.get(f"/api/videos/{vid}/export", params={"format": "sav"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert r.json() == json.loads((out / "masks.json").read_text())
