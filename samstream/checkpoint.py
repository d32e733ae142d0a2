"""Reading and writing checkpoint files: Meta's official `.pt` files and our safetensors.

An official checkpoint is `torch.save({"model": state_dict})`. We detect which of the eight official
configurations it holds from the tensors themselves; our own files carry their config as metadata, and the
output settings the weights were released with (`MaskPostprocess`, the model's `inference_defaults`).
"""
from __future__ import annotations

import dataclasses
import itertools
import json
import os
import re
from pathlib import Path

import torch

from .model import OFFICIAL_CONFIGS, SAM2Config, SAM2Model
from .model.config import LEGACY_OUTPUT_FIELDS
from .postprocess import MaskPostprocess

CONFIG_METADATA_KEY = "samstream_config"
INFERENCE_METADATA_KEY = "samstream_inference_defaults"  # MaskPostprocess fields as JSON


class CheckpointError(ValueError):
    """A file that is not a usable SAM 2 checkpoint, or a download that failed; the message says why."""


# ------------------------------------------------------------------------------------------ reading
def read_state_dict(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], SAM2Config | None]:
    """-> (state dict, config stored in the file or None). Raises CheckpointError with the reason."""
    sd, cfg, _ = read_checkpoint(path)
    return sd, cfg


def inference_defaults_from(config_json: str | None, defaults_json: str | None) -> MaskPostprocess:
    """A file's inference defaults from its metadata. Files written before these had their own entry kept the
    edge refinement in the model config (LEGACY_OUTPUT_FIELDS): those values are taken from there."""
    legacy = {}
    if isinstance(config_json, str):
        legacy = {k: v for k, v in json.loads(config_json).items() if k in LEGACY_OUTPUT_FIELDS}
    stored = json.loads(defaults_json) if isinstance(defaults_json, str) else {}
    return MaskPostprocess.from_dict({**legacy, **stored})


def read_checkpoint(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], SAM2Config | None, MaskPostprocess]:
    """-> (state dict, config stored in the file or None, inference defaults stored in the file; all off when
    none are). Raises CheckpointError with the reason."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
                sd = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open is not a dict)
        except Exception as e:  # safetensors raises its own error types for truncated headers/data
            raise CheckpointError(f"{path}: not a readable safetensors file ({e})") from e
        cfg = SAM2Config.from_json(meta[CONFIG_METADATA_KEY]) if CONFIG_METADATA_KEY in meta else None
        return sd, cfg, inference_defaults_from(meta.get(CONFIG_METADATA_KEY), meta.get(INFERENCE_METADATA_KEY))
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:  # zip/pickle errors of truncated or foreign files
        size = path.stat().st_size
        raise CheckpointError(f"{path}: cannot be read as a PyTorch checkpoint ({size} bytes; truncated or "
                              f"not a checkpoint?): {e}") from e
    if isinstance(obj, dict) and "model" in obj and isinstance(obj["model"], dict):
        cfg = obj.get(CONFIG_METADATA_KEY)
        defaults = inference_defaults_from(cfg, obj.get(INFERENCE_METADATA_KEY))
        return obj["model"], SAM2Config.from_json(cfg) if isinstance(cfg, str) else None, defaults
    if isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return obj, None, MaskPostprocess()  # a bare state dict
    raise CheckpointError(f"{path}: expected a dict with a 'model' state dict (SAM 2 checkpoint layout), "
                          f"found {type(obj).__name__} with keys {list(obj)[:5] if isinstance(obj, dict) else ''}")


def detect_config(sd: dict[str, torch.Tensor], source: str = "checkpoint") -> SAM2Config:
    """Tell which official configuration a state dict belongs to, from its tensor names and shapes."""
    if any(k.startswith("module.") for k in sd):
        sd = {k.removeprefix("module."): v for k, v in sd.items()}
    need = "image_encoder.trunk.patch_embed.proj.weight"
    if need not in sd or "sam_mask_decoder.iou_token.weight" not in sd:
        hint = ""
        if "image_encoder.patch_embed.proj.weight" in sd or "image_encoder.blocks.0.attn.qkv.weight" in sd:
            hint = " (it looks like a Segment Anything 1 checkpoint, which is a different model)"
        raise CheckpointError(f"{source}: not a SAM 2 checkpoint: no '{need}' / mask decoder tensors{hint}")
    embed_dim = sd[need].shape[0]
    blocks = sorted({int(m.group(1)) for k in sd if (m := re.match(r"image_encoder\.trunk\.blocks\.(\d+)\.", k))})
    q_pool = [i for i in blocks if f"image_encoder.trunk.blocks.{i}.proj.weight" in sd]
    bounds = [0] + q_pool + [len(blocks)]
    stages = tuple(b - a for a, b in itertools.pairwise(bounds))
    v21 = "no_obj_embed_spatial" in sd
    for cfg in OFFICIAL_CONFIGS.values():
        if cfg.trunk.embed_dim == embed_dim and cfg.trunk.stages == stages and (cfg.version == "2.1") == v21:
            return dataclasses.replace(cfg, trunk=dataclasses.replace(cfg.trunk))
    raise CheckpointError(f"{source}: a SAM 2-style model (embed_dim {embed_dim}, stages {stages}) that matches "
                          f"none of the official configurations and carries no config metadata")


def check_finite(sd: dict[str, torch.Tensor], source: str = "checkpoint") -> None:
    """Refuse NaN or infinite weights (they load, and every mask comes out empty), naming the first bad tensor."""
    # a finite sum proves a tensor finite; only a non-finite one (or an overflowing sum) needs the exact test
    bad = [k for k, v in sd.items() if v.is_floating_point() and not torch.isfinite(v.sum())
           and not torch.isfinite(v).all()]
    if bad:
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        raise CheckpointError(f"{source}: tensor {bad[0]!r}{more} holds NaN or infinite values: the weights are "
                              f"broken (a diverged training run or a corrupted file); use another checkpoint")


def load_into(model: SAM2Model, sd: dict[str, torch.Tensor], source: str = "checkpoint") -> None:
    """Strict load that reports missing, unexpected and mis-shaped tensors by name, and refuses non-finite ones."""
    sd = {k.removeprefix("module."): v for k, v in sd.items()}
    own = model.state_dict()
    missing = sorted(set(own) - set(sd))
    unexpected = sorted(set(sd) - set(own))
    shapes = [f"{k}: file {tuple(sd[k].shape)} vs model {tuple(own[k].shape)}"
              for k in own if k in sd and sd[k].shape != own[k].shape]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {missing[:3]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[:3]})")
        if shapes:
            parts.append(f"{len(shapes)} with other shapes (e.g. {shapes[:3]})")
        raise CheckpointError(f"{source} does not fit {model.cfg.name}: " + "; ".join(parts))
    check_finite(sd, source)
    model.load_state_dict(sd, strict=True)


# ------------------------------------------------------------------------------------------ writing
def save_model(model: SAM2Model, path: str | os.PathLike) -> Path:
    """Write `.safetensors` (config and inference defaults in metadata) or `.pt` (official layout, loadable by
    Meta's code). Atomic."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    sd = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    defaults = json.dumps(model.inference_defaults.to_dict(), sort_keys=True)
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(sd, str(tmp), metadata={CONFIG_METADATA_KEY: model.cfg.to_json(),
                                          INFERENCE_METADATA_KEY: defaults})
    else:
        payload = {"model": sd}
        if model.cfg.name not in OFFICIAL_CONFIGS:  # official files hold nothing else; ours may need the config
            payload[CONFIG_METADATA_KEY] = model.cfg.to_json()
        if model.inference_defaults != MaskPostprocess():
            payload[INFERENCE_METADATA_KEY] = defaults
        torch.save(payload, str(tmp))
    os.replace(tmp, path)
    return path
