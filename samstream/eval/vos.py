"""Scoring a folder of VOS predictions against ground truth (DAVIS or SA-V layout), in parallel.

Where we follow the DAVIS 2017 toolkit / SA-V evaluator and where we knowingly differ:
* same: J, F (seg2bmap quirks, disk(r) tolerance, empty-mask rules), first/last frame skipped,
  DAVIS objects = 1..max id of the first GT frame, SA-V accumulation rule, global means over
  objects, SA-V non-strict default (score the sequences both sides have).
* fixed: decay bins are not cast to uint8 (the toolkit's wrap past 255 frames).
* different, each to give a number instead of a crash or a silent zero:
  - a missing prediction PNG is an error (SA-V asserts; the DAVIS toolkit scores a 480x854 zero
    mask); `allow_missing` scores it as empty with the GT's shape;
  - a prediction that lacks the highest object id everywhere is scored as empty for that object
    (the toolkit exits); ids above the first frame's object count are still an error (protocol davis);
  - GT 255 is void, not object 255 (the SA-V evaluator would report an object 255);
  - an SA-V object with empty GT on every evaluated frame is left out with a warning (SA-V asserts);
  - objects with no evaluated frame (sequences of <= 2 frames) are left out of the means (NaN in the toolkit);
  - hidden files (.DS_Store) are ignored when detecting the layout.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from multiprocessing import Pool

from tqdm import tqdm

from ..io.folders import list_subdirs
from .dataset import LAYOUTS, PROTOCOLS, SequenceTask, detect_layout, evaluate_sequence, resolve_mask_root
from .errors import EvaluationError
from .results import ObjectResult, VOSResults
from .sequence import VOID_MODES


def plan_tasks(
    gt_root: str | os.PathLike,
    pred_root: str | os.PathLike,
    *,
    layout: str = "auto",
    protocol: str = "auto",
    sequences: Sequence[str] | None = None,
    strict: bool = False,
    skip_first_last: bool = True,
    void: str = "background",
    bound_th: float = 0.008,
    allow_missing: bool = False,
) -> tuple[list[SequenceTask], list[str]]:
    """The sequences to score and warnings about the ones left out."""
    if layout not in ("auto", *LAYOUTS):
        raise ValueError(f"layout must be auto, davis or sav, got {layout!r}")
    if protocol not in ("auto", *PROTOCOLS):
        raise ValueError(f"protocol must be auto, davis or sav, got {protocol!r}")
    if void not in VOID_MODES:
        raise ValueError(f"void must be one of {VOID_MODES}, got {void!r}")
    gt_root, pred_root = resolve_mask_root(gt_root), resolve_mask_root(pred_root)
    gt_seqs, pred_seqs = list_subdirs(gt_root), set(list_subdirs(pred_root))
    warnings: list[str] = []
    if sequences is not None:
        unknown = sorted(set(sequences) - set(gt_seqs))
        if unknown:
            raise EvaluationError(f"sequences not in the ground truth {gt_root}: {unknown}")
        gt_seqs = [s for s in gt_seqs if s in set(sequences)]
    missing = [s for s in gt_seqs if s not in pred_seqs]
    if missing:
        msg = f"{len(missing)} ground-truth sequence(s) have no prediction folder in {pred_root}: {missing[:10]}"
        if strict:
            raise EvaluationError(msg)
        # As the SA-V evaluator's default (non-strict): score the sequences both sides have.
        warnings.append(msg + " (not scored)")
    tasks = []
    for seq in gt_seqs:
        if seq in missing:
            continue
        lay = detect_layout(gt_root / seq) if layout == "auto" else layout
        proto = lay if protocol == "auto" else protocol
        tasks.append(SequenceTask(name=seq, layout=lay, gt_dir=str(gt_root / seq), pred_dir=str(pred_root / seq),
                                  protocol=proto, skip_first_last=skip_first_last, void=void, bound_th=bound_th,
                                  allow_missing=allow_missing))
    if not tasks:
        raise EvaluationError(f"nothing to evaluate: no sequence of {gt_root} has predictions in {pred_root}")
    return tasks, warnings


def evaluate_vos(
    gt_root: str | os.PathLike,
    pred_root: str | os.PathLike,
    *,
    layout: str = "auto",
    protocol: str = "auto",
    sequences: Sequence[str] | None = None,
    strict: bool = False,
    skip_first_last: bool = True,
    void: str = "background",
    bound_th: float = 0.008,
    allow_missing: bool = False,
    n_procs: int = 1,
    progress: bool = True,
) -> VOSResults:
    """Score the predictions under `pred_root` against the ground truth under `gt_root`.

    layout: "auto" (per video: only PNGs -> "davis", object sub-folders -> "sav"), "davis" or "sav".
    protocol: "auto" (= the layout), "davis" (DAVIS 2017 toolkit rules) or "sav" (SA-V evaluator
      rules: an object enters at its first appearance in GT or prediction). See `sequence.py`.
    skip_first_last: drop the first and last (annotated) frame, the semi-supervised standard.
    void: "background" (toolkit default: GT 255 counts as background) or "ignore" (void pixels
      excluded from J and F).
    allow_missing: score a missing prediction PNG as empty (the DAVIS toolkit does) instead of failing.
    n_procs: worker processes (1 = in this process).
    """
    tasks, warnings = plan_tasks(gt_root, pred_root, layout=layout, protocol=protocol, sequences=sequences,
                                 strict=strict, skip_first_last=skip_first_last, void=void, bound_th=bound_th,
                                 allow_missing=allow_missing)
    n_procs = max(1, int(n_procs))
    bar = dict(total=len(tasks), desc="scoring", unit="seq", disable=not progress, file=sys.stderr)
    if n_procs == 1 or len(tasks) == 1:
        done = [evaluate_sequence(t) for t in tqdm(tasks, **bar)]
    else:
        with Pool(min(n_procs, len(tasks))) as pool:
            done = list(tqdm(pool.imap(evaluate_sequence, tasks), **bar))  # imap keeps the order
    objects = []
    for seq in done:
        warnings.extend(seq.warnings)
        for name, sc in seq.objects.items():
            objects.append(ObjectResult(seq.name, name, sc.frames, sc.j, sc.f))
    empty = [f"{o.sequence}/{o.object_id}" for o in objects if not o.frames]
    if empty:
        warnings.append(f"objects with no evaluated frame, left out of the means: {empty[:10]}")
    settings = {"gt_root": str(resolve_mask_root(gt_root)), "pred_root": str(resolve_mask_root(pred_root)),
                "layout": sorted({t.layout for t in tasks}), "protocol": sorted({t.protocol for t in tasks}),
                "skip_first_last": skip_first_last, "void": void, "bound_th": bound_th,
                "allow_missing": allow_missing}
    return VOSResults(objects=objects, sequences=[t.name for t in tasks], settings=settings, warnings=warnings)
