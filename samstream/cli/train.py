"""`samstream train`: train from scratch or fine-tune (single frames, or clips with --frames) and write checkpoints."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from .args import device, folder_path, non_negative_int, positive_int


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("train", help="train or fine-tune a model (single frames or video clips)",
                              description="Train SAM 2 with interactive prompt simulation; writes checkpoint.pt "
                                          "(resumable), model.safetensors, metrics.jsonl and loss_curves.png to --out.")
    p.add_argument("--config", help="model config: a .json file, 'tiny', or an official name")
    p.add_argument("--data", required=True,
                   help="DAVIS folder, SA-V folder, COCO .json, or 'synthetic[:START:END]' (synthetic videos of those "
                        "seeds, default 0:64, rendered in memory as clips are drawn: no disk, any number of them)")
    p.add_argument("--init", default="none", help="checkpoint to start from, or 'none'")
    p.add_argument("--steps", type=positive_int, required=True)
    p.add_argument("--out", type=folder_path, required=True, help="output folder")
    p.add_argument("--freeze-image-encoder", action="store_true")
    p.add_argument("--train-only", nargs="+", default=(), metavar="PREFIX",
                   help="train only the parameters whose names start with these (e.g. sam_mask_decoder.); "
                        "the rest stays frozen")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    p.add_argument("--lr", type=float, default=5e-6, help="base learning rate (default: the official 5e-6)")
    p.add_argument("--vision-lr", type=float, default=None,
                   help="image encoder lr (default: 0.6 x --lr, the ratio of Meta's fine-tuning settings, 3e-6 / 5e-6)")
    p.add_argument("--warmup", type=int, default=0)
    p.add_argument("--grad-clip", type=float, default=0.1)
    p.add_argument("--frames", type=positive_int, default=1,
                   help="frames per training clip: 1 = single-frame stage, > 1 = video clips with memory (default 1)")
    p.add_argument("--max-stride", type=positive_int, default=1,
                   help="clips take every k-th frame, k drawn from 1..N per clip (default 1: consecutive frames)")
    p.add_argument("--hard-clip-prob", type=float, default=0.0, metavar="P",
                   help="chance of drawing a clip in which a chosen object gets covered or leaves the frame "
                        "(loses 3/4 of its first-frame area), found from the ground truth (default 0)")
    p.add_argument("--init-cond-frames", type=positive_int, default=2, metavar="N",
                   help="clips are prompted on frame 0 and up to N-1 random later frames (default 2, as SAM 2; "
                        "1 trains tracking from the first frame only)")
    p.add_argument("--frames-to-correct", type=positive_int, default=2, metavar="N",
                   help="frames per clip that get correction clicks, prompted frames included (default 2)")
    p.add_argument("--max-objects", type=int, default=3)
    p.add_argument("--batch-size", type=positive_int, default=1, metavar="B",
                   help="clips per step, their objects decoded as one batch (default 1)")
    p.add_argument("--data-workers", type=non_negative_int, default=0, metavar="N",
                   help="processes drawing clips ahead of training (default 0: in the training process); with "
                        "N > 0 each step's clips are seeded by (seed, step), the same for any N")
    p.add_argument("--corrections", type=int, default=7, help="correction clicks per frame")
    p.add_argument("--no-augment", action="store_true")
    p.add_argument("--seed", type=int, default=123)
    p.add_argument("--device", type=device, default="cuda" if _cuda() else "cpu")
    p.add_argument("--save-every", type=non_negative_int, default=0)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
    return p


def _cuda() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


def train_config(args):
    """The TrainConfig the arguments ask for (the image encoder's lr: --vision-lr, else VISION_LR_RATIO x --lr)."""
    from ..train.config import OptimConfig, PromptConfig, TrainConfig
    from ..train.optim import VISION_LR_RATIO

    vision_lr = args.vision_lr if args.vision_lr is not None else args.lr * VISION_LR_RATIO
    return TrainConfig(
        steps=args.steps, frames=args.frames, batch_size=args.batch_size, max_objects=args.max_objects,
        max_stride=args.max_stride, hard_prob=args.hard_clip_prob, augment=not args.no_augment,
        data_workers=args.data_workers, seed=args.seed,
        optim=OptimConfig(base_lr=args.lr, vision_lr=vision_lr, warmup_steps=args.warmup, grad_clip=args.grad_clip),
        prompts=PromptConfig(num_correction_clicks=args.corrections, num_init_cond_frames=args.init_cond_frames,
                             num_frames_to_correct=args.frames_to_correct),
        freeze_image_encoder=args.freeze_image_encoder, train_only=tuple(args.train_only),
        save_every=args.save_every, progress=not args.quiet)


def run(args) -> int:
    from ..checkpoint import save_model
    from ..io.atomic import atomic_write_text
    from ..train.build import build_model
    from ..train.data import open_videos
    from ..train.run_folder import CHECKPOINT, check_new_run
    from ..train.trainer import build_trainer

    out = Path(args.out)
    if not args.resume:
        check_new_run(out)  # before the model and data are built
    model = build_model(args.config, args.init).to(args.device)
    trainer = build_trainer(model, open_videos(args.data), train_config(args), out)
    if args.resume:
        trainer.load(out / CHECKPOINT)  # refuses a checkpoint of another model config, naming the fields
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "model_config.json", model.cfg.to_json())
    records = trainer.train()
    save_model(model, out / "model.safetensors")
    if records:
        print(json.dumps({"step": trainer.step, "first_loss": records[0]["core_loss"],
                          "last_loss": records[-1]["core_loss"], "skipped": sum("skipped" in r for r in records),
                          "out": str(out)}))
    return 0
