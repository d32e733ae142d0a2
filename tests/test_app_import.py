"""Import of masks into `samstream app` videos, and a project's export as a training set (samstream.app.imports,
trainset, routes_data; `samstream app export`): every format's round trip, every refusal storing nothing, undo of
an import, imported frames locked under propagation, and the loop: annotate, export, `samstream train`, load.

A tiny library: the first frames of samstream/assets/demo.mp4 at 160x120 as a PNG folder; the embedded model,
loaded once. The annotated source video: objects 1 and 2 clicked on frame 0 and propagated forward.
"""
from __future__ import annotations

import io
import json
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient

from samstream.io.png import encode_label_png
from samstream.io.rle import decode_rle, encode_rle
from tests.helpers import demo_clip

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "samstream" / "assets" / "demo.mp4"
CLICKS = {1: (89, 20), 2: (56, 91)}  # video pixels of the 160x120 clip
W, H, N = 160, 120, 6


def make_clip(folder: Path, n: int = N) -> Path:
    """The first n frames of the demo video at 160x120, as a PNG folder."""
    return demo_clip(folder, n, step=2)


@pytest.fixture(scope="module")
def model():
    from samstream.load import load_model

    return load_model(None)


@pytest.fixture(scope="module")
def app(tmp_path_factory, model):
    """(client, data folder, annotated video id, its project id)."""
    from samstream.app.server import create_app

    data = tmp_path_factory.mktemp("lib") / "data"
    make_clip(data / "clip")
    with TestClient(create_app(data, model, model_name="test")) as client:
        vid, pid = new_video(client)
        for obj_id, (x, y) in CLICKS.items():
            assert client.post(f"/api/videos/{vid}/objects", json={"name": f"thing {obj_id}"}).status_code == 200
            r = client.post(f"/api/videos/{vid}/click", json={"obj_id": obj_id, "frame": 0, "x": x, "y": y})
            assert r.status_code == 200, r.text
        assert client.post(f"/api/videos/{vid}/propagate", json={"frame": 0}).status_code == 202
        wait_job(client, vid)
        yield client, data, vid, pid


def new_video(client, rel: str = "clip") -> tuple[int, int]:
    pid = client.post("/api/projects", json={"name": "p"}).json()["id"]
    r = client.post(f"/api/projects/{pid}/videos", json={"path": rel})
    assert r.status_code == 200, r.text
    return r.json()["id"], pid


def wait_job(client, vid: int, timeout: float = 60.0) -> dict:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        job = client.get(f"/api/videos/{vid}/job").json()
        if job is None or job["state"] != "running":
            assert job is None or job["state"] == "done", job
            return job
        time.sleep(0.05)
    raise AssertionError("the propagation did not end")


def stored(client, vid: int) -> dict[tuple[int, int], dict]:
    """(obj_id, frame) -> mask record of every stored mask."""
    out = {}
    for t in range(N):
        for oid, rec in client.get(f"/api/videos/{vid}/masks/{t}").json()["objects"].items():
            out[(int(oid), t)] = rec
    return out


def nonempty(client, vid: int) -> dict[tuple[int, int], np.ndarray]:
    return {k: decode_rle(r["rle"]) for k, r in stored(client, vid).items() if r["area"]}


def upload(client, vid: int, data: bytes, name: str = "masks.bin", **form):
    return client.post(f"/api/videos/{vid}/import", files={"file": (name, data)}, data=form)


def state(client, vid: int) -> tuple:
    v = client.get(f"/api/videos/{vid}").json()
    return v["version"], v["objects"], len(client.get(f"/api/videos/{vid}/history").json()), stored(client, vid)


def label_zip(frames: dict[int, np.ndarray], name=lambda t: f"{t:05d}.png") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for t, labels in frames.items():
            zf.writestr(name(t), encode_label_png(labels))
    return buf.getvalue()


# ------------------------------------------------------------------------------------------ round trips
@pytest.mark.parametrize("fmt", ["davis", "sav", "coco"])
def test_export_then_import_into_a_fresh_video_gives_the_same_masks(app, fmt):
    client, _, vid, _ = app
    r = client.get(f"/api/videos/{vid}/export?format={fmt}")
    assert r.status_code == 200
    fresh, _ = new_video(client)
    res = upload(client, fresh, r.content, name="whatever.bin")  # told by the content, not the name
    assert res.status_code == 200, res.text
    assert [o["obj_id"] for o in res.json()["objects"]] == [1, 2]
    want, got = nonempty(client, vid), nonempty(client, fresh)
    if fmt == "davis":  # one label per pixel: compare label maps
        from samstream.app.export import frame_records, label_map

        store = client.app.state.store
        for t in range(N):
            a, b = (label_map(frame_records(store, v).get(t, {}), (H, W)) for v in (vid, fresh))
            assert np.array_equal(a, b), t
    else:
        assert want.keys() == got.keys() and all(np.array_equal(want[k], got[k]) for k in want)
    recs = stored(client, fresh)
    assert {r["source"] for r in recs.values()} == {"import"} and all(r["score"] is None for r in recs.values())
    prompts = client.app.state.store.prompts(fresh)
    assert set(prompts) == set(recs) and all(set(p) == {"mask"} for p in prompts.values())
    ev = client.get(f"/api/videos/{fresh}/history").json()
    assert [e["kind"] for e in ev if e["state"] == "done"].count("import") == 1
    if fmt == "coco":  # categories come along
        assert all(o["category"] == "object" for o in client.get(f"/api/videos/{fresh}").json()["objects"])


def test_taken_ids_get_new_ones_and_names_come_from_the_file(app):
    client, _, vid, _ = app
    target, _ = new_video(client)
    assert client.post(f"/api/videos/{target}/objects", json={"name": "mine"}).json()["object"]["obj_id"] == 1
    coco = client.get(f"/api/videos/{vid}/export?format=coco").json()
    for a in coco["annotations"]:
        a["name"] = f"from file {a['obj_id']}"
    coco["categories"][0]["name"] = "fish"
    r = upload(client, target, json.dumps(coco).encode(), name="c.json")
    assert r.status_code == 200, r.text
    # the file's 2 is free and kept; its 1 is taken and gets the smallest free id
    assert [(o["obj_id"], o["from"]) for o in r.json()["objects"]] == [(3, 1), (2, 2)]
    objs = {o["obj_id"]: o for o in client.get(f"/api/videos/{target}").json()["objects"]}
    assert objs[1]["name"] == "mine" and objs[3]["name"] == "from file 1" and objs[2]["category"] == "fish"
    src, got = nonempty(client, vid), nonempty(client, target)
    assert all(np.array_equal(src[(o, t)], got[({1: 3, 2: 2}[o], t)]) for o, t in src)


def test_import_from_a_path_below_the_data_root(app):
    client, data, vid, _ = app
    (data / "imports").mkdir(exist_ok=True)
    (data / "imports" / "m.json").write_bytes(client.get(f"/api/videos/{vid}/export?format=sav").content)
    target, _ = new_video(client)
    r = client.post(f"/api/videos/{target}/import", json={"path": "imports/m.json"})
    assert r.status_code == 200, r.text
    assert nonempty(client, target).keys() == nonempty(client, vid).keys()
    for bad, code in (("../outside.json", 400), ("/etc/passwd", 400), ("imports/none.json", 404), ("imports", 400)):
        r = client.post(f"/api/videos/{target}/import", json={"path": bad})
        assert r.status_code == code, (bad, r.text)
        assert str(data) not in r.text


# ------------------------------------------------------------------------------------------ refusals
def _sav(client, vid) -> dict:
    return client.get(f"/api/videos/{vid}/export?format=sav").json()


def test_every_refusal_names_the_problem_and_stores_nothing(app):
    client, data, vid, _ = app
    target, _ = new_video(client)
    client.post(f"/api/videos/{target}/objects", json={})
    before = state(client, target)
    small = np.zeros((48, 64), np.uint8)
    small[5:9, 5:9] = 1
    good = np.zeros((H, W), np.uint8)
    good[10:20, 10:30] = 1
    sav_small = {**_sav(client, vid), "video_height": 48, "video_width": 64}
    sav_small["masklet"] = [[encode_rle(np.ones((48, 64), bool)) for _ in row] for row in sav_small["masklet"]]
    sav_bad_rle = _sav(client, vid)
    sav_bad_rle["masklet"][0][0] = {"size": [H, W], "counts": "zz"}
    sav_bad_frame = {**_sav(client, vid)}
    sav_bad_frame["masklet_frame_idx"] = [t + 100 for t in sav_bad_frame["masklet_frame_idx"]]
    coco_small = client.get(f"/api/videos/{vid}/export?format=coco").json()
    coco_small["images"][0]["width"] = 64
    cases = [
        ("small.zip", label_zip({0: good, 1: small}), ["00001.png", "64x48", "160x120"]),
        ("late.zip", label_zip({0: good, 99: good}), ["00099.png", "frame 99", "0..5"]),
        ("named.zip", label_zip({0: good}, name=lambda t: "mask.png"), ["mask.png", "frame number"]),
        ("twice.zip", label_zip({0: good}) + b"", None),  # placeholder replaced below
        ("broken.zip", b"PK\x03\x04 this is not a zip", ["broken.zip", "zip"]),
        ("badpng.zip", None, ["00000.png", "PNG"]),
        ("empty.zip", label_zip({}), ["no mask PNGs"]),
        ("sav.json", json.dumps(sav_small).encode(), ["64x48", "160x120"]),
        ("sav.json", json.dumps(sav_bad_rle).encode(), ["masklet[0][0]"]),
        ("sav.json", json.dumps(sav_bad_frame).encode(), ["frame 100"]),
        ("coco.json", json.dumps(coco_small).encode(), ["images[0]", "64x120"]),
        ("notes.txt", b"hello, not masks", ["notes.txt", "neither"]),
        ("x.json", b'{"a": 1}', ["neither SA-V"]),
        ("one.png", encode_label_png(good), ["single PNG"]),
        ("blank.zip", label_zip({0: np.zeros((H, W), np.uint8)}), ["no masks"]),
    ]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("00000.png", encode_label_png(good))
        zf.writestr("sub/00000.png", encode_label_png(good))
    cases[3] = ("twice.zip", buf.getvalue(), ["frame 0"])
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("00000.png", encode_label_png(good)[:40])
    cases[5] = ("badpng.zip", buf.getvalue(), ["00000.png", "PNG"])
    for name, payload, words in cases:
        r = upload(client, target, payload, name=name)
        assert r.status_code == 400, (name, r.text)
        msg = r.json()["error"]
        for w in words:
            assert w in msg, (name, w, msg)
        assert str(data) not in msg and "Traceback" not in msg
        assert state(client, target) == before, name
    # a stale version, a missing file field, a video that does not exist
    r = upload(client, target, label_zip({0: good}), name="ok.zip", version=str(before[0] - 1))
    assert r.status_code == 409 and state(client, target) == before
    r = client.post(f"/api/videos/{target}/import", files={"other": ("a", b"x")})
    assert r.status_code == 400 and "file" in r.json()["error"]
    assert upload(client, 9999, label_zip({0: good})).status_code == 404
    r = upload(client, target, label_zip({0: good}), name="ok.zip", version=str(before[0]))
    assert r.status_code == 200 and r.json()["objects"] == [{"obj_id": 2, "from": 1, "frames": 1}]


def test_an_import_is_undone_and_redone_in_one_step(app):
    client, _, vid, _ = app
    target, _ = new_video(client)
    before = state(client, target)
    assert upload(client, target, client.get(f"/api/videos/{vid}/export?format=davis").content).status_code == 200
    after = state(client, target)
    assert len(after[1]) == 2 and after[3]
    assert client.post(f"/api/videos/{target}/undo").status_code == 200
    undone = state(client, target)
    assert undone[1] == [] and undone[3] == {} and undone[1:2] == before[1:2]
    assert client.post(f"/api/videos/{target}/redo").status_code == 200
    assert state(client, target)[1] == after[1] and state(client, target)[3] == after[3]


def test_imported_frames_are_locked_under_propagation_and_enter_the_memory(app):
    client, _, vid, _ = app
    src = nonempty(client, vid)
    target, _ = new_video(client)
    labels = {t: (src[(1, t)] * 1).astype(np.uint8) for t in (0, 3)}  # object 1 on frames 0 and 3
    labels[3] = np.roll(labels[3], 20, axis=1)  # not where the model would put it
    assert upload(client, target, label_zip(labels), name="m.zip").status_code == 200
    locked = stored(client, target)
    assert set(locked) == {(1, 0), (1, 3)}
    # the only prompts are the imported masks: propagation runs from them
    assert client.post(f"/api/videos/{target}/propagate", json={"frame": 0}).status_code == 202
    wait_job(client, target)
    after = stored(client, target)
    for k in locked:
        assert after[k] == locked[k]
    assert {after[(1, t)]["source"] for t in (1, 2, 4, 5)} == {"propagated"}
    assert after[(1, 1)]["area"] > 0
    tl = client.get(f"/api/videos/{target}/timeline").json()["objects"]["1"]
    assert tl["locked"] == [0, 3] and not set(tl["flags"]) & {0, 3}


# ------------------------------------------------------------------------------------------ training set
def _unzip(data: bytes, folder: Path) -> Path:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        zf.extractall(folder)
    return folder


def test_training_set_export_is_read_by_the_trainer(app, tmp_path):
    from samstream.app.export import frame_records, label_map
    from samstream.train.data import davis_videos, open_videos

    client, data, vid, pid = app
    r = client.get(f"/api/projects/{pid}/export?format=training")
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    assert 'filename="p_training.zip"' in r.headers["content-disposition"]
    root = _unzip(r.content, tmp_path / "ts")
    (video,) = davis_videos(root)
    assert video.name == "clip" and len(open_videos(str(root))) == 1
    store = client.app.state.store
    rows = {t: recs for t, recs in frame_records(store, vid).items() if any(x["area"] for x in recs.values())}
    assert len(video) == len(rows) and len(rows) >= 2
    for i, t in enumerate(rows):
        want = label_map(rows[t], (H, W))
        got = video.objects(i)
        assert set(got) == set(np.unique(want)) - {0}
        assert all(np.array_equal(got[k], want == k) for k in got)
        frame = np.asarray(Image.open(data / "clip" / f"{t:05d}.png").convert("RGB"), dtype=np.int16)
        err = np.abs(video.frame(i).astype(np.int16) - frame).mean()
        other = np.asarray(Image.open(data / "clip" / f"{(t + 3) % N:05d}.png").convert("RGB"), dtype=np.int16)
        assert err < 3 and err < np.abs(video.frame(i).astype(np.int16) - other).mean()  # this frame, as a JPEG
    # other formats: one file per video; a project without masks, an unknown format
    names = zipfile.ZipFile(io.BytesIO(client.get(f"/api/projects/{pid}/export?format=coco").content)).namelist()
    assert names == ["clip_coco.json"]
    _, empty_pid = new_video(client)
    r = client.get(f"/api/projects/{empty_pid}/export?format=training")
    assert r.status_code == 400 and "no masks" in r.json()["error"]
    assert client.get(f"/api/projects/{pid}/export?format=bmp").status_code == 400
    assert client.get("/api/projects/9999/export").status_code == 404


def test_folder_names_are_safe_and_unique():
    from samstream.app.trainset import folder_names

    got = folder_names([{"id": 1, "name": "../a b"}, {"id": 2, "name": "a_b"}, {"id": 3, "name": ""}])
    assert got == {1: "a_b", 2: "a_b_2", 3: "video"}


def test_the_loop_annotate_export_train_load(app, tmp_path):
    """`samstream app export` writes the training set the route serves; `samstream train` fine-tunes the
    embedded model on it for 2 steps; the checkpoint loads."""
    from samstream.cli import main as cli_main
    from samstream.cli import run as cli
    from samstream.load import DEFAULT_MODEL_PATH, load_model

    client, data, _, pid = app
    out = tmp_path / "trainset"
    assert cli(["app", "export", "--data", str(data), "--project", str(pid), "-o", str(out)]) == 0
    served = zipfile.ZipFile(io.BytesIO(client.get(f"/api/projects/{pid}/export?format=training").content))
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert files == sorted(served.namelist()) and all((out / n).read_bytes() == served.read(n) for n in files)
    assert cli(["app", "export", "--data", str(data), "--project", str(pid), "-o", str(tmp_path / "s.zip"),
                "--format", "sav"]) == 0
    assert zipfile.ZipFile(tmp_path / "s.zip").namelist() == ["clip_masks.json"]
    assert cli_main(["app", "export", "--data", str(data), "--project", "9999", "-o", str(tmp_path / "x")]) == 2
    assert cli_main(["app", "export", "--data", str(tmp_path), "--project", "1", "-o", str(tmp_path / "y")]) == 2

    run = tmp_path / "run"
    assert cli(["train", "--init", str(DEFAULT_MODEL_PATH), "--data", str(out), "--steps", "2", "--out", str(run),
                "--corrections", "1", "--no-augment", "--quiet", "--device", "cpu", "--max-objects", "2"]) == 0
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 2
    tuned = load_model(run / "model.safetensors")
    assert tuned.cfg == load_model(None).cfg


def test_an_import_over_the_upload_limit_is_refused_unread(tmp_path, model):
    """The import route shares the upload limit: a body plainly over it gets 413 before it is read, by its
    Content-Length or, without one, as soon as the bytes received pass the limit; nothing is stored."""
    from samstream.app.server import create_app

    data = tmp_path / "data"
    make_clip(data / "clip")
    with TestClient(create_app(data, model, model_name="test", max_upload_bytes=20000)) as client:
        vid, _ = new_video(client)
        client.post(f"/api/videos/{vid}/objects", json={})
        before = state(client, vid)
        r = upload(client, vid, b"\0" * (300 << 10), name="masks.zip")
        assert r.status_code == 413 and r.json() == {"error": "the upload is larger than the limit of 20000 bytes"}

        def chunked():
            yield b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="m.zip"\r\n\r\n'
            yield from (b"\0" * 4096 for _ in range(100))
            yield b"\r\n--xyz--\r\n"

        r = client.post(f"/api/videos/{vid}/import", content=chunked(),
                        headers={"content-type": "multipart/form-data; boundary=xyz"})
        assert r.status_code == 413 and "limit" in r.json()["error"]
        assert state(client, vid) == before
        # a small import still goes through the same route
        good = np.zeros((H, W), np.uint8)
        good[10:20, 10:30] = 1
        assert upload(client, vid, label_zip({0: good}), name="m.zip").status_code == 200
