"""`samstream eval score`: argument parsing, the printed table, JSON / CSV / plot outputs."""
from __future__ import annotations

import argparse
import csv
import json

import numpy as np
import pytest

import samstream.cli.eval as cli
from samstream.eval import evaluate_vos
from tests.helpers import load_davis16, optional_import, perturb, save_indexed


def _parser():
    parser = argparse.ArgumentParser(prog="samstream")
    sub = parser.add_subparsers(dest="command", required=True)
    eval_sub = cli.add_parser(sub)
    return parser, eval_sub


def _run(argv) -> int:
    parser, _ = _parser()
    args = parser.parse_args(argv)
    return args.func(args)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    rng = np.random.default_rng(0)
    for seq in ("blackswan", "surf"):
        for t in range(6):
            g = load_davis16(seq, 9 * t)
            save_indexed(root / "gt" / seq / f"{9 * t:05d}.png", g.astype(np.uint8))
            save_indexed(root / "pred" / seq / f"{9 * t:05d}.png", perturb(g, t, rng).astype(np.uint8))
    return root


def test_score_writes_json_csv_and_prints_table(dataset, tmp_path, capsys):
    out_json, out_csv = tmp_path / "r.json", tmp_path / "r.csv"
    rc = _run(["eval", "score", "--gt", str(dataset / "gt"), "--pred", str(dataset / "pred"),
               "--json", str(out_json), "--csv", str(out_csv), "--procs", "2"])
    assert rc == 0
    ref = evaluate_vos(dataset / "gt", dataset / "pred", progress=False)
    data = json.loads(out_json.read_text())
    assert data["J&F"] == pytest.approx(ref.JF) and data["J"] == pytest.approx(ref.J)
    assert data["F"] == pytest.approx(ref.F)
    assert data["J&F"] == pytest.approx((data["J"] + data["F"]) / 2)
    assert set(data["sequences"]) == {"blackswan", "surf"}
    obj = data["sequences"]["surf"]["objects"]["1"]
    assert obj["num_frames"] == 4 and len(obj["J_per_frame"]) == 4
    assert data["settings"]["skip_first_last"] is True
    rows = list(csv.DictReader(out_csv.open()))
    assert [(r["sequence"], r["object"]) for r in rows] == [("blackswan", "1"), ("surf", "1")]
    assert float(rows[0]["J-Mean"]) == pytest.approx(ref.objects[0].j_mean, abs=1e-6)
    printed = capsys.readouterr().out
    assert "Global score" in printed and f"{100 * ref.JF:.1f}" in printed


def test_score_options_reach_the_evaluator(dataset, tmp_path):
    out_json = tmp_path / "r.json"
    assert _run(["eval", "score", "--gt", str(dataset / "gt"), "--pred", str(dataset / "pred"), "--json",
                 str(out_json), "--no-skip-first-last", "--layout", "davis", "--protocol", "sav",
                 "--sequences", "surf", "-q"]) == 0
    data = json.loads(out_json.read_text())
    assert list(data["sequences"]) == ["surf"]
    assert data["sequences"]["surf"]["objects"]["1"]["num_frames"] == 6
    assert data["settings"]["protocol"] == ["sav"]


def test_score_plot(dataset, tmp_path):
    optional_import("matplotlib")
    out = tmp_path / "jf.png"
    assert _run(["eval", "score", "--gt", str(dataset / "gt"), "--pred", str(dataset / "pred"), "--plot",
                 str(out), "-q"]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_errors_surface_as_value_errors(tmp_path):
    (tmp_path / "gt").mkdir()
    (tmp_path / "pred").mkdir()
    with pytest.raises(ValueError, match="nothing to evaluate"):
        _run(["eval", "score", "--gt", str(tmp_path / "gt"), "--pred", str(tmp_path / "pred"), "-q"])


def test_parsers_have_funcs_and_room_for_more_eval_commands():
    parser, eval_sub = _parser()
    # more `eval` commands can be added on the returned nested subparsers
    extra = eval_sub.add_parser("extra")
    extra.set_defaults(func=lambda args: 0)
    args = parser.parse_args(["eval", "extra"])
    assert args.func(args) == 0
    for name in ("vos", "image"):
        assert callable(parser.parse_args(["eval", name, "--data", "d", "-o", "o"] if name == "vos"
                                          else ["eval", name, "--data", "d"]).func)
    args = parser.parse_args(["eval", "score", "--gt", "a", "--pred", "b"])
    assert callable(args.func) and args.procs == 1 and args.layout == "auto"
    with pytest.raises(SystemExit):
        parser.parse_args(["eval"])  # a sub-command is required
