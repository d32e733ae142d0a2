"""Command-line entry point: `samstream <command> ...`.

One module per command, each thin over library functions; it exposes `add_parser(subparsers)`, which
registers the sub-command and sets `func` (called with the parsed args, returns an exit code). Argument
types and option groups that several commands share live in `args`.
"""
from __future__ import annotations

import argparse
import importlib
import sys

# the modules of this package that register a sub-command, in the order `samstream --help` lists them
COMMANDS = ["segment", "track", "segment_all", "track_all", "eval", "train", "train_default", "finetune_default",
            "synth"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="samstream", description="SAM 2 segmentation for images and videos")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        importlib.import_module(f"{__name__}.{name}").add_parser(sub)
    return parser


def run(argv: list[str] | None = None) -> int:
    """Parse and run one command, letting its errors propagate (for callers that handle them)."""
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


def main(argv: list[str] | None = None) -> int:
    """`samstream ...`: bad input becomes a one-line message and exit code 2."""
    try:
        return run(argv)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
