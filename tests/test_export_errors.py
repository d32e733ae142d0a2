"""Clear errors: exporting an unknown config, a folder whose manifest does not match its graphs, a truncated graph
file, bad options; and `samstream export` end to end."""
from __future__ import annotations

import json
import shutil

import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from samstream.cli import main
from samstream.export import ExportError, export_model
from samstream.runtime import ExportFolderError, OnnxModel, VideoPredictor
from tests.helpers import small_model, synthetic_frames


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    folder = tmp_path_factory.mktemp("exp") / "small"
    export_model(small_model(), folder)
    return folder


@pytest.fixture
def copy(export, tmp_path):
    dst = tmp_path / "copy"
    shutil.copytree(export, dst)
    return dst


def test_the_export_runs(export):
    vp = VideoPredictor(export, synthetic_frames(3))
    vp.add_points(0, 1, [[20, 20]])
    assert [r.frame_idx for r in vp.propagate()] == [0, 1, 2]


def test_unknown_config_cli(tmp_path, capsys):
    assert main(["export", "sam2.1-hiera-huge", "--random-weights", "-o", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown model name 'sam2.1-hiera-huge'") and "sam2.1_hiera_tiny" in err
    assert main(["export", str(tmp_path / "missing.pt"), "-o", str(tmp_path / "x")]) == 2
    assert "checkpoint not found" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_cli_export_default_model(tmp_path, capsys):
    out = tmp_path / "default"
    assert main(["export", "default", "-o", str(out)]) == 0
    assert json.loads((out / "manifest.json").read_text())["config"]["name"] == "samstream-default"
    assert main(["export", "default", "-o", str(out)]) == 2  # not over an existing export
    assert "is not empty" in capsys.readouterr().err


def test_bad_options(tmp_path):
    with pytest.raises(ExportError, match="precision must be one of"):
        export_model(small_model(), tmp_path / "a", precision="int8")
    with pytest.raises(ExportError, match="opset must be an integer >= 17"):
        export_model(small_model(), tmp_path / "b", opset=11)


def test_truncated_graph(copy):
    f = copy / "memory_attention.onnx"
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    with pytest.raises(ExportFolderError, match=r"graph 'memory_attention': .* is truncated \(\d+ bytes, the manifest"):
        OnnxModel(copy)


def test_graph_swapped_for_another(copy):
    shutil.copy(copy / "decoder.onnx", copy / "memory_encoder.onnx")
    man = json.loads((copy / "manifest.json").read_text())
    man["graphs"]["memory_encoder"]["bytes"] = (copy / "memory_encoder.onnx").stat().st_size
    (copy / "manifest.json").write_text(json.dumps(man))
    with pytest.raises(ExportFolderError, match="does not match the manifest"):
        OnnxModel(copy)


def test_manifest_not_matching_graphs(copy):
    """A manifest edited by hand (another image size, another input list) is refused, naming the mismatch."""
    man = json.loads((copy / "manifest.json").read_text())
    man["config"]["image_size"] = man["preprocessing"]["image_size"] = 1024
    (copy / "manifest.json").write_text(json.dumps(man))
    with pytest.raises(ExportFolderError, match=r"'image_encoder' takes 64 px images, the manifest's config says 1024"):
        OnnxModel(copy)
    man["config"]["image_size"] = man["preprocessing"]["image_size"] = 64
    man["graphs"]["decoder"]["inputs"] = man["graphs"]["decoder"]["inputs"][:-1]
    (copy / "manifest.json").write_text(json.dumps(man))
    with pytest.raises(ExportFolderError, match=r"graph 'decoder': its inputs are .* the manifest lists"):
        OnnxModel(copy)


@pytest.mark.parametrize("edit,message", [
    (lambda m: m.pop("graphs"), "lacks the 'graphs' entry"),
    (lambda m: m.update(version=99), "manifest version 99"),
    (lambda m: m["config"].pop("num_maskmem"), "the config lacks num_maskmem"),
    (lambda m: m["graphs"].pop("decoder"), "lists no graph 'decoder'"),
])
def test_malformed_manifest(copy, edit, message):
    man = json.loads((copy / "manifest.json").read_text())
    edit(man)
    (copy / "manifest.json").write_text(json.dumps(man))
    with pytest.raises(ExportFolderError, match=message):
        OnnxModel(copy)


def test_not_an_export_folder(tmp_path):
    with pytest.raises(ExportFolderError, match=r"has no manifest\.json"):
        OnnxModel(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(ExportFolderError, match="is not valid JSON"):
        OnnxModel(tmp_path)


def test_prompt_errors(export):
    vp = VideoPredictor(export, synthetic_frames(3))
    with pytest.raises(ValueError, match=r"object 1 on frame 0: point .* lies outside the 64x48 image"):
        vp.add_points(0, 1, [[500, 20]])
    with pytest.raises(ValueError, match="no objects to track"):
        vp.propagate()
    with pytest.raises(ValueError, match="frame 7 is out of range"):
        vp.add_points(7, 1, [[5, 5]])


def test_segment_cli_takes_an_export_folder(export, tmp_path, capsys):
    from PIL import Image

    img = tmp_path / "frame.png"
    Image.fromarray(synthetic_frames(1)[0]).save(img)
    assert main(["segment", str(img), "--point", "20,20", "--model", str(export), "-o", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "mask.png").is_file()
    assert main(["segment", str(img), "--point", "20,20", "--model", str(export), "--mirror",
                 "-o", str(tmp_path / "out2")]) == 2
    assert "not available with an ONNX export folder" in capsys.readouterr().err
