"""samstream.batch without Ray: manifests and DAVIS folders as jobs, the output folder's rules, and that Ray is
imported by nothing but a running batch."""
import json
import subprocess
import sys

import pytest

from samstream.batch import BatchOutput, ManifestError, load_jobs, read_manifest
from samstream.batch.config import PRECISIONS, TrackOptions, WorkerConfig, settings
from samstream.batch.manifest import davis_jobs
from samstream.batch.outputs import SettingsMismatch
from tests.helpers import DAVIS16


def _manifest(tmp_path, *lines):
    p = tmp_path / "m.jsonl"
    p.write_text("".join((ln if isinstance(ln, str) else json.dumps(ln)) + "\n" for ln in lines))
    return p


def test_manifest_resolves_paths_and_parses_prompts(tmp_path):
    p = _manifest(tmp_path, "# a comment", {"video": "clips/a.mp4", "prompts": ["0:1:10,20", "0:1:5,5,0"],
                                            "boxes": ["3:2:1,2,30,40"]},
                  "", {"video": "/data/b", "masks": "gt/b.png", "id": "bee"})
    a, b = read_manifest(p)
    assert (a.id, a.video, a.line) == ("a", str(tmp_path / "clips" / "a.mp4"), 2)
    assert a.prompts == ((0, 1, [10.0, 20.0]), (0, 1, [5.0, 5.0, 0.0])) and a.boxes == ((3, 2, [1.0, 2.0, 30.0, 40.0]),)
    assert (b.id, b.video, b.masks, b.line) == ("bee", "/data/b", str(tmp_path / "gt" / "b.png"), 4)


@pytest.mark.parametrize("line, message", [
    ("{not json", "line 2: not JSON"),
    ('["a.mp4"]', "line 2: expected a JSON object"),
    ({"video": "a.mp4", "prompt": ["0:1:1,1"]}, "line 2: unknown key(s) ['prompt']"),
    ({"prompts": ["0:1:1,1"]}, "line 2: 'video' (a path) is required"),
    ({"video": "a.mp4", "prompts": ["0:1:1"]}, "line 2: bad prompt '0:1:1': expected 2 or 3 numbers"),
    ({"video": "a.mp4", "boxes": ["0:300:1,1,2,2"]}, "line 2: bad box '0:300:1,1,2,2': object ids are 1..255"),
    ({"video": "a.mp4", "prompts": "0:1:1,1"}, "line 2: 'prompts' must be a list"),
    ({"video": "a.mp4"}, "line 2: no prompts"),
    ({"video": "https://x.org/a.mp4", "prompts": ["0:1:1,1"]}, "line 2: video 'https://x.org/a.mp4': URLs"),
    ({"video": "a.mp4", "prompts": ["0:1:1,1"], "id": "../x"}, "line 2: id '../x' cannot be a folder name"),
    ({"video": "a.mp4", "prompts": ["0:1:1,1"], "id": "summary.json"}, "cannot be a folder name"),
    ({"video": "other/b.mp4", "prompts": ["0:1:1,1"], "id": "b"}, "line 2: id 'b' is also line 1's"),
])
def test_bad_manifest_lines_name_the_line(tmp_path, line, message):
    p = _manifest(tmp_path, {"video": "b.mp4", "prompts": ["0:1:1,1"]}, line)
    with pytest.raises(ManifestError) as e:
        read_manifest(p)
    assert message in str(e.value) and str(p) in str(e.value)


def test_track_all_needs_no_prompts_and_empty_manifest_is_refused(tmp_path):
    assert load_jobs(_manifest(tmp_path, {"video": "a.mp4"}), need_prompts=False)[0].id == "a"
    with pytest.raises(ManifestError, match="lists no video"):
        read_manifest(_manifest(tmp_path, "# nothing"))
    with pytest.raises(FileNotFoundError, match="manifest not found"):
        read_manifest(tmp_path / "missing.jsonl")


def test_davis_folder_is_a_manifest():
    jobs = davis_jobs(DAVIS16, ["blackswan", "surf"])
    assert [j.id for j in jobs] == ["blackswan", "surf"]
    assert jobs[0].video.endswith("JPEGImages/480p/blackswan") and jobs[0].masks.endswith("blackswan/00000.png")
    assert len(load_jobs(DAVIS16)) == 5
    with pytest.raises(ManifestError, match=r"sequences not in .*\['nope'\]"):
        davis_jobs(DAVIS16, ["nope"])


def test_output_folder_records_settings_and_refuses_others(tmp_path):
    out = BatchOutput(tmp_path / "out")
    s = settings("track", WorkerConfig(), TrackOptions(formats=("png",)))
    out.check_settings(s)
    out.check_settings(settings("track", WorkerConfig(cpus=4), TrackOptions(formats=("png",))))  # resources only
    with pytest.raises(SettingsMismatch, match="options differ"):
        out.check_settings(settings("track", WorkerConfig(), TrackOptions(formats=("png", "json"))))
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "x.txt").write_text("x")
    with pytest.raises(FileExistsError, match="not a batch output folder"):
        BatchOutput(tmp_path / "other").check_settings(s)


def test_commit_is_one_rename_and_a_second_attempt_is_dropped(tmp_path):
    out = BatchOutput(tmp_path)
    first, second = out.begin("v"), out.begin("v")
    for t in (first, second):
        (t / "00000.png").write_bytes(b"x")
    assert out.commit(first, "v") and not out.commit(second, "v")
    assert sorted(p.name for p in (tmp_path / "v").iterdir()) == ["00000.png"] and not second.exists()


def test_worker_config_checks():
    with pytest.raises(ValueError, match="precision must be one of"):
        WorkerConfig(precision="int8")
    from samstream import precision

    assert WorkerConfig(precision="bf16").precision == "bf16"  # CPU workers autocast too
    assert set(PRECISIONS) == set(precision.PRECISIONS)
    assert WorkerConfig(gpus=0.5).device == "cuda" and WorkerConfig().device == "cpu"


def test_ray_is_imported_only_by_a_running_batch():
    code = ("import sys, samstream, samstream.batch, samstream.batch.runner, samstream.cli\n"
            "samstream.cli.build_parser()\n"
            "samstream.load_model\n"
            "print(sorted(m for m in sys.modules if m == 'ray' or m.startswith('ray.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_cli_names_the_bad_line_before_any_work(tmp_path, capsys):
    from samstream.cli import main

    p = _manifest(tmp_path, {"video": "a.mp4", "prompts": ["0:1:1,1"]}, {"video": "b.mp4", "prompts": ["0:x:1,1"]})
    assert main(["batch", "track", str(p), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and f"{p} line 2: bad prompt '0:x:1,1'" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_unknown_model_is_refused_before_ray_starts(tmp_path):
    import samstream.batch

    p = _manifest(tmp_path, {"video": "a.mp4", "prompts": ["0:1:1,1"]})
    with pytest.raises(FileNotFoundError, match=r"checkpoint not found: nope\.pt"):
        samstream.batch.track(p, tmp_path / "out", model="nope.pt")
    assert not (tmp_path / "out").exists()
