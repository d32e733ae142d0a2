"""Paired comparison of two models' `samstream eval vos` results, object by object.

    .venv/bin/python tools/compare_runs.py --a runs/e-val runs/e-val2 --b runs/f-val runs/f-val2

--a and --b each take one or more results folders (or results.json files) of the same videos, in the same
order; the objects of all of them are pooled. Prints the mean of B's J&F minus A's over the objects (in
points), its standard error (the standard deviation of the differences over sqrt(n)), and how many objects
B wins or loses by more than 0.01. On 60 videos (~130 objects) a difference of 0.5 points is within noise
for this model: the standard error of such comparisons is 0.35-1.2 points.
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path


def object_scores(path: str) -> dict[str, float]:
    """{'<sequence>/<object id>': J&F} of one results.json (or a folder holding one)."""
    p = Path(path)
    r = json.loads((p / "results.json" if p.is_dir() else p).read_text())
    return {f"{s}/{o}": v["J&F"] for s, seq in r["sequences"].items() for o, v in seq["objects"].items()}


def paired(a: dict[str, float], b: dict[str, float]) -> dict:
    if a.keys() != b.keys():
        raise ValueError(f"the runs score different objects ({len(a)} against {len(b)}): not the same videos")
    d = [b[k] - a[k] for k in a]
    n = len(d)
    if n < 2:
        raise ValueError("need at least two objects")
    mean = sum(d) / n
    sd = math.sqrt(sum((x - mean) ** 2 for x in d) / (n - 1))
    return {"objects": n, "mean_diff_points": round(100 * mean, 2),
            "standard_error_points": round(100 * sd / math.sqrt(n), 2),
            "wins": sum(x > 0.01 for x in d), "losses": sum(x < -0.01 for x in d)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--a", nargs="+", required=True, help="results of the baseline")
    p.add_argument("--b", nargs="+", required=True, help="results of the model compared with it")
    args = p.parse_args()
    if len(args.a) != len(args.b):
        p.error("--a and --b need as many results each (the same videos, in the same order)")
    a, b = {}, {}
    for ra, rb in zip(args.a, args.b):
        a.update(object_scores(ra))
        b.update(object_scores(rb))
    print(json.dumps({"a": args.a, "b": args.b, **paired(a, b)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
