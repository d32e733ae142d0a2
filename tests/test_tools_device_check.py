"""tools/device_check.sh, the one-call script for a lent GPU, as a dry run on the CPU (its CUDA tests skip)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from samstream.checkpoint import read_state_dict
from samstream.load import DEFAULT_MODEL_PATH

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(not DEFAULT_MODEL_PATH.is_file(), reason="no embedded default model")


def test_dry_run_brings_back_the_log_benchmark_and_weights(tmp_path):
    bin_dir = tmp_path / "bin"  # the script calls python3: this interpreter
    bin_dir.mkdir()
    (bin_dir / "python3").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    (bin_dir / "python3").chmod(0o755)
    out = tmp_path / "out"
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", OUT=str(out), DEVICE="cpu", BATCH="1",
               REPEAT="1", PROBE="2", TMPDIR=str(tmp_path))
    proc = subprocess.run(["bash", "tools/device_check.sh", "0.5"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    log = (out / "log.txt").read_text()
    assert "== CUDA tests" in log and "passed" in log and "failed" not in log, log
    bench = json.loads((out / "bench.json").read_text())
    assert [r["objects"] for r in bench["runs"]] == [1, 4] and all(r["fps"] > 0 for r in bench["runs"])
    assert all(r["frames"] == 60 for r in bench["runs"])  # the whole demo clip
    plan = json.loads((out / "finetune.json").read_text())
    assert plan["stage"]["train"]["steps"] >= 1 and plan["device"] == "cpu" and "train_seconds" in plan
    assert len((out / "metrics.jsonl").read_text().splitlines()) == plan["stage"]["train"]["steps"]
    _, cfg = read_state_dict(out / "model.safetensors")
    assert cfg is not None and cfg.name == "samstream-default"
