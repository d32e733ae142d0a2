"""The training loop: sampling, the single-frame interactive step, AdamW + schedule, gradient clipping,
bf16 autocast on CUDA, exact checkpoints (model, optimiser, scheduler, RNGs, step), tqdm, a JSON-lines
metrics log and a loss-curve plot.

Video clips (T > 1) go through `Trainer.video_step`, a callable (trainer, clip, plan) -> losses; the
default is `video_step.video_step`, SAM 2's clip forward with the tracker's memory policy.
"""
from __future__ import annotations

import contextlib
import json
import os
import random
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from samstream.model.sam2 import SAM2Model

from ..plotting import pyplot, save_figure
from .config import LossWeights, PromptConfig, TrainConfig
from .data import Clip, ClipDataset, batch_clips
from .loader import ClipLoader, draw_batch
from .optim import build_optimizer, build_scheduler
from .prompts import ClipPromptPlan, plan_clip
from .run_folder import CHECKPOINT, METRICS, check_same_model, truncate_metrics
from .step import frame_rows, initial_points, interactive_frame


def image_losses(model: SAM2Model, clip: Clip, rng: np.random.Generator, plan: ClipPromptPlan,
                 pcfg: PromptConfig, weights: LossWeights, frozen_encoder: bool) -> dict[str, torch.Tensor]:
    """Single-frame stage: frame 0 of the clip (of each clip of a batch), a click or box, then correction clicks."""
    dev = model.device
    gt = clip.masks[0].to(dev)  # (O, S, S)
    keep = gt.flatten(1).any(1)
    if not keep.any():
        raise ValueError(f"clip {clip.name}: no object visible on the prompted frame")
    gt = gt[keep]
    first = clip.images[:1] if clip.clip_of is None else clip.images[:, 0]  # (1 or B, 3, S, S)
    with torch.set_grad_enabled(not frozen_encoder and torch.is_grad_enabled()):
        feats = model.encode_image(first.to(dev))
    o = gt.shape[0]
    rows = 0 if clip.clip_of is None else clip.clip_of.to(dev)[keep]  # each object's frame
    embed = frame_rows(model.no_memory_embed(feats.embed), rows, o)  # (O, C, E, E)
    high_res = [frame_rows(h, rows, o) for h in feats.high_res]
    coords, labels = initial_points(rng, gt, 0 in plan.box_frames, pcfg)
    n_corr = pcfg.num_correction_clicks if 0 in plan.frames_to_correct else 0
    losses, _ = interactive_frame(model, embed, high_res, gt, coords.float(), labels, rng, n_corr, pcfg, weights)
    return losses


class Trainer:
    def __init__(self, model: SAM2Model, dataset: ClipDataset, cfg: TrainConfig | None = None,
                 out_dir: str | os.PathLike | None = None):
        cfg = cfg or TrainConfig()
        if cfg.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {cfg.batch_size}")
        if cfg.data_workers < 0:
            raise ValueError(f"data_workers must be >= 0, got {cfg.data_workers}")
        self.model, self.dataset, self.cfg = model, dataset, cfg
        self.out_dir = Path(out_dir) if out_dir else None
        from .video_step import video_step

        self.video_step: Callable[[Trainer, Clip, ClipPromptPlan], dict] | None = video_step
        # seed everything once; from here on only saved states drive the randomness
        random.seed(cfg.seed)
        torch.manual_seed(cfg.seed)
        self.rng = np.random.default_rng(cfg.seed)  # data sampling, augmentation and prompts
        for name, p in model.named_parameters():
            if (cfg.freeze_image_encoder and name.startswith("image_encoder.")) or \
                    (cfg.train_only and not name.startswith(tuple(cfg.train_only))):
                p.requires_grad_(False)
        # parts with nothing to train run as at inference (no dropout / drop-path noise)
        self.frozen_parts = [m for m in model.children() if next(m.parameters(), None) is not None
                             and not any(p.requires_grad for p in m.parameters())]
        self.encoder_frozen = model.image_encoder in self.frozen_parts  # then encode without autograd
        self.optimizer = build_optimizer(model, cfg.optim)
        self.scheduler = build_scheduler(self.optimizer, cfg.steps, cfg.optim)
        self.step = 0
        self._loader = None  # a ClipLoader while train() runs with data workers

    # ------------------------------------------------------------------ one step
    def _autocast(self):
        on_cuda = self.model.device.type == "cuda"
        return torch.autocast("cuda", dtype=torch.bfloat16, enabled=on_cuda and self.cfg.amp)

    def clip_losses(self, clip: Clip) -> dict[str, torch.Tensor]:
        """Losses of a clip or of a batch of clips (one prompt plan for the batch)."""
        plan = plan_clip(self.rng, clip.num_frames, self.cfg.prompts)
        if clip.num_frames == 1:
            return image_losses(self.model, clip, self.rng, plan, self.cfg.prompts, self.cfg.loss_weights,
                                self.encoder_frozen)
        if self.video_step is None:
            raise NotImplementedError("clips of more than one frame need a video_step (Trainer.video_step is None)")
        return self.video_step(self, clip, plan)

    def _next_batch(self) -> Clip:
        if self.cfg.data_workers == 0:  # from the run's one RNG stream, as the shipped model's stages drew
            return batch_clips([self.dataset.sample(self.rng) for _ in range(self.cfg.batch_size)])
        if self._loader is not None:
            return self._loader.get(self.step)
        return draw_batch(self.dataset, self.cfg.seed, self.step, self.cfg.batch_size)  # what a worker draws

    def train_step(self) -> dict[str, float]:
        self.model.train()
        for m in self.frozen_parts:
            m.eval()
        clip = self._next_batch()
        with self._autocast():
            losses = self.clip_losses(clip)
        self.optimizer.zero_grad(set_to_none=True)
        # A clip's loss can be out of reach of every trainable parameter (e.g. --train-only parts that this
        # clip's prompts bypass): nothing to learn from it, so the step is counted and logged as skipped, not a
        # crash. The optimiser's step is then a no-op (no gradients); the schedule moves on with the step counter.
        skipped = not losses["core_loss"].requires_grad
        if not skipped:
            losses["core_loss"].backward()
        params = [p for g in self.optimizer.param_groups for p in g["params"]]
        gnorm = torch.nn.utils.clip_grad_norm_(params, self.cfg.optim.grad_clip) if self.cfg.optim.grad_clip > 0 \
            else torch.zeros(())
        lr = self.optimizer.param_groups[0]["lr"]
        self.optimizer.step()
        self.scheduler.step()
        self.step += 1
        rec = {k: float(v.detach()) for k, v in losses.items()}
        rec.update(step=self.step, lr=lr, grad_norm=float(gnorm), objects=int(clip.masks.shape[1]))
        if skipped:
            rec["skipped"] = True
        return rec

    def train(self, until: int | None = None) -> list[dict]:
        """Train up to step `until` (default cfg.steps); returns this call's metric records."""
        from tqdm import tqdm

        until = self.cfg.steps if until is None else until
        records = []
        if self.out_dir is not None:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        t0 = time.time()
        bar = tqdm(total=until, initial=self.step, disable=not self.cfg.progress, desc="train")
        with contextlib.ExitStack() as stack, bar:
            log = None
            if self.out_dir is not None:  # records past the checkpoint's step are from a run killed before it
                truncate_metrics(self.out_dir / METRICS, self.step)
                log = stack.enter_context(open(self.out_dir / METRICS, "a", encoding="utf-8"))
            if self.cfg.data_workers and self.step < until:
                self._loader = stack.enter_context(ClipLoader(self.dataset, self.cfg.seed, self.cfg.batch_size,
                                                              self.cfg.data_workers, start=self.step))
                stack.callback(setattr, self, "_loader", None)
            while self.step < until:
                rec = self.train_step()
                rec["time"] = round(time.time() - t0, 3)
                records.append(rec)
                if log is not None:  # appended per step, so an interrupted run keeps its curve
                    log.write(json.dumps(rec) + "\n")
                    log.flush()
                bar.set_postfix(loss=f"{rec['core_loss']:.3f}")
                bar.update(1)
                if self.out_dir and self.cfg.save_every and self.step % self.cfg.save_every == 0:
                    self.save(self.out_dir / CHECKPOINT)
        if self.out_dir is not None:
            self.save(self.out_dir / CHECKPOINT)
            plot_losses(self.out_dir / METRICS, self.out_dir / "loss_curves.png")
        return records

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict:
        rng = {"numpy": self.rng.bit_generator.state, "python": random.getstate(), "torch": torch.get_rng_state()}
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "step": self.step, "rng": rng,
                "model_config": self.model.cfg.to_json(), "train_config": self.cfg.to_dict()}

    def save(self, path: str | os.PathLike) -> Path:
        """Everything needed to continue bit-for-bit, written atomically."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        try:
            torch.save(self.state_dict(), tmp)
            os.replace(tmp, path)
        except BaseException:  # e.g. a full disk: keep the previous checkpoint, leave no partial file
            with contextlib.suppress(OSError):  # a failing clean-up must not hide the error
                os.unlink(tmp)
            raise
        return path

    def load(self, path: str | os.PathLike) -> None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"training checkpoint not found: {path}")
        st = torch.load(path, map_location="cpu", weights_only=False)
        for key in ("model", "optimizer", "scheduler", "step", "rng"):
            if key not in st:
                raise ValueError(f"{path} is not a training checkpoint (no {key!r}); to start from model "
                                 f"weights use --init instead of --resume")
        if "model_config" in st:
            check_same_model(st["model_config"], self.model.cfg, path)
        self.model.load_state_dict(st["model"])
        self.optimizer.load_state_dict(st["optimizer"])
        self.scheduler.load_state_dict(st["scheduler"])
        self.step = int(st["step"])
        self.rng.bit_generator.state = st["rng"]["numpy"]
        random.setstate(st["rng"]["python"])
        torch.set_rng_state(st["rng"]["torch"])
        if "cuda" in st["rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(st["rng"]["cuda"])


def clip_dataset(videos: list, image_size: int, cfg: TrainConfig) -> ClipDataset:
    """The clips `cfg` trains on, drawn from `videos` at the model's input size."""
    from .augment import AugmentConfig

    return ClipDataset(videos, image_size, num_frames=cfg.frames, max_objects=cfg.max_objects,
                       augment=AugmentConfig() if cfg.augment else None, max_stride=cfg.max_stride,
                       hard_prob=cfg.hard_prob)


def build_trainer(model: SAM2Model, videos: list, cfg: TrainConfig,
                  out_dir: str | os.PathLike | None = None) -> Trainer:
    """The Trainer of one run of `cfg` on `videos`, as `samstream train` and each stage of the default
    model's recipe set it up."""
    return Trainer(model, clip_dataset(videos, model.cfg.image_size, cfg), cfg, out_dir)


@torch.no_grad()
def evaluate_loss(model: SAM2Model, dataset: ClipDataset, num_clips: int = 8, seed: int = 0,
                  pcfg: PromptConfig | None = None, weights: LossWeights | None = None) -> float:
    """Mean single-frame core loss over a fixed (seeded) set of clips and prompts, in eval mode."""
    pcfg, weights = pcfg or PromptConfig(), weights or LossWeights()
    was = model.training
    model.eval()
    rng = np.random.default_rng(seed)
    total = 0.0
    for _ in range(num_clips):
        clip = dataset.sample(rng)
        plan = plan_clip(rng, 1, pcfg)
        total += float(image_losses(model, clip, rng, plan, pcfg, weights, True)["core_loss"])
    model.train(was)
    return total / num_clips


def running_median(y: np.ndarray, w: int) -> np.ndarray:
    """(n,) -> (n - w + 1,): element i is the median of y[i : i + w] (the w steps ending at step i + w - 1)."""
    return np.median(np.lib.stride_tricks.sliding_window_view(y, w), axis=1)


def plot_losses(metrics: str | os.PathLike, out: str | os.PathLike) -> Path | None:
    """Loss curves (total and each term, log scale) from a metrics.jsonl; None without matplotlib."""
    try:
        plt = pyplot()
    except ModuleNotFoundError:
        return None
    recs = [json.loads(line) for line in Path(metrics).read_text().splitlines() if line.strip()]
    if not recs:
        return None
    fig, ax = plt.subplots(figsize=(8, 5))
    steps = np.array([r["step"] for r in recs])
    w = max(1, len(recs) // 50)  # per-step losses vary by orders of magnitude: draw a running median over them
    for i, key in enumerate(("core_loss", "loss_mask", "loss_dice", "loss_iou", "loss_class")):
        if key in recs[0]:
            y = np.maximum([r[key] for r in recs], 1e-8)
            ax.plot(steps, y, color=f"C{i}", lw=0.5, alpha=0.15)
            ax.plot(steps[w - 1:], running_median(y, w), color=f"C{i}", lw=1.5,
                    label=f"{key} (median of {w})" if w > 1 else key)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.legend()
    ax.grid(alpha=0.3)
    return save_figure(fig, out, dpi=100)
