"""Command-line entry point: `samstream <command> ...`.

Each command lives in the module that owns its job and exposes `add_parser(subparsers)`, which
registers the sub-command and sets `func` (called with the parsed args, returns an exit code).
"""
from __future__ import annotations

import argparse
import importlib
import sys


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {v}")
    return v


def fraction(text: str) -> float:
    """argparse type: a number in [0, 1]."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0.0 <= v <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {v}")
    return v


def non_negative_float(text: str) -> float:
    """argparse type: a number >= 0."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not v >= 0.0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {v}")
    return v


def add_edge_refine_argument(p: argparse.ArgumentParser, what: str = "frame") -> None:
    """--edge-refine RADIUS (-> args.edge_refine; None: the model's setting), for the predictors'
    edge_refine_radius."""
    p.add_argument("--edge-refine", type=non_negative_float, default=None, metavar="RADIUS",
                   help=f"snap mask edges to the {what}'s edges with a guided filter of this radius, in pixels of the "
                        "low-res mask grid; 0 turns it off (default: the model's setting, on for the built-in model)")


def add_video_output_arguments(p: argparse.ArgumentParser) -> None:
    """The VideoPredictor's output clean-up options (`track`, `eval vos`): --min-region-area, --non-overlap,
    --edge-refine; `video_output_options(args)` turns them into its keyword arguments."""
    p.add_argument("--min-region-area", type=int, default=0, metavar="PIXELS",
                   help="drop each object's mask regions of fewer pixels than this (video resolution; default 0)")
    p.add_argument("--non-overlap", action="store_true",
                   help="each pixel keeps only the object with the highest mask logit (before --min-region-area)")
    add_edge_refine_argument(p)


def video_output_options(args: argparse.Namespace) -> dict:
    """VideoPredictor keyword arguments from the options of `add_video_output_arguments`."""
    return {"min_region_area": args.min_region_area, "non_overlap_masks": args.non_overlap,
            "edge_refine_radius": args.edge_refine}


# module path -> registers one or more sub-commands
COMMAND_MODULES = [
    "samstream.segment_cli",  # segment
    "samstream.video.cli",  # track
    "samstream.amg.cli",  # segment-all, track-all
    "samstream.eval.cli",  # eval score | vos | image
    "samstream.train.cli",  # train
    "samstream.train.recipe",  # train-default
    "samstream.train.synth_cli",  # synth
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
