"""`samstream train`: train from scratch or fine-tune (single frames, or clips with --frames) and write checkpoints.

Registered by the top-level CLI through `add_parser(subparsers)`.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

NAMED_CONFIGS = ("tiny",)  # plus the official names ("sam2.1-hiera-tiny", ...)


def tiny_config():
    """A few-hundred-k-parameter model for tests and CPU smoke runs."""
    from samstream.model import HieraConfig, SAM2Config

    return SAM2Config(name="train-tiny", image_size=128, hidden_dim=64, mem_dim=32, mem_attn_ffn_dim=128,
                      decoder_mlp_dim=128, trunk=HieraConfig(embed_dim=16, num_heads=1, stages=(1, 1, 2, 1),
                                                             global_att_blocks=(3,),
                                                             window_pos_embed_bkg_spatial_size=(4, 4)))


def resolve_config(spec: str | None):
    """A JSON file (SAM2Config.to_json) or a name: 'tiny' or an official model name."""
    from samstream.model import SAM2Config
    from samstream.model.config import official_config

    if spec is None:
        return None
    p = Path(spec)
    if p.suffix == ".json":
        if not p.is_file():
            raise FileNotFoundError(f"config file not found: {p}")
        return SAM2Config.from_json(p.read_text())
    if spec == "tiny":
        return tiny_config()
    try:
        return official_config(spec)
    except (KeyError, ValueError) as e:
        raise ValueError(f"unknown config {spec!r}: give a .json file, 'tiny' or an official name ({e})") from None


def build_model(config: str | None, init: str | None):
    """Model from --config / --init: weights from init unless it is 'none'. A --config that grows init's
    (more or wider memory-attention layers, a deeper image encoder) gets init's weights with the new parts as
    no-ops (train.grow)."""
    import torch

    from samstream.checkpoint import detect_config, load_into, read_state_dict
    from samstream.model import SAM2Model

    from .grow import GROWABLE, grow_state_dict, same_architecture

    cfg = resolve_config(config)
    if init and init.lower() != "none":
        sd, stored = read_state_dict(init)
        src = stored or (detect_config(sd, init) if cfg is None else None)  # None: load strictly into --config
        cfg = cfg or src
        if src is not None and not same_architecture(src, cfg):
            try:
                sd = grow_state_dict(sd, src, cfg)
            except ValueError as e:
                raise ValueError(f"--config does not fit --init {init}: {e} (a config may only grow {GROWABLE})") \
                    from None
        model = SAM2Model(cfg)
        load_into(model, sd, init)
        return model
    if cfg is None:
        raise ValueError("training from scratch (--init none) needs --config")
    torch.manual_seed(0)
    return SAM2Model(cfg)


def add_parser(subparsers) -> argparse.ArgumentParser:
    from samstream.cli import positive_int

    p = subparsers.add_parser("train", help="train or fine-tune a model (single frames or video clips)",
                              description="Train SAM 2 with interactive prompt simulation; writes checkpoint.pt "
                                          "(resumable), model.safetensors, metrics.jsonl and loss_curves.png to --out.")
    p.add_argument("--config", help="model config: a .json file, 'tiny', or an official name")
    p.add_argument("--data", required=True,
                   help="DAVIS folder, SA-V folder, COCO .json, or 'synthetic[:START:END]' (synthetic videos of those "
                        "seeds, default 0:64, rendered in memory as clips are drawn: no disk, any number of them)")
    p.add_argument("--init", default="none", help="checkpoint to start from, or 'none'")
    p.add_argument("--steps", type=int, required=True)
    p.add_argument("--out", required=True, help="output folder")
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
    p.add_argument("--data-workers", type=int, default=0, metavar="N",
                   help="processes drawing clips ahead of training (default 0: in the training process); with "
                        "N > 0 each step's clips are seeded by (seed, step), the same for any N")
    p.add_argument("--corrections", type=int, default=7, help="correction clicks per frame")
    p.add_argument("--no-augment", action="store_true")
    p.add_argument("--seed", type=int, default=123)
    p.add_argument("--device", default="cuda" if _cuda() else "cpu")
    p.add_argument("--save-every", type=int, default=0)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
    return p


def _cuda() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


def run(args) -> int:
    from samstream.checkpoint import save_model

    from .data import open_videos
    from .optim import VISION_LR_RATIO
    from .trainer import build_trainer

    out = Path(args.out)
    model = build_model(args.config, args.init).to(args.device)
    trainer = build_trainer(
        model, open_videos(args.data), out, steps=args.steps, lr=args.lr, batch_size=args.batch_size,
        data_workers=args.data_workers,
        vision_lr=args.vision_lr if args.vision_lr is not None else args.lr * VISION_LR_RATIO, warmup=args.warmup,
        grad_clip=args.grad_clip, frames=args.frames, max_objects=args.max_objects, max_stride=args.max_stride,
        hard_prob=args.hard_clip_prob, augment=not args.no_augment, corrections=args.corrections,
        init_cond_frames=args.init_cond_frames, frames_to_correct=args.frames_to_correct,
        train_only=tuple(args.train_only), freeze_image_encoder=args.freeze_image_encoder, seed=args.seed,
        save_every=args.save_every, progress=not args.quiet)
    ckpt = out / "checkpoint.pt"
    if args.resume:
        trainer.load(ckpt)
    elif ckpt.exists():
        raise FileExistsError(f"{ckpt} exists: pass --resume to continue it, or choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    (out / "model_config.json").write_text(model.cfg.to_json())
    records = trainer.train()
    save_model(model, out / "model.safetensors")
    if records:
        print(json.dumps({"step": trainer.step, "first_loss": records[0]["core_loss"],
                          "last_loss": records[-1]["core_loss"], "out": str(out)}))
    return 0


def main(argv=None) -> int:
    """Stand-alone entry (python -m samstream.train.cli ...) until the top-level CLI registers it."""
    parser = argparse.ArgumentParser(prog="samstream")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
