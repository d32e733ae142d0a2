"""The recipe of the embedded default model: a small SAM 2 trained on synthetic videos, in stages.

    samstream train-default --out runs/default          # the whole recipe; re-run the same command to resume

Stages (each its own warm-up + cosine schedule, each starting from the previous stage's weights):
  1. "frames": single frames with interactive prompts (click / box + correction clicks), to learn
     segmentation cheaply;
  2. "clips": 8-frame clips with memory (more click prompts than the official mix, since the model is
     meant to be driven by clicks), to learn tracking, occlusion and re-appearance;
  3. "clips2": the same at a lower learning rate;
  4. "frames2": a second single-frame cycle (segmentation from a click was still improving);
  5. "clips3": clips again, now of every 1st-3rd frame, so that one clip holds whole occlusions and exits,
     and "clips4", the same at a lower learning rate;
  6. "hard": clips mostly drawn where an object gets covered or leaves (`ClipSampler.hard_prob`), prompted
     on their first frame only, so every other frame is tracked from memory as in use; and "hard2", the
     same at a lower learning rate;
  7. "frames320" and "hard320": the model input goes from 256 to 320 px (the synthetic videos' width), a
     short single-frame cycle to adapt, then hard clips again (the stages before run at 256 px, 2/3 the cost);
  8. "hard320b", "hard320c" and "hard320d": hard clips again at a lower learning rate, drawn from 5x, 10x
     and then 20x more videos (the model had learnt the first 600 by heart: it scored far higher on them than
     on held-out ones), and "hard320e", a shorter cycle on the same 20x at a lower rate still;
  9. "iou": only the IoU head, which picks the mask a single click returns, on single frames (training it on
     clips as well lowered the scores);
 10. "finetune1" and "finetune2": hard clips, 4 a step, from 900,000 videos rendered when drawn: two short
     cycles at low learning rates, run as `samstream.train.finetune` runs (their own seeds, clips drawn per
     step), so that the recipe reproduces the weights those runs made.
Every stage trains with SAM 2's memory settings and writes its model.safetensors with RELEASE_SETTINGS (the
object pointers a frame reads: 4, not 16; non-overlapping memories) and RELEASE_INFERENCE_DEFAULTS (the outputs'
edge refinement), chosen on the validation videos after training.
Training data: synthetic videos (samstream.train.synthetic); a stage draws from seeds [0, Stage.videos),
written once in chunks (out/synthetic-<a>-<b>, one per distinct `videos`). Evaluation uses seeds from
HELDOUT_SEED_START on, never seen in training. Every stage saves a resumable checkpoint
every SAVE_EVERY steps, so an interrupted run loses at most that many steps.
"""
from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path

from .config import PromptConfig, TrainConfig

TRAIN_SEEDS = 600  # the videos most stages draw from: seeds [0, TRAIN_SEEDS)
HELDOUT_SEED_START = 1_000_000
SAVE_EVERY = 100  # steps between a stage's checkpoints


def default_model_config(image_size: int = 320, **arch):
    """320 px input, a 8-block Hiera of width 24, 64-wide heads, 2 memory-attention layers (1.6 M parameters):
    the configuration the recipe starts from; `arch` overrides fields (a stage's `Stage.arch`).
    The early stages train at 256 px, which is cheaper; the weights do not depend on the input size."""
    from samstream.model import HieraConfig, SAM2Config
    from samstream.model.config import lists_to_tuples

    trunk = HieraConfig(embed_dim=24, num_heads=1, stages=(1, 2, 4, 1), global_att_blocks=(6,),
                        window_spec=(8, 4, 8, 4), window_pos_embed_bkg_spatial_size=(8, 8))
    if isinstance(arch.get("trunk"), dict):  # trunk fields to override, e.g. {"stages": [1, 2, 7, 2]}
        trunk = replace(trunk, **lists_to_tuples(arch["trunk"]))
        arch = {**arch, "trunk": trunk}
    return replace(SAM2Config(
        name="samstream-default", image_size=image_size, hidden_dim=64, mem_dim=32, mem_attn_layers=2,
        mem_attn_ffn_dim=256, decoder_mlp_dim=256, decoder_heads=4, trunk=trunk), **arch)


# SAM2Config fields that hold no weights, chosen on the validation videos after training and written into every
# stage's model.safetensors (so into the release); the stages themselves train with default_model_config()'s.
# Object pointers: the clips are 8 frames long, so training never showed the model more than 7 tracked frames'
# pointers, where SAM 2's 16 give it 15 on a longer video. With 4 it re-finds the whole of an object after an
# occlusion where 16 kept it on a part, and scores higher on the validation videos.
# Non-overlapping memories (SAM 2's eval option): each frame's objects' masks are made disjoint before they are
# encoded, so an object that another one covers does not remember the coverer as itself.
RELEASE_SETTINGS = {"max_obj_ptrs_in_encoder": 4, "non_overlap_masks_for_mem_enc": True}
# The model's inference defaults (MaskPostprocess fields, written beside the config). Edge refinement (outputs
# only): the masks, drawn on the decoder's 80x80 grid, snapped to the frame's edges by a guided filter of radius
# 0.75 grid pixels.
RELEASE_INFERENCE_DEFAULTS = {"edge_refine_radius": 0.75}


def release_config(cfg):
    """A trained stage's config as it is written out: `cfg` with RELEASE_SETTINGS."""
    return replace(cfg, **RELEASE_SETTINGS)


IOU_HEAD = ("sam_mask_decoder.iou_token", "sam_mask_decoder.iou_prediction_head")


@dataclass
class Stage:
    name: str
    # what the stage trains: steps, lr and schedule, clips, prompts. The run sets its seed, data_workers,
    # save_every and progress (stage_trainer)
    train: TrainConfig
    image_size: int = 320  # model input size (the early stages train at 256 px, at about 2/3 of the cost)
    videos: int = TRAIN_SEEDS  # synthetic training videos drawn from: seeds [0, videos) (ignored with --data)
    in_memory: bool = False  # render those videos when drawn instead of writing them to disk (no disk cost)
    # a data spec of synthetic generators rendered when drawn, in place of `videos` ('cutout:0:600000+shapes:0:300000':
    # a mixture, samstream.train.data.MixedVideos)
    data: str | None = None
    seed: int | None = None  # the stage's seed (None: the recipe's seed + the stage's index)
    # at least this many data workers: with any, each step's clips are drawn from (seed, step) instead of the
    # run's one RNG stream, so a stage first run with workers (samstream.train.finetune) reruns the same
    min_data_workers: int = 0
    # SAM2Config fields that differ from default_model_config() from this stage on ("trunk": a dict of HieraConfig
    # fields); the previous stage's weights are grown to fit, the new parts starting as no-ops (samstream.train.grow)
    arch: dict = field(default_factory=dict)

    def with_train(self, **changes) -> Stage:
        """This stage with TrainConfig fields changed."""
        return replace(self, train=replace(self.train, **changes))

    @classmethod
    def from_dict(cls, d: dict) -> Stage:
        """The stage `dataclasses.asdict` gave (as a plan or recipe.json holds it)."""
        return cls(**{**d, "train": TrainConfig.from_dict(d["train"])})


def cycle(base: TrainConfig, steps: int, lr: float, warmup: int, **changes) -> TrainConfig:
    """`base` trained for one warm-up + cosine cycle of `steps` peaking at `lr`, with other fields `changes`. The
    image encoder trains at the same lr as the rest: the recipe trains it from scratch."""
    optim = replace(base.optim, base_lr=lr, vision_lr=lr, warmup_steps=warmup)
    return replace(base, steps=steps, optim=optim, **changes)


# single frames with more click prompts than SAM 2's mix (0.7, not 0.5: the model is meant to be driven by clicks)
# and 2 correction clicks where SAM 2 has 7 (fewer make faster steps)
FRAMES = TrainConfig(prompts=PromptConfig(prob_point_input=0.7, num_correction_clicks=2))
CLIPS = replace(FRAMES, frames=8)  # 8-frame clips with memory
STRIDED = replace(CLIPS, max_stride=3)  # every 1st-3rd frame: a clip spans up to 22 frames, whole occlusions included
# most clips hard (an object covered or leaving), prompted and corrected on frame 0 only: tracking as in use
HARD = replace(STRIDED, hard_prob=0.7, prompts=replace(FRAMES.prompts, num_init_cond_frames=1,
                                                       num_frames_to_correct=1))
# hard clips whose corrections go to 3 frames: the prompted one and 2 tracked ones
PHOTO_HARD = replace(HARD, prompts=replace(HARD.prompts, num_frames_to_correct=3))
PHOTO_MIX = "cutout:0:600000+shapes:0:300000"

STAGES = (
    Stage("frames", cycle(FRAMES, 20000, 5e-4, 200), image_size=256),
    Stage("clips", cycle(CLIPS, 3000, 2.5e-4, 100), image_size=256),
    Stage("clips2", cycle(CLIPS, 1500, 1e-4, 50), image_size=256),  # a second, lower-lr cosine cycle
    Stage("frames2", cycle(FRAMES, 15000, 2.5e-4, 200), image_size=256),  # more single-frame segmentation
    Stage("clips3", cycle(STRIDED, 4000, 2e-4, 100), image_size=256),
    Stage("clips4", cycle(STRIDED, 1500, 1e-4, 50), image_size=256),  # a second, lower-lr cycle
    Stage("hard", cycle(HARD, 4000, 1.5e-4, 100), image_size=256),
    Stage("hard2", cycle(HARD, 2000, 1e-4, 50), image_size=256),  # a second, lower-lr cycle
    # at the native width of the synthetic videos (320 px): small objects and boundaries get 1.6x the pixels.
    # A short single-frame cycle adapts the decoder to the larger grid, then hard clips again
    Stage("frames320", cycle(FRAMES, 3000, 2e-4, 100)),
    Stage("hard320", cycle(HARD, 4000, 1.5e-4, 100)),
    # more videos, 5x, 10x, then 20x: the model had learnt the 600 by heart, and each step closed more of the gap
    # between its scores on training and on held-out videos
    Stage("hard320b", cycle(HARD, 3000, 1e-4, 50), videos=3000),
    Stage("hard320c", cycle(HARD, 3000, 1e-4, 50), videos=6000),
    Stage("hard320d", cycle(HARD, 3000, 1e-4, 50), videos=12000),
    Stage("hard320e", cycle(HARD, 1500, 7e-5, 50), videos=12000),  # a second cycle on them, at a lower lr
    # the IoU head alone, on single frames: it picks which of the 3 masks a single click returns
    Stage("iou", cycle(FRAMES, 2000, 1e-3, 50, train_only=IOU_HEAD,
                       prompts=replace(FRAMES.prompts, num_correction_clicks=0)), videos=12000),
    # two short cycles on 900,000 videos rendered in memory (a video seldom drawn twice), 4 clips a step, first
    # run as samstream.train.finetune runs (their own seeds, clips drawn per step)
    Stage("finetune1", cycle(HARD, 521, 5e-5, 26, batch_size=4), videos=900_000, in_memory=True, seed=2026,
          min_data_workers=1),
    Stage("finetune2", cycle(HARD, 370, 3e-5, 18, batch_size=4), videos=900_000, in_memory=True, seed=2027,
          min_data_workers=1),
)

# A trial after the last stage, not shipped (docs/training.md, "Trials"): photographic appearance, 2/3 of the videos
# from the cutout generator (real photo regions over real footage), 1/3 shapes so that what the model knows is kept.
# Single frames first (cheap: most of what changes is the image encoder), then hard clips corrected on 3 frames, not
# only the prompted one. Rerun: run_recipe(out, STAGES + PHOTO_TRIAL)
PHOTO_TRIAL = (
    Stage("photo-frames", cycle(FRAMES, 8000, 2e-4, 100), data=PHOTO_MIX, seed=2028, min_data_workers=1),
    Stage("photo-hard", cycle(PHOTO_HARD, 1200, 1e-4, 50), data=PHOTO_MIX, seed=2029, min_data_workers=1),
)


def scaled(stages, scale: float = 1.0, batch_size: int | None = None) -> tuple[Stage, ...]:
    """`stages` with their steps times `scale` (at least 1; a warm-up shrinks with them but never grows) and, if
    given, `batch_size` clips a step (e.g. for a GPU, where one clip leaves it mostly idle)."""
    def one(s: Stage) -> Stage:
        optim = replace(s.train.optim, warmup_steps=round(s.train.optim.warmup_steps * min(1.0, scale)))
        return s.with_train(steps=max(1, round(s.train.steps * scale)), optim=optim,
                            batch_size=batch_size or s.train.batch_size)
    return tuple(one(s) for s in stages)


def ensure_synthetic(root: Path, seeds, progress: bool = True) -> Path:
    """Write the synthetic DAVIS folder once. `write_synthetic_set` renames a complete folder into place, its
    synth.json last inside it, so a folder without synth.json is a leftover and is written again."""
    from .synthetic_set import write_synthetic_set

    if (root / "synth.json").is_file():
        return root
    if progress:
        print(f"writing synthetic videos to {root} ...", flush=True)
    return write_synthetic_set(root, list(seeds), force=True, jobs=os.cpu_count() or 1, progress=progress)


def synthetic_chunks(stages) -> list[tuple[int, int]]:
    """Seed ranges [a, b) the synthetic training set is written in: one per distinct Stage.videos, so a stage
    drawing from more videos adds a chunk instead of rewriting the videos before it."""
    ends = sorted({s.videos for s in stages if not (s.in_memory or s.data)})
    return list(zip([0] + ends[:-1], ends))


def synthetic_data(out: Path, stage: Stage, stages, progress: bool = True) -> list[Path]:
    """The synthetic folders holding seeds [0, stage.videos), written on first use."""
    return [ensure_synthetic(out / f"synthetic-{a}-{b}", range(a, b), progress)
            for a, b in synthetic_chunks(stages) if b <= stage.videos]


def stage_videos(out: Path, stage: Stage, stages, data: str | os.PathLike | None, progress: bool = True):
    """The videos a stage trains on: the --data folder, else synthetic seeds [0, stage.videos), read from the
    chunks on disk (written on first use) or, for an in-memory stage, rendered when drawn."""
    from .data import SynthVideoRange, open_videos

    if data:
        return open_videos(str(data))
    if stage.data:
        return open_videos(stage.data)
    if stage.in_memory:
        return SynthVideoRange(0, stage.videos)
    return [v for d in synthetic_data(out, stage, stages, progress) for v in open_videos(str(d))]


def stage_model(stage: Stage, init_weights: Path | None, seed: int):
    """The model a stage starts from: its architecture, with `init_weights` loaded (grown to fit if the stage
    is larger: the new parts start as no-ops), or freshly initialised from `seed`."""
    import torch

    from samstream.checkpoint import load_into, read_state_dict
    from samstream.model import SAM2Model

    from .grow import grow_state_dict, same_architecture

    torch.manual_seed(seed)
    model = SAM2Model(default_model_config(stage.image_size, **stage.arch))
    if init_weights is not None:
        sd, stored = read_state_dict(init_weights)
        if stored is not None and not same_architecture(stored, model.cfg):
            sd = grow_state_dict(sd, stored, model.cfg, seed)
        load_into(model, sd, str(init_weights))
    return model


def stage_trainer(model, stage: Stage, videos: Sequence, out_dir: Path | None, seed: int, progress: bool,
                  data_workers: int = 0):
    """The Trainer of `stage` on `videos` (checkpoints every SAVE_EVERY steps into out_dir, if given)."""
    from .trainer import build_trainer

    cfg = replace(stage.train, seed=seed, data_workers=data_workers, progress=progress,
                  save_every=SAVE_EVERY if out_dir is not None else 0)
    return build_trainer(model, videos, cfg, out_dir)


def run_stage(stage: Stage, out: Path, videos: Callable[[], Sequence], init_weights: Path | None, seed: int,
              progress: bool, device: str = "cpu", data_workers: int = 0) -> Path:
    """Train one stage into out/<name>/ (resuming if a checkpoint is there) on the videos `videos()` returns;
    returns its model.safetensors (its config with RELEASE_SETTINGS). A finished stage returns at once, without
    opening (or writing) its videos."""
    from samstream.checkpoint import save_model
    from samstream.io.atomic import atomic_write_text

    sdir = out / stage.name
    final = sdir / "model.safetensors"
    if final.is_file():
        return final
    model = stage_model(stage, init_weights, seed).to(device)
    trainer = stage_trainer(model, stage, videos(), sdir, seed, progress, data_workers)
    ckpt = sdir / "checkpoint.pt"
    if ckpt.is_file():
        trainer.load(ckpt)
        if progress:
            print(f"stage {stage.name}: resuming at step {trainer.step}/{stage.train.steps}", flush=True)
    sdir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(sdir / "model_config.json", model.cfg.to_json())
    trainer.train()
    model.cfg = release_config(model.cfg)  # trained; from here on only the written config changes
    model.inference_defaults = model.inference_defaults.override(**RELEASE_INFERENCE_DEFAULTS)
    save_model(model, final)
    return final


def run_recipe(out: str | os.PathLike, stages=STAGES, data: str | os.PathLike | None = None,
               install: bool = False, progress: bool = True, device: str = "cpu", seed: int = 123,
               data_workers: int = 0) -> Path:
    """Run (or resume) every stage; writes out/model.safetensors, optionally copied over the embedded model."""
    from samstream.io.atomic import atomic_write_bytes, atomic_write_text
    from samstream.load import DEFAULT_MODEL_PATH

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    weights = None
    for i, stage in enumerate(stages):
        videos = partial(stage_videos, out, stage, stages, data, progress)
        weights = run_stage(stage, out, videos, weights, seed + i if stage.seed is None else stage.seed, progress,
                            device, max(data_workers, stage.min_data_workers))
    final = out / "model.safetensors"
    model_bytes = weights.read_bytes()
    atomic_write_bytes(final, model_bytes)
    atomic_write_text(out / "recipe.json", json.dumps({"stages": [asdict(s) for s in stages],
                                                       "data": str(data) if data else "synthetic"}, indent=1))
    if install:
        atomic_write_bytes(DEFAULT_MODEL_PATH, model_bytes)
    return final
