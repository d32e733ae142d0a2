"""A training run's output folder: a new run never starts over an existing one, a resumed run is the same
model, and metrics.jsonl holds each step up to the checkpoint's exactly once."""
from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

from samstream.io.atomic import atomic_write_text

CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.jsonl"


class RunExistsError(FileExistsError, ValueError):
    """The output folder already holds a run's checkpoint (a ValueError too, so that the CLI prints one line)."""


def check_new_run(out: str | os.PathLike) -> None:
    """Refuse to start a new run where one already checkpointed: it would overwrite that run's progress."""
    ckpt = Path(out) / CHECKPOINT
    if ckpt.exists():
        raise RunExistsError(f"{ckpt} exists: pass --resume to continue it, or choose another --out")


def config_changes(a, b, prefix: str = "") -> list[tuple[str, object, object]]:
    """(field, value in a, value in b) for every field of two config dataclasses that differs, nested ones
    named with dots (trunk.embed_dim)."""
    out = []
    for f in dataclasses.fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name, None)
        if dataclasses.is_dataclass(x) and dataclasses.is_dataclass(y):
            out += config_changes(x, y, f"{prefix}{f.name}.")
        elif x != y:
            out.append((prefix + f.name, x, y))
    return out


def check_same_model(stored_json: str, cfg, where: str | os.PathLike) -> None:
    """A checkpoint continues only in the model it was trained as: compare its stored config with `cfg`
    before any weight is loaded (the name aside), so a different config is named, not a tensor-size dump."""
    from samstream.model import SAM2Config

    run = SAM2Config.from_json(stored_json)
    diffs = [d for d in config_changes(run, cfg) if d[0] != "name"]
    if diffs:
        fields = "; ".join(f"{k}: {a!r} in the run, {b!r} given" for k, a, b in diffs)
        raise ValueError(f"{where} holds a run of model config {run.name!r}; the config given ({cfg.name!r}) "
                         f"differs: {fields}. Resume with the run's own config (its model_config.json), or start "
                         f"a new run in another --out")


def truncate_metrics(path: str | os.PathLike, step: int) -> None:
    """Keep the records of steps 1..`step` in `path`, the latest of each, in step order.

    A run killed after logging steps but before checkpointing them resumes from the checkpoint and logs those
    steps again; a kill mid-write leaves a torn last line. Both are dropped here before the run appends.
    """
    path = Path(path)
    if not path.is_file():
        return
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    by_step: dict[int, str] = {}
    for line in lines:
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(rec, dict) and isinstance(rec.get("step"), int) and 1 <= rec["step"] <= step:
            by_step[rec["step"]] = line.rstrip("\n") + "\n"
    keep = [by_step[s] for s in sorted(by_step)]
    if keep != lines:
        atomic_write_text(path, "".join(keep))
