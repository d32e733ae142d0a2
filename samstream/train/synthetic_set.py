"""A synthetic DAVIS-layout folder written all or nothing: the recipe's training chunks and `samstream synth`'s sets.

OUT gets JPEGImages/480p/<seq>/00000.jpg, Annotations/480p/<seq>/00000.png (indexed, exact), events.json
({seq: {"objects", "occlusion", "leave_return"}}) and synth.json (the seeds, the generator's name and settings, to
re-create the folder), written last.
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict
from pathlib import Path


def write_synthetic_set(out: str | os.PathLike, seeds, cfg=None, force: bool = False, jobs: int = 1,
                        progress: bool = False, generator: str | None = None) -> Path:
    """Write the videos of `seeds` into `out` atomically: everything goes into a hidden sibling folder,
    renamed to `out` only when complete, so `out` never exists half-written (an interrupted run leaves
    at most the hidden folder, removed on the next run's failure path or by hand). `generator` names one of
    samstream.train.generators (default: the one cfg belongs to, shapes for None)."""
    from . import generators
    from .synthetic import write_davis_folder

    generator = generator or generators.name_of(cfg)
    generators.check_config(generator, cfg)
    cfg = cfg or generators.default_config(generator)
    out = Path(out)
    if out.exists() and not force:
        # ValueError, not FileExistsError: the CLI turns ValueErrors into a one-line message
        raise ValueError(f"{out} exists; pass --force to replace it")
    if not seeds:
        raise ValueError("no seeds to write")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.partial-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        write_davis_folder(tmp, seeds, cfg, jobs=jobs, progress=progress, generator=generator)
        meta = {"seeds": list(map(int, seeds)), "config": asdict(cfg), "generator": generator,
                "module": generators.MODULES[generator]}
        (tmp / "synth.json").write_text(json.dumps(meta, indent=1))
        if out.exists():  # force: swap in the new folder first, then drop the old one
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
