"""`samstream finetune-default` (samstream.train.finetune): a time-boxed continuation of the default model's
training (for a lent GPU)."""
import json

import pytest
import torch

from samstream.checkpoint import read_state_dict
from samstream.cli import run
from samstream.load import DEFAULT_MODEL_PATH
from samstream.train import finetune

pytestmark = pytest.mark.skipif(not DEFAULT_MODEL_PATH.is_file(), reason="no embedded default model")


def main(argv):
    return run(["finetune-default", *argv])


def test_steps_for_budget():
    assert finetune.steps_for_budget(100, 0.5) == 180  # 90 % of the budget
    assert finetune.steps_for_budget(1, 10) == 1  # at least one step
    with pytest.raises(ValueError, match="positive"):
        finetune.steps_for_budget(100, 0)


def _changed_tensors(path) -> int:
    new, _ = read_state_dict(path)
    old, _ = read_state_dict(DEFAULT_MODEL_PATH)
    assert new.keys() == old.keys()
    return sum(not torch.equal(new[k], old[k]) for k in old)


def test_budget_sets_the_steps_and_a_rerun_resumes_the_plan(tmp_path, monkeypatch, capsys):
    calls = []

    def probe(model, stage, videos, seed, device, workers, steps):
        calls.append(steps)
        return 5.0  # seconds a step: 0.2 min x 60 x 0.9 / 5 -> 2 steps

    monkeypatch.setattr(finetune, "probe_seconds_per_step", probe)
    out = tmp_path / "ft"
    assert main(["--out", str(out), "--minutes", "0.2", "--batch-size", "1", "--name", "ft"]) == 0
    report = json.loads((out / "finetune.json").read_text())
    assert calls == [8] and report["stage"]["train"]["steps"] == 2 and report["probe_seconds_per_step"] == 5.0
    assert report["stage"]["in_memory"] and report["stage"]["videos"] == 900_000
    # the plan's stage, as a recipe Stage, runs with the run's seed and clip draws (no workers: one RNG stream)
    assert (report["stage"]["seed"], report["stage"]["min_data_workers"]) == (2026, 0)
    assert len((out / "ft" / "metrics.jsonl").read_text().splitlines()) == 2
    assert _changed_tensors(out / "ft" / "model.safetensors") > 50
    # a rerun with the same --out keeps the plan (no second probe; its seed) and finds the stage done
    capsys.readouterr()
    assert main(["--out", str(out), "--minutes", "9", "--name", "ft", "--seed", "5"]) == 0
    assert calls == [8] and "resuming the run planned" in capsys.readouterr().out
    rerun = json.loads((out / "finetune.json").read_text())
    assert rerun["stage"]["train"]["steps"] == 2 and rerun["seed"] == report["seed"] == 2026
    # a plan written before Stage had a seed keeps the seed written beside its stage
    for key in ("seed", "min_data_workers"):
        del rerun["stage"][key]
    (out / "finetune.json").write_text(json.dumps(rerun))
    assert main(["--out", str(out), "--minutes", "9", "--name", "ft", "--seed", "5"]) == 0
    old_plan = json.loads((out / "finetune.json").read_text())
    assert old_plan["stage"]["seed"] == old_plan["seed"] == 2026


def test_probe_times_real_steps():
    from samstream.model import SAM2Model
    from samstream.train.data import SynthVideoRange
    from samstream.train.recipe import STAGES, default_model_config

    stage = [s for s in STAGES if s.train.frames > 1][-1]
    model = SAM2Model(default_model_config(160))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    per_step = finetune.probe_seconds_per_step(model, stage, SynthVideoRange(0, 10), 0, "cpu", 0, 2)
    assert 0 < per_step < 60
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # it trains a copy


def test_refuses_heldout_seeds(tmp_path):
    with pytest.raises(ValueError, match="held out"):
        main(["--out", str(tmp_path), "--videos", "1000001"])
