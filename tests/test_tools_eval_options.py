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
