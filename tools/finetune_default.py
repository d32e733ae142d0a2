"""Continue training the embedded default model for a wall-clock budget: the run a lent GPU is for.

    python3 tools/finetune_default.py --out /tmp/ft --minutes 6 --device cuda --batch-size 16 --data-workers 14

A device lease is short (minutes), and a step's time on it is not known in advance, so the number of steps is
measured, not guessed: a few probe steps on a throw-away copy of the model time one step (data workers and
all), and the run gets the steps that fit the budget, with its own warm-up and cosine schedule that ends in
time. The stage is the recipe's last clip stage (hard clips, prompted on frame 0 only) on synthetic videos
rendered in memory from seeds [0, --videos), never the held-out (1,000,000 on) or validation ones (2,000,000
on). --arch grows the model first (as `Stage.arch`: the new parts start as no-ops). --steps N skips the probe
and reruns a finished run's stage exactly (its steps are in OUT/finetune.json).

OUT/<name>/ holds the stage's model.safetensors, checkpoint, metrics.jsonl and loss curves; OUT/finetune.json
the settings, the probe's time per step and the run's wall time. Evaluate the weights with
`samstream eval vos --model OUT/<name>/model.safetensors ...` before shipping them (README, Default model).
Shipping them appends OUT/finetune.json's "stage" to `recipe.STAGES` (it carries the run's seed and its
per-step clip draws), so that `samstream train-default` reproduces them.
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def probe_seconds_per_step(model, stage, videos, seed: int, device: str, data_workers: int, steps: int) -> float:
    """Seconds a training step of `stage` takes, timed over steps 2.. of `steps` on a copy of `model` (the
    first step pays for worker start-up and kernel selection)."""
    import torch

    from samstream.train.recipe import stage_trainer

    if steps < 2:
        raise ValueError(f"the probe needs at least 2 steps, got {steps}")
    probe = replace(stage, steps=steps, warmup=0)
    trainer = stage_trainer(copy.deepcopy(model).to(device), probe, videos, None, seed + 999, False, data_workers)
    marks = []

    def timed_step(step=trainer.train_step):
        rec = step()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        marks.append(time.perf_counter())
        return rec

    trainer.train_step = timed_step
    trainer.train()
    return (marks[-1] - marks[0]) / (len(marks) - 1)


def steps_for_budget(budget_s: float, seconds_per_step: float, margin: float = 0.9) -> int:
    """Steps that fit `budget_s` at `seconds_per_step`, keeping (1 - margin) of it for checkpoints and slack."""
    if seconds_per_step <= 0:
        raise ValueError(f"seconds_per_step must be positive, got {seconds_per_step}")
    return max(1, int(budget_s * margin / seconds_per_step))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="run folder")
    p.add_argument("--init", default=None, help="weights to start from (default: the embedded model)")
    p.add_argument("--name", default="finetune", help="the stage's name (its folder under --out)")
    p.add_argument("--minutes", type=float, default=6.0, help="training budget, probe included")
    p.add_argument("--steps", type=int, default=None, help="this many steps, no probe (reruns a run exactly)")
    p.add_argument("--batch-size", type=int, default=16, help="clips per step")
    p.add_argument("--data-workers", type=int, default=0, help="processes drawing clips ahead of the loop")
    p.add_argument("--lr", type=float, default=5e-5,
                   help="peak lr (5e-5: from the shipped weights, 1e-4 lost 0.9 points on validation, 5e-5 none)")
    p.add_argument("--warmup", type=float, default=0.05, help="warm-up, as a fraction of the steps")
    p.add_argument("--videos", type=int, default=900_000, help="synthetic training seeds [0, VIDEOS)")
    p.add_argument("--arch", default="{}", help='SAM2Config overrides as JSON, e.g. \'{"mem_attn_layers": 4}\'')
    p.add_argument("--probe-steps", type=int, default=None,
                   help="default: 8, or 3 per data worker (the first batches come from workers that all started "
                        "at once, faster than they keep up later)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=2026,
                   help="with data workers each step's clips are drawn from (seed, step): continuing from an "
                        "earlier fine-tune's weights, give another seed, or the same clips come again")
    args = p.parse_args(argv)

    from samstream.checkpoint import DEFAULT_MODEL_PATH
    from samstream.io.atomic import atomic_write_text
    from samstream.train.recipe import HELDOUT_SEED_START, STAGES, Stage, run_stage, stage_model, stage_videos

    if not 0 < args.videos <= HELDOUT_SEED_START:
        raise SystemExit(f"--videos must be in 1..{HELDOUT_SEED_START} (seeds from there on are held out)")

    t0 = time.perf_counter()
    out = Path(args.out)
    init = Path(args.init) if args.init else DEFAULT_MODEL_PATH
    last_clips = [s for s in STAGES if s.frames > 1][-1]
    # seed and min_data_workers as the run uses them, so the plan's stage can be appended to recipe.STAGES as is
    stage = replace(last_clips, name=args.name, lr=args.lr, warmup=0, videos=args.videos, in_memory=True,
                    batch_size=args.batch_size, arch=json.loads(args.arch), seed=args.seed,
                    min_data_workers=min(args.data_workers, 1))

    def videos():  # the current `stage`'s: in-memory synthetic videos, nothing written
        return stage_videos(out, stage, [stage], None, False)

    per_step = None
    plan = out / "finetune.json"
    if args.steps is None and plan.is_file():  # an interrupted run: resume its planned stage, weights and seed
        old = json.loads(plan.read_text())
        # plans written before Stage.seed existed hold the seed only beside the stage
        stage, per_step = Stage(**{"seed": old["seed"], **old["stage"]}), old["probe_seconds_per_step"]
        init = Path(old["init"])
        print(f"resuming the run planned in {plan}: {stage.steps} steps", flush=True)
    else:
        steps = args.steps
        if steps is None:
            probe = args.probe_steps or max(8, 3 * args.data_workers)
            per_step = probe_seconds_per_step(stage_model(stage, init, stage.seed), stage, videos(), stage.seed,
                                              args.device, args.data_workers, probe)
            steps = steps_for_budget(args.minutes * 60 - (time.perf_counter() - t0), per_step)
            print(f"probe: {per_step:.3f} s a step -> {steps} steps", flush=True)
        stage = replace(stage, steps=steps, warmup=round(steps * args.warmup))
    report = {"stage": asdict(stage), "init": str(init), "device": args.device, "data_workers": args.data_workers,
              "seed": stage.seed, "probe_seconds_per_step": per_step}
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(plan, json.dumps(report, indent=1))  # written first, so that a rerun resumes this plan
    t1 = time.perf_counter()
    weights = run_stage(stage, out, videos, init, stage.seed, True, args.device, args.data_workers)
    report.update(train_seconds=round(time.perf_counter() - t1, 1), total_seconds=round(time.perf_counter() - t0, 1),
                  weights=str(weights))
    atomic_write_text(plan, json.dumps(report, indent=1))
    print(weights)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
