"""Continue training the embedded default model for a wall-clock budget: the run a lent GPU is for.

    samstream finetune-default --out /tmp/ft --minutes 6 --device cuda --batch-size 16 --data-workers 14

A device lease is short (minutes), and a step's time on it is not known in advance, so the number of steps is
measured, not guessed: a few probe steps on a throw-away copy of the model time one step (data workers and
all), and the run gets the steps that fit the budget, with its own warm-up and cosine schedule that ends in
time. The stage is the recipe's last clip stage (hard clips, prompted on frame 0 only) on synthetic videos
rendered in memory from seeds [0, videos), never the held-out (1,000,000 on) or validation ones (2,000,000
on). `arch` grows the model first (as `Stage.arch`: the new parts start as no-ops). `steps` skips the probe
and reruns a finished run's stage exactly (its steps are in OUT/finetune.json).

OUT/<name>/ holds the stage's model.safetensors, checkpoint, metrics.jsonl and loss curves; OUT/finetune.json
the plan (the stage, as `recipe.Stage` writes it), the probe's time per step and the run's wall time. Evaluate
the weights with `samstream eval vos --model OUT/<name>/model.safetensors ...` before shipping them. Shipping
them appends the plan's stage to `recipe.STAGES` (it carries the run's seed and its per-step clip draws), so
that `samstream train-default` reproduces them.
"""
from __future__ import annotations

import copy
import json
import os
import time
from dataclasses import asdict, replace
from pathlib import Path

from .recipe import HELDOUT_SEED_START, STAGES, Stage


def finetune_stage(name: str = "finetune", lr: float = 5e-5, batch_size: int = 16, videos: int = 900_000,
                   arch: dict | None = None, seed: int = 2026, data_workers: int = 0) -> Stage:
    """The recipe's last clip stage on in-memory videos [0, videos), its steps still to be set. Its seed and
    min_data_workers are the run's, so that the stage can be appended to recipe.STAGES as it is."""
    if not 0 < videos <= HELDOUT_SEED_START:
        raise ValueError(f"videos must be in 1..{HELDOUT_SEED_START} (seeds from there on are held out)")
    last_clips = [s for s in STAGES if s.train.frames > 1][-1]
    optim = replace(last_clips.train.optim, base_lr=lr, vision_lr=lr, warmup_steps=0)
    return replace(last_clips.with_train(optim=optim, batch_size=batch_size), name=name, videos=videos,
                   in_memory=True, arch=dict(arch or {}), seed=seed, min_data_workers=min(data_workers, 1))


def probe_seconds_per_step(model, stage: Stage, videos, seed: int, device: str, data_workers: int,
                           steps: int) -> float:
    """Seconds a training step of `stage` takes, timed over steps 2.. of `steps` on a copy of `model` (the
    first step pays for worker start-up and kernel selection)."""
    import torch

    from .recipe import stage_trainer

    if steps < 2:
        raise ValueError(f"the probe needs at least 2 steps, got {steps}")
    probe = stage.with_train(steps=steps, optim=replace(stage.train.optim, warmup_steps=0))
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


def finetune(out: str | os.PathLike, stage: Stage, init: str | os.PathLike | None = None, minutes: float = 6.0,
             steps: int | None = None, warmup: float = 0.05, probe_steps: int | None = None, device: str = "cpu",
             data_workers: int = 0) -> dict:
    """Train `stage` (a `finetune_stage`) from `init` (default: the embedded model) into OUT/<stage.name>/ for
    `minutes`, probe included, or for `steps`; `warmup` is a fraction of the steps. Writes the plan to
    OUT/finetune.json before training, so that a rerun with the same `out` resumes the planned stage, weights
    and seed whatever it is given. Returns the plan, with the run's times and weights."""
    from samstream.io.atomic import atomic_write_text
    from samstream.load import DEFAULT_MODEL_PATH

    from .recipe import run_stage, stage_model, stage_videos

    t0 = time.perf_counter()
    out = Path(out)
    init = Path(init) if init else DEFAULT_MODEL_PATH

    def videos():  # the current `stage`'s: in-memory synthetic videos, nothing written
        return stage_videos(out, stage, [stage], None, False)

    per_step = None
    plan = out / "finetune.json"
    if steps is None and plan.is_file():  # an interrupted run: resume its planned stage, weights and seed
        old = json.loads(plan.read_text())
        # plans written before Stage.seed existed hold the seed only beside the stage
        stage, per_step = Stage.from_dict({"seed": old["seed"], **old["stage"]}), old["probe_seconds_per_step"]
        init = Path(old["init"])
        print(f"resuming the run planned in {plan}: {stage.train.steps} steps", flush=True)
    else:
        if steps is None:
            probe = probe_steps or max(8, 3 * data_workers)
            per_step = probe_seconds_per_step(stage_model(stage, init, stage.seed), stage, videos(), stage.seed,
                                              device, data_workers, probe)
            steps = steps_for_budget(minutes * 60 - (time.perf_counter() - t0), per_step)
            print(f"probe: {per_step:.3f} s a step -> {steps} steps", flush=True)
        stage = stage.with_train(steps=steps, optim=replace(stage.train.optim, warmup_steps=round(steps * warmup)))
    report = {"stage": asdict(stage), "init": str(init), "device": device, "data_workers": data_workers,
              "seed": stage.seed, "probe_seconds_per_step": per_step}
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(plan, json.dumps(report, indent=1))  # written first, so that a rerun resumes this plan
    t1 = time.perf_counter()
    weights = run_stage(stage, out, videos, init, stage.seed, True, device, data_workers)
    report.update(train_seconds=round(time.perf_counter() - t1, 1), total_seconds=round(time.perf_counter() - t0, 1),
                  weights=str(weights))
    atomic_write_text(plan, json.dumps(report, indent=1))
    return report
