"""`samstream finetune-default`: continue training the embedded default model for a wall-clock budget
(samstream.train.finetune); re-run with the same --out to resume."""
from __future__ import annotations

import argparse
import json

from .args import device, folder_path, non_negative_int, positive_float, positive_int


def add_parser(subparsers) -> argparse.ArgumentParser:
    from ..train import finetune

    p = subparsers.add_parser("finetune-default", help="continue training the default model for a time budget",
                              description=finetune.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=folder_path, required=True, help="run folder")
    p.add_argument("--init", default=None, help="weights to start from (default: the embedded model)")
    p.add_argument("--name", default="finetune", help="the stage's name (its folder under --out)")
    p.add_argument("--minutes", type=positive_float, default=6.0, help="training budget, probe included")
    p.add_argument("--steps", type=positive_int, default=None, help="this many steps, no probe (reruns a run exactly)")
    p.add_argument("--batch-size", type=positive_int, default=16, help="clips per step")
    p.add_argument("--data-workers", type=non_negative_int, default=0, help="processes drawing clips ahead of the loop")
    p.add_argument("--lr", type=float, default=5e-5,
                   help="peak lr (5e-5: from the shipped weights, 1e-4 lowered the validation scores)")
    p.add_argument("--warmup", type=float, default=0.05, help="warm-up, as a fraction of the steps")
    p.add_argument("--videos", type=int, default=900_000, help="synthetic training seeds [0, VIDEOS)")
    p.add_argument("--arch", default="{}", help='SAM2Config overrides as JSON, e.g. \'{"mem_attn_layers": 4}\'')
    p.add_argument("--probe-steps", type=positive_int, default=None,
                   help="default: 8, or 3 per data worker (the first batches come from workers that all started "
                        "at once, faster than they keep up later)")
    p.add_argument("--device", type=device, default="cpu")
    p.add_argument("--seed", type=int, default=2026,
                   help="with data workers each step's clips are drawn from (seed, step): continuing from an "
                        "earlier fine-tune's weights, give another seed, or the same clips come again")
    p.set_defaults(func=_run)
    return p


def _run(args) -> int:
    from ..train.finetune import finetune, finetune_stage

    stage = finetune_stage(args.name, args.lr, args.batch_size, args.videos, json.loads(args.arch), args.seed,
                           args.data_workers)
    report = finetune(args.out, stage, args.init, args.minutes, args.steps, args.warmup, args.probe_steps,
                      args.device, args.data_workers)
    print(report["weights"])
    return 0
