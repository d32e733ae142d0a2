"""J&F on the hard subsets of a dataset: objects that are fully occluded, or leave the frame and come back.

An events file (written by `samstream synth` / `samstream.train.synthetic.write_davis_folder`) is JSON:

    {"<sequence>": {"objects": [1, 2], "occlusion": [1], "leave_return": []}, ...}

Subsets: "occlusion", "leave_return" and their union "occlusion_or_leave". A subset's J and F are the
means of the per-object J-Mean / F-Mean over its (sequence, object) pairs and J&F = (J + F) / 2 —
exactly how the global figures average over all objects (objects weighted equally, NaN objects left out).
Only evaluated sequences count, so `--sequences` narrows the subsets too.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from .results import VOSResults, _mean

SUBSETS = ("occlusion", "leave_return", "occlusion_or_leave")
EVENTS_FILE = "events.json"


def _norm_id(obj) -> str:
    """Object ids compare as text ("1" in results, 1 in the file; SA-V folders may be zero-padded: "001")."""
    s = str(obj).strip()
    return str(int(s)) if s.isdigit() else s


def read_events(path: str | os.PathLike) -> dict[str, dict[str, list]]:
    """Load and check an events file; returns {sequence: {"occlusion": [...], "leave_return": [...]}}."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"events file not found: {path}")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from None
    # ValueError (not TypeError) for a malformed file: the CLI reports ValueErrors as one-line errors
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected an object {{sequence: {{\"occlusion\": [...], \"leave_return\": [...]}}}}")
    out = {}
    for seq, ev in data.items():
        if not isinstance(ev, dict):
            raise ValueError(f"{path}: sequence {seq!r} maps to {type(ev).__name__}, expected an object")
        entry = {}
        for key in ("occlusion", "leave_return"):
            ids = ev.get(key, [])
            if not isinstance(ids, list) or not all(isinstance(i, (int, str)) and not isinstance(i, bool) for i in ids):
                raise ValueError(f"{path}: {seq}.{key} must be a list of object ids, got {ids!r}")
            entry[key] = ids
        out[str(seq)] = entry
    return out


def find_events(root: str | os.PathLike) -> Path | None:
    """The default events file of a dataset: ROOT/events.json, or the dataset root's when ROOT is its
    Annotations/<resolution> folder. None when there is none."""
    root = Path(root)
    cands = [root / EVENTS_FILE]
    if root.parent.name.startswith("Annotations"):
        cands.append(root.parent.parent / EVENTS_FILE)
    return next((c for c in cands if c.is_file()), None)


def subset_members(events: dict[str, dict[str, list]]) -> dict[str, set[tuple[str, str]]]:
    """{subset: {(sequence, object id)}} for the three subsets."""
    sets = {name: set() for name in SUBSETS}
    for seq, ev in events.items():
        for key in ("occlusion", "leave_return"):
            for obj in ev.get(key, []):
                sets[key].add((seq, _norm_id(obj)))
    sets["occlusion_or_leave"] = sets["occlusion"] | sets["leave_return"]
    return sets


def score_subsets(results: VOSResults, events: dict[str, dict[str, list]]) -> tuple[dict[str, dict], list[str]]:
    """{subset: {"J&F", "J", "F", "num_objects", "objects"}} over the evaluated objects of each subset,
    and warnings (listed objects that were not scored; a file that matches no evaluated sequence)."""
    evaluated = set(results.sequences)
    scored = {(o.sequence, _norm_id(o.object_id)): o for o in results.objects}
    warnings = []
    if events and not evaluated & set(events):
        warnings.append("the events file names none of the evaluated sequences: the subsets are empty")
    out = {}
    for name, members in subset_members(events).items():
        members = {m for m in members if m[0] in evaluated}
        objs = [scored[m] for m in sorted(members) if m in scored]
        missing = sorted(f"{s}/{o}" for s, o in members if (s, o) not in scored)
        if missing and name != "occlusion_or_leave":  # the union repeats its parts' warnings
            warnings.append(f"{name}: {len(missing)} listed object(s) not scored (not in the first frame's "
                            f"ground truth?): {missing[:10]}")
        j, f = _mean(o.j_mean for o in objs), _mean(o.f_mean for o in objs)
        out[name] = {"J&F": (j + f) / 2, "J": j, "F": f, "num_objects": len(objs),
                     "objects": [f"{o.sequence}/{o.object_id}" for o in objs]}
    return out, warnings


def add_subsets(results: VOSResults, events_path: str | os.PathLike) -> VOSResults:
    """Score the subsets of `events_path` into `results.subsets` (and its warnings); returns `results`."""
    subsets, warnings = score_subsets(results, read_events(events_path))
    results.subsets = subsets
    results.settings["events"] = str(events_path)
    results.warnings.extend(warnings)
    return results


__all__ = ["SUBSETS", "add_subsets", "find_events", "read_events", "score_subsets", "subset_members"]
