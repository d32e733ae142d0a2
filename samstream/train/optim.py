"""AdamW with layer-wise lr decay for the Hiera trunk, a separate vision lr, selective weight decay,
and a warm-up + cosine schedule, as SAM 2's training recipe has them."""
from __future__ import annotations

import math
import re

import torch
from torch import nn

from .config import OptimConfig

# the image encoder's lr relative to the rest in Meta's fine-tuning settings (3e-6 / 5e-6); `samstream train`
# uses it by default, the default model's recipe (training from scratch) does not
VISION_LR_RATIO = OptimConfig.vision_lr / OptimConfig.base_lr


def lr_scale(name: str, num_blocks: int, decay: float) -> float:
    """Layer-wise decay factor of a parameter name (1.0 outside the trunk and for pos-embeds)."""
    if not name.startswith("image_encoder.trunk."):
        return 1.0
    if "pos_embed" in name:
        return 1.0
    m = re.match(r"image_encoder\.trunk\.blocks\.(\d+)\.", name)
    if m:
        return decay ** (num_blocks - int(m.group(1)))
    if name.startswith("image_encoder.trunk.patch_embed."):
        return decay ** (num_blocks + 1)
    return 1.0


def no_decay_names(model: nn.Module) -> set[str]:
    """Biases and torch.nn.LayerNorm params (the official class-name match: LayerNorm2d etc. keep decay)."""
    out = {n for n, _ in model.named_parameters() if "bias" in n}
    for mname, mod in model.named_modules():
        if type(mod) is nn.LayerNorm:
            out.update(f"{mname}.{p}" if mname else p for p, _ in mod.named_parameters(recurse=False))
    return out


def param_groups(model: nn.Module, cfg: OptimConfig) -> list[dict]:
    """One group per (lr, weight decay) pair, trainable parameters only."""
    num_blocks = len(model.image_encoder.trunk.blocks) if hasattr(model, "image_encoder") else 0
    skip = no_decay_names(model)
    groups: dict[tuple[float, float], dict] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        base = cfg.vision_lr if name.startswith("image_encoder.") else cfg.base_lr
        lr = base * lr_scale(name, num_blocks, cfg.layer_decay)
        wd = 0.0 if name in skip else cfg.weight_decay
        g = groups.setdefault((lr, wd), {"params": [], "names": [], "lr": lr, "weight_decay": wd})
        g["params"].append(p)
        g["names"].append(name)
    if not groups:
        raise ValueError("no trainable parameters: everything is frozen")
    return list(groups.values())


def build_optimizer(model: nn.Module, cfg: OptimConfig) -> torch.optim.AdamW:
    groups = param_groups(model, cfg)
    for g in groups:
        g.pop("names")  # AdamW's state_dict must hold only plain settings
    return torch.optim.AdamW(groups, betas=cfg.betas)


def lr_factor(step: int, total_steps: int, warmup_steps: int = 0, final_frac: float = 0.1) -> float:
    """Linear warm-up to 1, then cosine from 1 to final_frac at total_steps."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    span = max(total_steps - warmup_steps, 1)
    prog = min(max(step - warmup_steps, 0) / span, 1.0)
    return final_frac + (1 - final_frac) * 0.5 * (1 + math.cos(math.pi * prog))


def build_scheduler(opt: torch.optim.Optimizer, total_steps: int,
                    cfg: OptimConfig) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: lr_factor(s, total_steps, cfg.warmup_steps, cfg.final_lr_frac))
