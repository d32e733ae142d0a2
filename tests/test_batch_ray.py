"""`samstream batch` on a real two-node Ray cluster on this machine (Ray's cluster_utils.Cluster: a head and a
second node, each its own GCS/raylet processes, bound to 127.0.0.1), one cluster for the module, torn down at
its end. Outputs are compared byte for byte with `samstream track` / `samstream eval vos` run here with the
same torch thread count as a worker (1: conftest's, and one CPU per worker), the mp4 included."""
import json
import os
import shutil
import signal
import tempfile
from pathlib import Path

import pytest

from samstream.cli import main
from tests.helpers import DAVIS16, demo_clip, remux_faststart

ray = pytest.importorskip("ray")
from ray.cluster_utils import Cluster  # noqa: E402

import samstream.batch as batch  # noqa: E402

DEMO = Path(__file__).resolve().parents[1] / "samstream" / "assets" / "demo.mp4"
FORMATS = ("png", "json", "mp4")


@pytest.fixture(scope="module")
def cluster():
    """Head (1 CPU) + a second node (1 CPU); its own temp folder, so nothing is shared with another Ray here."""
    tmp = tempfile.mkdtemp(prefix="rb", dir="/tmp")  # short: Ray's socket paths live under it
    os.makedirs(f"{tmp}/ray")
    saved = {k: os.environ.get(k) for k in ("RAY_TMPDIR", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER")}
    os.environ["RAY_TMPDIR"] = tmp
    from ray._private import ray_constants

    # connecting to 127.0.0.1 must stay on 127.0.0.1: Ray otherwise swaps in this machine's outside address
    old_flag, ray_constants.ENABLE_RAY_CLUSTER = ray_constants.ENABLE_RAY_CLUSTER, False
    node = dict(num_cpus=1, node_ip_address="127.0.0.1", object_store_memory=80 * 2**20)
    c = Cluster(initialize_head=True, head_node_args=dict(node, include_dashboard=False, temp_dir=f"{tmp}/ray"))
    try:
        c.add_node(**node)
        c.wait_for_nodes()
        yield c
    finally:
        if ray.is_initialized():
            ray.shutdown()
        c.shutdown()
        ray_constants.ENABLE_RAY_CLUSTER = old_flag
        for k, v in saved.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """Three short clips with prompts (two 160x120 frame folders, one 320x240 mp4) and a corrupt mp4."""
    d = tmp_path_factory.mktemp("clips")
    demo_clip(d / "a", n=8)
    demo_clip(d / "b", n=8)
    remux_faststart(DEMO, d / "c.mp4", max_frames=8)
    (d / "bad.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(2000))
    entries = [{"video": "a", "prompts": ["0:1:90,20"]},
               {"video": "b", "prompts": ["0:1:90,20", "2:1:60,60,0"], "boxes": ["0:2:20,70,70,110"]},
               {"video": "c.mp4", "prompts": ["0:1:179,40"], "id": "cee"}]
    good = d / "good.jsonl"
    good.write_text("".join(json.dumps(e) + "\n" for e in entries))
    mixed = d / "mixed.jsonl"
    mixed.write_text(good.read_text() + json.dumps({"video": "bad.mp4", "prompts": ["0:1:10,10"]}) + "\n")
    return d, entries, good, mixed


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _track_args(e: dict, root: Path) -> list[str]:
    args = ["track", str(root / e["video"]), "--format", ",".join(FORMATS), "--quiet"]
    for p in e.get("prompts", []):
        args += ["--prompt", p]
    for b in e.get("boxes", []):
        args += ["--box", b]
    return args


@pytest.fixture(scope="module")
def first_run(cluster, clips, tmp_path_factory):
    """The mixed manifest through `batch.track` on the cluster (2 workers, one a node)."""
    out = tmp_path_factory.mktemp("batch") / "out"
    events = []
    summary = batch.track(clips[3], out, address=cluster.address, workers=2, formats=FORMATS, progress=False,
                          on_event=events.append)
    return out, summary, events


def test_outputs_equal_samstream_track_file_for_file(first_run, clips, tmp_path):
    out, _, events = first_run
    root, entries = clips[0], clips[1]
    assert len({e["pid"] for e in events if e["event"] == "started"}) == 2  # both workers took videos
    for e in entries:
        ref = tmp_path / e.get("id", e["video"].split(".")[0])
        assert main(_track_args(e, root) + ["-o", str(ref)]) == 0
        got = _files(out / ref.name)
        assert got == _files(ref), ref.name
        assert len([n for n in got if n.endswith(".png")]) == 8 and {"masks.json", "overlay.mp4"} <= set(got)


def test_corrupt_video_is_recorded_and_the_others_complete(first_run):
    out, summary, _ = first_run
    assert (summary["videos"], summary["done"], summary["failed"], summary["frames"]) == (4, 3, 1, 24)
    fails = [json.loads(ln) for ln in (out / "failures.jsonl").read_text().splitlines()]
    assert [(f["id"], f["line"]) for f in fails] == [("bad", 4)] and "bad.mp4" in fails[0]["error"]
    assert sorted(p.name for p in out.iterdir()) == ["a", "b", "batch.json", "cee", "failures.jsonl", "summary.json"]
    assert json.loads((out / "summary.json").read_text()) == summary


def test_rerun_skips_finished_videos(first_run, clips, cluster, capsys):
    out = first_run[0]
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*.png")}
    code = main(["batch", "track", str(clips[3]), "-o", str(out), "--address", cluster.address, "--workers", "1",
                 "--format", ",".join(FORMATS), "--quiet"])
    assert code == 2 and "1 video(s) failed: bad" in capsys.readouterr().err  # the corrupt one, tried again
    s = json.loads((out / "summary.json").read_text())
    assert (s["skipped"], s["done"], s["failed"]) == (3, 0, 1)
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.png")} == before


def test_rerun_with_other_settings_is_refused(first_run, clips, cluster, capsys):
    code = main(["batch", "track", str(clips[3]), "-o", str(first_run[0]), "--address", cluster.address, "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "holds a batch run with other settings (options differ" in err


def test_killed_worker_is_replaced_and_every_video_done_once(first_run, clips, cluster, tmp_path):
    out = tmp_path / "out"
    killed = []

    def kill_mid_video(e):
        if not killed and e["event"] == "frames" and e["pid"] and 0 < e["frames"] < (e["total"] or 8):
            os.kill(e["pid"], signal.SIGKILL)
            killed.append(e)
        events.append(e)

    events = []
    s = batch.track(clips[2], out, address=cluster.address, workers=2, formats=FORMATS, progress=False,
                    on_event=kill_mid_video)
    assert killed and s["worker_deaths"] >= 1
    died = [e for e in events if e["event"] == "worker_died"]
    assert died[0]["id"] == killed[0]["id"] and died[0]["pid"] == killed[0]["pid"]
    retried = [e for e in events if e["event"] == "started" and e["id"] == killed[0]["id"]]
    assert len(retried) == 2 and retried[1]["attempt"] == 2
    assert (s["done"], s["failed"]) == (3, 0)
    assert [e["id"] for e in events if e["event"] == "finished"].count(killed[0]["id"]) == 1
    assert sorted(p.name for p in out.iterdir()) == ["a", "b", "batch.json", "cee", "failures.jsonl", "summary.json"]
    for name in ("a", "b", "cee"):  # complete and the same as the undisturbed run's
        assert _files(out / name) == _files(first_run[0] / name), name


def test_batch_eval_vos_gives_eval_vos_scores(cluster, tmp_path, capsys):
    data = tmp_path / "davis"  # two DAVIS 2016 sequences, their first 4 frames (the full run: docs/batch.md)
    for seq in ("blackswan", "surf"):
        for sub, ext in (("JPEGImages", "jpg"), ("Annotations", "png")):
            dst = data / sub / "480p" / seq
            dst.mkdir(parents=True)
            for f in sorted((DAVIS16 / sub / "480p" / seq).glob(f"*.{ext}"))[:4]:
                shutil.copy(f, dst / f.name)
    assert main(["eval", "vos", "--data", str(data), "-o", str(tmp_path / "one"), "-q"]) == 0
    assert main(["batch", "eval", "vos", "--data", str(data), "-o", str(tmp_path / "many"), "-q",
                 "--address", cluster.address, "--workers", "2"]) == 0
    one, many = (json.loads((tmp_path / n / "results.json").read_text()) for n in ("one", "many"))
    assert 0 < one["J&F"] <= 1 and many["J&F"] == one["J&F"]
    assert {k: v for k, v in many.items() if k != "settings"} == {k: v for k, v in one.items() if k != "settings"}
    assert _files(tmp_path / "many" / "masks") == _files(tmp_path / "one" / "masks")
    assert (tmp_path / "many" / "results.csv").read_bytes() == (tmp_path / "one" / "results.csv").read_bytes()


def test_batch_track_all_equals_samstream_track_all_file_for_file(cluster, clips, tmp_path):
    """Automatic masks (no prompts) over two clips on the cluster: each video's files are those of `samstream
    track-all` with the same options."""
    root = clips[0]
    manifest = tmp_path / "all.jsonl"
    manifest.write_text("".join(json.dumps({"video": str(root / v)}) + "\n" for v in ("a", "c.mp4")))
    opts = ["--key-every", "3", "--max-frames", "5", "--points-per-side", "8", "--format", "png,json"]
    assert main(["batch", "track-all", str(manifest), "-o", str(tmp_path / "many"), "-q", "--address",
                 cluster.address, "--workers", "2", *opts]) == 0
    for video, name in (("a", "a"), ("c.mp4", "c")):
        assert main(["track-all", str(root / video), "-o", str(tmp_path / "one" / name), "--quiet", *opts]) == 0
        one, many = _files(tmp_path / "one" / name), _files(tmp_path / "many" / name)
        assert one and any(k.endswith(".png") for k in one) and many == one, name
    summary = json.loads((tmp_path / "many" / "summary.json").read_text())
    assert summary["videos"] == 2 and not summary.get("failed")
