"""`samstream eval ...` sub-commands.

`eval score` scores existing predictions. `eval vos` / `eval image` (running a predictor first) are
to be registered on the same nested sub-parsers: append a function taking that subparsers object to
`EVAL_COMMANDS`, or call it on the object `add_parser` returns.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable


def _run_score(args: argparse.Namespace) -> int:
    from .report import format_table, plot_sequences, write_csv, write_json
    from .vos import evaluate_vos

    results = evaluate_vos(
        args.gt, args.pred, layout=args.layout, protocol=args.protocol, sequences=args.sequences,
        strict=args.strict, skip_first_last=not args.no_skip_first_last, void=args.void,
        allow_missing=args.allow_missing, n_procs=args.procs, progress=not args.quiet,
    )
    for w in results.warnings:
        print(f"warning: {w}", file=sys.stderr)
    if not args.quiet:
        print(format_table(results))
    if args.json:
        print(f"wrote {write_json(results, args.json)}", file=sys.stderr)
    if args.csv:
        print(f"wrote {write_csv(results, args.csv)}", file=sys.stderr)
    if args.plot:
        print(f"wrote {plot_sequences(results, args.plot)}", file=sys.stderr)
    return 0


def add_score_parser(eval_sub) -> argparse.ArgumentParser:
    p = eval_sub.add_parser(
        "score", help="score existing VOS predictions (J, F, J&F)",
        description="Score predicted masks against ground truth with the DAVIS 2017 / SA-V J&F. "
                    "Folders hold one sub-folder per sequence: indexed PNGs per frame (DAVIS layout) or "
                    "<obj>/<frame>.png binary PNGs (SA-V layout); DAVIS roots with Annotations/480p work too.",
    )
    p.add_argument("--gt", required=True, help="ground-truth folder (or DAVIS / SA-V dataset root)")
    p.add_argument("--pred", required=True, help="prediction folder, same layout as the ground truth")
    p.add_argument("--json", metavar="FILE", help="write the summary JSON (J&F, J, F, per sequence and object)")
    p.add_argument("--csv", metavar="FILE", help="write one CSV row per object of each sequence")
    p.add_argument("--plot", metavar="FILE.png", help="bar plot of J&F per sequence (needs matplotlib)")
    p.add_argument("--layout", choices=["auto", "davis", "sav"], default="auto",
                   help="mask layout (default: detected per video)")
    p.add_argument("--protocol", choices=["auto", "davis", "sav"], default="auto",
                   help="scoring rules: DAVIS 2017 toolkit or SA-V evaluator (default: same as the layout)")
    p.add_argument("--procs", type=int, default=1, metavar="N", help="worker processes (default 1)")
    p.add_argument("--no-skip-first-last", action="store_true",
                   help="also score the first and last frame (not the semi-supervised standard)")
    p.add_argument("--void", choices=["background", "ignore"], default="background",
                   help="ground-truth 255: background (DAVIS toolkit default) or excluded from J and F")
    p.add_argument("--sequences", nargs="+", metavar="SEQ", help="score only these sequences")
    p.add_argument("--strict", action="store_true", help="fail when a ground-truth sequence has no prediction")
    p.add_argument("--allow-missing", action="store_true",
                   help="score missing prediction PNGs as empty masks (the DAVIS toolkit does) instead of failing")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar and no table")
    p.set_defaults(func=_run_score)
    return p


#: Registrars of `samstream eval <command>`; each takes the nested subparsers object.
EVAL_COMMANDS: list[Callable] = [add_score_parser]


def add_parser(subparsers) -> argparse._SubParsersAction:
    """Register `eval` on the top-level subparsers; returns the nested `eval` subparsers object."""
    p = subparsers.add_parser("eval", help="evaluate segmentation (VOS J&F, interactive clicks)",
                              description="Evaluation commands.")
    eval_sub = p.add_subparsers(dest="eval_command", metavar="COMMAND", required=True)

    def _help(args: argparse.Namespace) -> int:
        p.print_help()
        return 2

    p.set_defaults(func=_help)
    for register in EVAL_COMMANDS:
        register(eval_sub)
    return eval_sub
