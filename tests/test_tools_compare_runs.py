"""tools/compare_runs.py: the paired per-object comparison the README's release choices quote."""
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
from compare_runs import object_scores, paired


def _results(path, scores):
    seqs = {}
    for key, jf in scores.items():
        seq, obj = key.split("/")
        seqs.setdefault(seq, {"objects": {}})["objects"][obj] = {"J&F": jf}
    path.mkdir()
    (path / "results.json").write_text(json.dumps({"sequences": seqs}))
    return path


def test_paired_difference_standard_error_and_wins(tmp_path):
    a = object_scores(_results(tmp_path / "a", {"s1/1": 0.5, "s1/2": 0.8, "s2/1": 0.6, "s2/3": 0.9}))
    b = object_scores(_results(tmp_path / "b", {"s1/1": 0.7, "s1/2": 0.8, "s2/1": 0.5, "s2/3": 0.95}))
    r = paired(a, b)  # differences 0.2, 0.0, -0.1, 0.05: mean 0.0375, sd 0.125 -> s.e. 0.0625
    assert r == {"objects": 4, "mean_diff_points": 3.75, "standard_error_points": 6.25, "wins": 2, "losses": 1}
    with pytest.raises(ValueError, match="different objects"):
        paired(a, {k: v for k, v in b.items() if k != "s2/3"})
