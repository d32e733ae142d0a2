"""Growing a trained model into a larger configuration without changing what it computes.

A stage of the default model's recipe may train a larger network than the stage before it (`Stage.arch`).
Starting it from scratch would throw away hours of training, so the trained weights are carried over and the
new parts start as no-ops, in the pre-norm residual style of Net2Net / "zero-init the last layer":

* memory-attention layers appended after the trained ones (`mem_attn_layers`): their residual branches'
  output projections (self-attention, cross-attention, second FFN linear) are zero, so each new layer
  passes its input through unchanged until training moves them;
* a wider memory-attention FFN (`mem_attn_ffn_dim`): the new hidden units get fresh input weights and zero
  output weights, so they add nothing until trained;
* a deeper image encoder (`trunk.stages`): Hiera blocks appended at the end of a stage, after its trained
  blocks, with zero attention and MLP output projections (its blocks are pre-norm residual, so such a block is
  the identity). The trained blocks keep their order and attention type; `trunk.global_att_blocks` must name
  the trained global blocks at their new indices (new blocks may also be global).

Everything else must be the same configuration; anything else raises a ValueError naming the field.
The grown model's outputs equal the small model's (tested to float rounding), so the first steps of the
stage start from the trained quality instead of from a perturbed one.
"""
from __future__ import annotations

import dataclasses

import torch

from samstream.model import HieraConfig, SAM2Config, SAM2Model

GROWABLE = ("mem_attn_layers", "mem_attn_ffn_dim", "trunk")
# what a post-processing switch changes is not architecture, nor which memories a frame reads; the image size
# changes only the grids
_NOT_ARCHITECTURE = {"name", "image_size", "dynamic_multimask_via_stability", "binarize_mask_from_pts_for_mem_enc",
                     "fill_hole_area", "max_obj_ptrs_in_encoder", "memory_temporal_stride_for_eval",
                     "max_cond_frames_in_attn", "non_overlap_masks_for_mem_enc"}
# residual-branch outputs of a memory-attention layer: zero makes the layer the identity
_LAYER_OUTPUTS = ("self_attn.out_proj", "cross_attn_image.out_proj", "linear2")
# the same for a Hiera block
_BLOCK_OUTPUTS = ("attn.proj", "mlp.layers.1")
_TRUNK = "image_encoder.trunk.blocks."


def _architecture_changes(a: SAM2Config, b: SAM2Config) -> list[tuple[str, object, object]]:
    """(field, value in a, value in b) for every architecture field that differs."""
    return [(f.name, getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(SAM2Config)
            if f.name not in _NOT_ARCHITECTURE and getattr(a, f.name) != getattr(b, f.name)]


def same_architecture(a: SAM2Config, b: SAM2Config) -> bool:
    """True when weights of `a` load into `b` as they are (input size and post-processing aside)."""
    return not _architecture_changes(a, b)


def block_map(old: HieraConfig, new: HieraConfig) -> dict[int, int]:
    """Old Hiera block index -> its index in the deeper trunk `new` (new blocks go at the end of each stage)."""
    out = {}
    for s, n in enumerate(old.stages):
        old_start, new_start = sum(old.stages[:s]), sum(new.stages[:s])
        out.update({old_start + j: new_start + j for j in range(n)})
    return out


def new_blocks(old: HieraConfig, new: HieraConfig) -> set[int]:
    """Indices of the blocks of `new` that `old` does not have (those `block_map` maps nothing to)."""
    return set(range(sum(new.stages))) - set(block_map(old, new).values())


def _check_trunk(old: HieraConfig, new: HieraConfig) -> None:
    for f in dataclasses.fields(HieraConfig):
        a, b = getattr(old, f.name), getattr(new, f.name)
        if f.name not in ("stages", "global_att_blocks") and a != b:
            raise ValueError(f"cannot grow a model into another trunk.{f.name} ({a} -> {b}); "
                             "only trunk.stages may grow")
    if len(new.stages) != len(old.stages) or any(b < a for a, b in zip(old.stages, new.stages)):
        raise ValueError(f"trunk.stages {tuple(new.stages)} must keep the {len(old.stages)} stages of "
                         f"{tuple(old.stages)} and add blocks only")
    moved = block_map(old, new)
    want = {moved[i] for i in old.global_att_blocks}
    got = set(new.global_att_blocks)
    added = new_blocks(old, new)
    if not want <= got or not got - want <= added:
        raise ValueError(f"trunk.global_att_blocks {tuple(new.global_att_blocks)} must be the trained global blocks at "
                         f"their new indices {tuple(sorted(want))}, plus any of the new blocks {tuple(sorted(added))}")


def check_growable(old: SAM2Config, new: SAM2Config) -> None:
    """Raise ValueError unless `new` differs from `old` only by growing the GROWABLE fields."""
    for name, a, b in _architecture_changes(old, new):
        if name not in GROWABLE:
            raise ValueError(f"cannot grow a model into another {name} ({a} -> {b}); only {GROWABLE} may change")
        if name == "trunk":
            _check_trunk(a, b)
        elif b < a:
            raise ValueError(f"cannot shrink {name} from {a} to {b}: only growing is function-preserving")


@torch.no_grad()
def grow_state_dict(sd: dict[str, torch.Tensor], old: SAM2Config, new: SAM2Config,
                    seed: int = 0) -> dict[str, torch.Tensor]:
    """The weights `sd` of a model of config `old`, grown to fit config `new` (see the module docstring).
    New input weights come from a fresh `SAM2Model(new)` initialised under `seed`."""
    check_growable(old, new)
    moved = block_map(old.trunk, new.trunk)
    sd = {_moved_key(k, moved): v for k, v in sd.items()}
    torch.manual_seed(seed)
    fresh = SAM2Model(new).state_dict()
    out = {}
    for k, v in fresh.items():
        if k not in sd:  # a new layer: fresh weights, zero residual outputs (below)
            out[k] = v.clone()
            continue
        old_v = sd[k].to(v.dtype)
        if old_v.shape == v.shape:
            out[k] = old_v.clone()
            continue
        # a wider FFN: linear1 (F, C) / (F,) gains rows, linear2 (C, F) gains columns
        grown = v.clone()
        if k.endswith("linear2.weight"):
            grown.zero_()
            grown[:, : old_v.shape[1]] = old_v
        else:
            grown[: old_v.shape[0]] = old_v
        out[k] = grown
    for i in range(old.mem_attn_layers, new.mem_attn_layers):
        for name in _LAYER_OUTPUTS:
            for p in ("weight", "bias"):
                out[f"memory_attention.layers.{i}.{name}.{p}"].zero_()
    for i in new_blocks(old.trunk, new.trunk):
        for name in _BLOCK_OUTPUTS:
            for p in ("weight", "bias"):
                out[f"{_TRUNK}{i}.{name}.{p}"].zero_()
    unknown = sorted(set(sd) - set(fresh))
    if unknown:
        raise ValueError(f"weights not in the grown model: {unknown[:3]}")
    return out


def _moved_key(key: str, moved: dict[int, int]) -> str:
    if not key.startswith(_TRUNK):
        return key
    i, rest = key[len(_TRUNK):].split(".", 1)
    return f"{_TRUNK}{moved[int(i)]}.{rest}"


__all__ = ["GROWABLE", "block_map", "check_growable", "grow_state_dict", "same_architecture"]
