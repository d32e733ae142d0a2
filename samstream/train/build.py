"""Models to train: a named or JSON config, weights from a checkpoint, grown where the config is larger."""
from __future__ import annotations

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

    from samstream.checkpoint import detect_config, load_into, read_checkpoint
    from samstream.model import SAM2Model

    from .grow import GROWABLE, grow_state_dict, same_architecture

    cfg = resolve_config(config)
    if init and init.lower() != "none":
        sd, stored, defaults = read_checkpoint(init)
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
        model.inference_defaults = defaults  # init's output settings (edge refinement) carry over, as its config
        return model
    if cfg is None:
        raise ValueError("training from scratch (--init none) needs --config")
    torch.manual_seed(0)
    return SAM2Model(cfg)
