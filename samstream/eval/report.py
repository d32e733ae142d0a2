"""Writing VOS results: per-object CSV, summary JSON, a printed table and a bar plot."""
from __future__ import annotations

import csv
import io
import json
import math
import os
from pathlib import Path

from ..io.atomic import atomic_write_text
from ..plotting import pyplot, save_figure
from .results import VOSResults

CSV_COLUMNS = ["sequence", "object", "J&F", "J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay",
               "frames"]


def _num(x):
    return "" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.6f}"


def _no_nan(obj):
    """NaN -> None recursively: JSON has no NaN."""
    if isinstance(obj, float):
        return None if math.isnan(obj) else obj
    if isinstance(obj, dict):
        return {k: _no_nan(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_no_nan(v) for v in obj]
    return obj


def results_csv(results: VOSResults) -> str:
    """One row per object (like the toolkit's per-sequence file), figures in [0, 1]."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for o in results.objects:
        w.writerow([o.sequence, o.object_id, _num(o.jf), _num(o.j_mean), _num(o.j_recall), _num(o.j_decay),
                    _num(o.f_mean), _num(o.f_recall), _num(o.f_decay), len(o.frames)])
    return buf.getvalue()


def write_csv(results: VOSResults, path: str | os.PathLike) -> Path:
    return atomic_write_text(path, results_csv(results))


def write_json(results: VOSResults, path: str | os.PathLike, per_frame: bool = True) -> Path:
    """The global figures ("J&F", "J", "F", recall, decay), settings, and per-sequence / per-object figures."""
    return atomic_write_text(path, json.dumps(_no_nan(results.to_dict(per_frame)), indent=1))


def _pct(x: float) -> str:
    return "  nan" if math.isnan(x) else f"{100 * x:5.1f}"


def format_table(results: VOSResults) -> str:
    """Per-object rows and the global line, x100 with one decimal (the SA-V evaluator's style),
    then the DAVIS summary (mean / recall / decay)."""
    width = max([len(s) for s in results.sequences] + [len("Global score")])
    lines = [f"{'sequence':<{width}}  {'obj':>4}  {'J&F':>5}  {'J':>5}  {'F':>5}"]
    for o in results.objects:
        lines.append(f"{o.sequence:<{width}}  {o.object_id:>4}  {_pct(o.jf)}  {_pct(o.j_mean)}  {_pct(o.f_mean)}")
    lines.append(f"{'Global score':<{width}}  {'':>4}  {_pct(results.JF)}  {_pct(results.J)}  {_pct(results.F)}")
    s = results.summary()
    lines.append("")
    lines.append(" J&F-Mean  J-Mean  J-Recall  J-Decay  F-Mean  F-Recall  F-Decay")
    lines.append(f"    {_pct(s['J&F'])}   {_pct(s['J'])}     {_pct(s['J_recall'])}    {_pct(s['J_decay'])}"
                 f"   {_pct(s['F'])}     {_pct(s['F_recall'])}    {_pct(s['F_decay'])}")
    lines.append(f"Global score: J&F: {_pct(results.JF).strip()} J: {_pct(results.J).strip()} "
                 f"F: {_pct(results.F).strip()}  ({len(results.objects)} objects, {len(results.sequences)} sequences)")
    if results.subsets:
        lines += ["", f"{'subset':<20}  {'J&F':>5}  {'J':>5}  {'F':>5}  objects"]
        for name, d in results.subsets.items():
            lines.append(f"{name:<20}  {_pct(d['J&F'])}  {_pct(d['J'])}  {_pct(d['F'])}  {d['num_objects']:>7}")
    return "\n".join(lines)


def plot_sequences(results: VOSResults, path: str | os.PathLike) -> Path:
    """Bar plot of J&F (x100) per sequence, with the global J&F as a line. Needs matplotlib."""
    plt = pyplot()

    per_seq = results.per_sequence()
    names = list(per_seq)
    values = [100 * per_seq[n]["J&F"] for n in names]
    fig, ax = plt.subplots(figsize=(max(4.0, 0.35 * len(names) + 1.5), 4.0))
    try:
        ax.bar(range(len(names)), values, color="#4c72b0")
        ax.axhline(100 * results.JF, color="#c44e52", linestyle="--", label=f"global J&F {100 * results.JF:.1f}")
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels(names, rotation=90, fontsize=7)
        ax.set_ylabel("J&F")
        ax.set_ylim(0, 100)
        ax.legend(loc="lower right")
    except BaseException:
        plt.close(fig)
        raise
    return save_figure(fig, path)
