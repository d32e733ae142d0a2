"""Command-line entry point: `samstream <command> ...`.

Each command lives in the module that owns its job and exposes `add_parser(subparsers)`, which
registers the sub-command and sets `func` (called with the parsed args, returns an exit code).
"""
from __future__ import annotations

import argparse
import importlib
import sys

# module path -> registers one or more sub-commands
COMMAND_MODULES = [
    "samstream.segment_cli",  # segment
    "samstream.video.cli",  # track
    "samstream.amg.cli",  # segment-all, track-all
    "samstream.eval.cli",  # eval score | vos | image
    "samstream.train.cli",  # train
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="samstream", description="SAM 2 segmentation for images and videos")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
