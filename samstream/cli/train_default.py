"""`samstream train-default`: train the embedded default model (samstream.train.recipe); re-run to resume."""
from __future__ import annotations

from .args import device, folder_path, non_negative_int, positive_float, positive_int


def add_parser(subparsers):
    p = subparsers.add_parser(
        "train-default", help="train the embedded default model (the whole recipe; re-run to resume)",
        description="Train the embedded default model from scratch on synthetic videos: single frames, then "
                    "8-frame clips. Re-running the same command resumes an interrupted run.")
    p.add_argument("--out", type=folder_path, required=True,
                   help="run folder (checkpoints, metrics, loss curves, model)")
    p.add_argument("--data", help="train on this DAVIS-layout folder instead of the generated synthetic videos")
    p.add_argument("--scale", type=positive_float, default=1.0,
                   help="multiply every stage's steps (e.g. 0.01 for a smoke run)")
    p.add_argument("--batch-size", type=positive_int, default=None, metavar="B",
                   help="clips per step in every stage (default: each stage's own, 1 or 4); for a GPU, where one clip "
                        "leaves it mostly idle")
    p.add_argument("--data-workers", type=non_negative_int, default=0, metavar="N",
                   help="processes drawing clips ahead of training (default 0); on a GPU, enough of them to draw "
                        "a step's clips while a step runs")
    p.add_argument("--install", action="store_true", help="copy the result over the package's embedded model")
    p.add_argument("--device", type=device, default="cpu")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_run)
    return p


def _run(args) -> int:
    from ..train.recipe import STAGES, run_recipe, scaled

    stages = scaled(STAGES, args.scale, args.batch_size)
    final = run_recipe(args.out, stages, args.data, args.install, not args.quiet, args.device,
                       data_workers=args.data_workers)
    print(final)
    return 0
