"""Hard-subset scores (occlusion / leave-and-return) from an events file: selection, averaging, CLI."""
from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

import samstream.cli.eval as cli
from samstream.eval import ObjectResult, VOSResults, evaluate_vos
from samstream.eval.events import (
    find_events,
    read_events,
    score_subsets,
    subset_members,
)
from tests.helpers import save_indexed


def _obj(seq, obj, j, f):
    return ObjectResult(seq, obj, [f"{i:05d}" for i in range(len(j))], list(j), list(f))


def _results():
    # Per-object means differ from per-frame and per-sequence means, so a wrong averaging shows:
    #   A/1: J 0.3 F 0.7 (2 frames)   A/2: J 1.0 F 1.0   B/1: J 0.5 F 0.1 (1 frame)   B/3: J 0.9 F 0.5 (1 frame)
    objs = [_obj("A", "1", [0.2, 0.4], [0.6, 0.8]), _obj("A", "2", [1.0, 1.0], [1.0, 1.0]),
            _obj("B", "1", [0.5], [0.1]), _obj("B", "3", [0.9], [0.5])]
    return VOSResults(objects=objs, sequences=["A", "B"])


EVENTS = {
    "A": {"objects": [1, 2], "occlusion": [1], "leave_return": [1]},  # both: counted once in the union
    "B": {"objects": [1, 3], "occlusion": [], "leave_return": [1, 3]},
    "C": {"objects": [1], "occlusion": [1], "leave_return": []},  # not evaluated: ignored
}


def test_subset_members_union_and_ids_as_text():
    m = subset_members(EVENTS)
    assert m["occlusion"] == {("A", "1"), ("C", "1")}
    assert m["leave_return"] == {("A", "1"), ("B", "1"), ("B", "3")}
    assert m["occlusion_or_leave"] == {("A", "1"), ("B", "1"), ("B", "3"), ("C", "1")}
    assert subset_members({"S": {"occlusion": ["001"]}})["occlusion"] == {("S", "1")}


def test_subsets_average_over_objects_like_the_global_figures():
    subsets, warnings = score_subsets(_results(), EVENTS)
    occ, lr, union = subsets["occlusion"], subsets["leave_return"], subsets["occlusion_or_leave"]
    assert occ["num_objects"] == 1 and occ["objects"] == ["A/1"]
    assert occ["J"] == pytest.approx(0.3) and occ["F"] == pytest.approx(0.7) and occ["J&F"] == pytest.approx(0.5)
    # A/1, B/1, B/3: J = (0.3 + 0.5 + 0.9) / 3 (per-frame mean would be 0.5, per-sequence 0.5)
    assert lr["num_objects"] == 3
    assert lr["J"] == pytest.approx(1.7 / 3) and lr["F"] == pytest.approx(1.3 / 3)
    assert lr["J&F"] == pytest.approx((1.7 / 3 + 1.3 / 3) / 2)
    assert union["num_objects"] == 3 and union["J"] == pytest.approx(lr["J"])  # A/1 once, C not evaluated
    assert warnings == []


def test_subset_of_all_objects_equals_global_and_missing_objects_warn():
    res = _results()
    everything = {"A": {"occlusion": [1, 2]}, "B": {"leave_return": [1, 3]}}
    subsets, _ = score_subsets(res, everything)
    assert subsets["occlusion_or_leave"]["J&F"] == pytest.approx(res.JF)
    assert subsets["occlusion_or_leave"]["J"] == pytest.approx(res.J)
    subsets, warnings = score_subsets(res, {"A": {"occlusion": [7]}})
    assert subsets["occlusion"]["num_objects"] == 0 and np.isnan(subsets["occlusion"]["J&F"])
    assert any("A/7" in w for w in warnings)
    _, warnings = score_subsets(res, {"Z": {"occlusion": [1]}})
    assert any("none of the evaluated sequences" in w for w in warnings)


@pytest.mark.parametrize("text, match", [
    ("[1, 2]", "expected an object"), ('{"A": [1]}', "expected an object"),
    ('{"A": {"occlusion": 1}}', "list of object ids"), ('{"A": {"occlusion": [true]}}', "list of object ids"),
    ("{not json", "not valid JSON")])
def test_bad_events_files_are_refused(tmp_path, text, match):
    p = tmp_path / "events.json"
    p.write_text(text)
    with pytest.raises(ValueError, match=match):
        read_events(p)
    with pytest.raises(FileNotFoundError):
        read_events(tmp_path / "nope.json")


# ------------------------------------------------------------------------------------------ CLI
def _run(argv) -> int:
    parser = argparse.ArgumentParser(prog="samstream")
    cli.add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """DAVIS root with Annotations/480p (2 sequences, 2 objects, 5 frames) + events.json, and predictions
    whose error differs per object."""
    root = tmp_path_factory.mktemp("events")
    for s, seq in enumerate(("s0", "s1")):
        for t in range(5):
            gt = np.zeros((40, 60), np.uint8)
            gt[5:20, 5 + t:25 + t] = 1
            gt[22:38, 30:50] = 2
            pred = gt.copy()
            pred[5:20, 5 + t:10 + t + 4 * s] = 0  # object 1 loses a strip, wider in s1
            pred[22:24 + 3 * t + 2 * s, 30:50] = 0  # object 2 loses more rows each frame (and in s1)
            save_indexed(root / "data" / "Annotations" / "480p" / seq / f"{t:05d}.png", gt)
            save_indexed(root / "pred" / seq / f"{t:05d}.png", pred)
    (root / "data" / "events.json").write_text(json.dumps({"s0": {"occlusion": [2]},
                                                           "s1": {"leave_return": [1, 2]}}))
    return root


def test_score_reads_the_datasets_events_json_by_default(dataset, tmp_path, capsys):
    out = tmp_path / "r.json"
    assert find_events(dataset / "data" / "Annotations" / "480p") == dataset / "data" / "events.json"
    assert _run(["eval", "score", "--gt", str(dataset / "data"), "--pred", str(dataset / "pred"), "-q",
                 "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    scored = evaluate_vos(dataset / "data", dataset / "pred", progress=False).objects
    ref = {(o.sequence, o.object_id): o for o in scored}
    assert len({round(o.j_mean, 6) for o in ref.values()}) == 4  # every object scores differently

    def expect(pairs):
        j = np.mean([ref[p].j_mean for p in pairs])
        f = np.mean([ref[p].f_mean for p in pairs])
        return (j + f) / 2, j, f

    for name, pairs in (("occlusion", [("s0", "2")]), ("leave_return", [("s1", "1"), ("s1", "2")]),
                        ("occlusion_or_leave", [("s0", "2"), ("s1", "1"), ("s1", "2")])):
        jf, j, f = expect(pairs)
        got = data["subsets"][name]
        assert got["num_objects"] == len(pairs)
        assert (got["J&F"], got["J"], got["F"]) == pytest.approx((jf, j, f)), name
    assert data["settings"]["events"].endswith("events.json")
    # the mask folder itself also finds its dataset's events file, and the table shows the subsets
    assert _run(["eval", "score", "--gt", str(dataset / "data" / "Annotations" / "480p"),
                 "--pred", str(dataset / "pred")]) == 0
    printed = capsys.readouterr().out
    assert "occlusion_or_leave" in printed and f"{100 * data['subsets']['leave_return']['J&F']:.1f}" in printed


def test_score_events_flags(dataset, tmp_path):
    out = tmp_path / "r.json"
    assert _run(["eval", "score", "--gt", str(dataset / "data"), "--pred", str(dataset / "pred"), "-q",
                 "--no-events", "--json", str(out)]) == 0
    assert "subsets" not in json.loads(out.read_text())
    other = tmp_path / "ev.json"
    other.write_text(json.dumps({"s1": {"occlusion": ["1"]}}))
    assert _run(["eval", "score", "--gt", str(dataset / "data"), "--pred", str(dataset / "pred"), "-q",
                 "--events", str(other), "--json", str(out)]) == 0
    sub = json.loads(out.read_text())["subsets"]
    assert sub["occlusion"]["objects"] == ["s1/1"] and sub["leave_return"]["num_objects"] == 0
    with pytest.raises(FileNotFoundError):
        _run(["eval", "score", "--gt", str(dataset / "data"), "--pred", str(dataset / "pred"), "-q",
              "--events", str(tmp_path / "missing.json")])
    with pytest.raises(ValueError, match="contradict"):
        _run(["eval", "score", "--gt", str(dataset / "data"), "--pred", str(dataset / "pred"), "-q",
              "--events", str(other), "--no-events"])
