"""tools/eval_options.py: inference options of one model side by side (the README's inference-options.json)."""
import json
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import eval_options

from samstream import SAM2Model, save_model
from samstream.train.synth_cli import write_synthetic_set
from samstream.train.synthetic import SynthConfig
from test_image_predictor import small_config


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("opts")
    data = write_synthetic_set(root / "data", [3], SynthConfig(height=96, width=128, num_frames=4))
    torch.manual_seed(0)
    weights = save_model(SAM2Model(small_config()), root / "m.safetensors")
    return data, weights, root


def _run(monkeypatch, data, weights, work, out, only):
    weights = [] if weights is None else ["--weights", str(weights)]  # None: the embedded default model
    monkeypatch.setattr(sys, "argv", ["eval_options.py", "--data", str(data), *weights, "--work", str(work),
                                      "--out", str(out), "--only", only])
    assert eval_options.main() == 0
    return json.loads(Path(out).read_text())


def test_mirror_option_and_adding_to_an_existing_report(setup, monkeypatch):
    data, weights, root = setup
    out = root / "report.json"
    first = _run(monkeypatch, data, None, root / "work", out, "as shipped")
    assert list(first["options"]) == ["as shipped"] and "mirror" not in first["options"]["as shipped"]
    both = _run(monkeypatch, data, None, root / "work", out, "mirror (test-time augmentation)")
    assert list(both["options"]) == ["as shipped", "mirror (test-time augmentation)"]
    assert both["options"]["as shipped"] == first["options"]["as shipped"]  # kept, not re-run
    row = both["options"]["mirror (test-time augmentation)"]
    assert row["mirror"] is True and 0.0 <= row["J&F"] <= 1.0
    # the two options' masks differ (the mirror reached the sessions; the embedded model tracks the objects)
    plain = sorted((root / "work" / "as_shipped").rglob("*.png"))
    mirrored = sorted((root / "work" / "mirror_(test-time_augmentation)").rglob("*.png"))
    assert len(plain) == len(mirrored) > 0 and any(a.read_bytes() != b.read_bytes() for a, b in zip(plain, mirrored))
    # a report of other weights is replaced, not added to
    other = _run(monkeypatch, data, weights, root / "work2", out, "mirror (test-time augmentation)")
    assert other["weights"] == str(weights) and list(other["options"]) == ["mirror (test-time augmentation)"]


def test_pointer_options_reach_the_model_and_each_option_writes_per_object_results(setup, monkeypatch):
    import compare_runs

    from samstream.eval import vos_run
    from samstream.train.recipe import RELEASE_SETTINGS

    data, _, root = setup
    seen = []
    run_vos = vos_run.run_vos
    monkeypatch.setattr(vos_run, "run_vos", lambda model, *a, **k: seen.append(model.cfg) or run_vos(model, *a, **k))
    shipped = (RELEASE_SETTINGS["max_obj_ptrs_in_encoder"], RELEASE_SETTINGS["edge_refine_radius"])
    for name, (pointers, radius) in (("as shipped", shipped), ("object pointers 16 (SAM 2's)", (16, shipped[1])),
                                     ("no edge refinement", (shipped[0], 0.0))):
        _run(monkeypatch, data, None, root / "work3", root / "report3.json", name)
        cfg = seen.pop()
        assert (cfg.max_obj_ptrs_in_encoder, cfg.edge_refine_radius) == (pointers, radius), name
    # results.json beside each option's masks: per object, so that two options compare paired
    a, b = (compare_runs.object_scores(str(root / "work3" / d)) for d in ("as_shipped", "object_pointers_16_(SAM_2s)"))
    assert a.keys() == b.keys() and len(a) >= 1 and all(0.0 <= v <= 1.0 for v in a.values())
