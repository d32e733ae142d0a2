"""Compiled graphs (compile=True): torch.compile of the image encoder, memory attention and mask decoder, fed
fixed shapes so that nothing recompiles while a video is tracked.

What varies between calls is padded to buckets, and the padding is masked out of attention, so the outputs are
those of the uncompiled model up to float rounding:

* prompt tokens (clicks, box corners, SAM 2's own trailing "not a point"): padded with "not a point" tokens
  (what label -1 embeds to) to a multiple of PROMPT_BUCKET; no token or pixel attends to them;
* memory: the spatial memories to `num_maskmem` frames (then 4 more at a time), the object-pointer tokens to
  `max_obj_ptrs_in_encoder` pointers (then 4 more at a time); padding keys get no attention weight.

`compiled_view(model)` is a stand-in for the model with those three parts swapped for compiled callables; the
model itself stays as it was (uncompiled, stateless). One view per model, so every predictor on a model shares
its compiled graphs: a second video, or another click count, compiles nothing new.
"""
from __future__ import annotations

import math
import weakref

import torch

from .sam2 import SAM2Model

PROMPT_BUCKET = 8  # sparse prompt tokens padded to a multiple of this (7 clicks + SAM 2's padding point)
MEMORY_STEP = 4  # beyond the first bucket, memories and pointers are padded 4 at a time
RECOMPILE_LIMIT = 64  # graphs per compiled function (batch sizes x buckets x multimask); torch's default is 8


def bucket(n: int, first: int, step: int) -> int:
    """The padded size of n: `first` for n <= first, else the next `first + k * step`."""
    return first if n <= first else first + step * math.ceil((n - first) / step)


def _compile(module: torch.nn.Module):
    # dynamic=False: one static graph per bucket, instead of a symbolic-shape recompile at the second shape
    return torch.compile(module, dynamic=False)


class PaddedMaskDecoder:
    """The mask decoder with its sparse prompt tokens padded to a multiple of PROMPT_BUCKET (see the module
    docstring); other attributes are the decoder's."""

    def __init__(self, decoder, not_a_point: torch.nn.Embedding):
        self._decoder = decoder
        self._not_a_point = not_a_point
        self._compiled = _compile(decoder)

    def __getattr__(self, name):
        return getattr(self.__dict__["_decoder"], name)

    def __call__(self, image_embeddings, image_pe, sparse, dense, multimask_output, repeat_image,
                 high_res_features=None):
        b, n, c = sparse.shape  # (B, N, C)
        nb = bucket(n, PROMPT_BUCKET, PROMPT_BUCKET)
        pad = self._not_a_point.weight.to(sparse.dtype).expand(b, nb - n, c)  # label -1 tokens
        mask = (torch.arange(nb, device=sparse.device) < n).expand(b, nb)  # (B, nb), False on padding
        return self._compiled(image_embeddings, image_pe, torch.cat([sparse, pad], dim=1), dense, multimask_output,
                              repeat_image, high_res_features, token_mask=mask)


class PaddedMemoryAttention:
    """Memory attention with the spatial memories and the pointer tokens each padded to a bucket (see the
    module docstring); other attributes are the memory attention's."""

    def __init__(self, attention, cfg):
        self._attention = attention
        self._cfg = cfg
        self._compiled = _compile(attention)

    def __getattr__(self, name):
        return getattr(self.__dict__["_attention"], name)

    def __call__(self, curr, curr_pos, memory, memory_pos, num_obj_ptr_tokens: int = 0):
        # curr (B, HW, C); memory, memory_pos (B, F*HW + P, Cm): F spatial memories of the frame's grid, then
        # P pointer tokens (`split` per pointer)
        cfg = self._cfg
        b, hw, _ = curr.shape
        cm = memory.shape[-1]
        n_ptr = num_obj_ptr_tokens
        n_sp = memory.shape[1] - n_ptr
        if n_sp % hw:
            raise ValueError(f"{n_sp} spatial memory tokens are not whole frames of {hw} tokens")
        split = max(cfg.hidden_dim // cfg.mem_dim, 1)
        sp_b = bucket(n_sp // hw, cfg.num_maskmem, MEMORY_STEP) * hw
        ptr_b = bucket(n_ptr // split, cfg.max_obj_ptrs_in_encoder, MEMORY_STEP) * split

        def pad(x):  # (B, M, Cm) -> (B, sp_b + ptr_b, Cm), padding zeros after each part
            z = x.new_zeros
            return torch.cat([x[:, :n_sp], z(b, sp_b - n_sp, cm), x[:, n_sp:], z(b, ptr_b - n_ptr, cm)], dim=1)

        dev = memory.device
        keep = torch.cat([torch.arange(sp_b, device=dev) < n_sp, torch.arange(ptr_b, device=dev) < n_ptr])
        return self._compiled(curr, curr_pos, pad(memory), pad(memory_pos), ptr_b,
                              memory_mask=keep.expand(b, -1))


class CompiledSAM2:
    """A SAM2Model whose image encoder, memory attention and mask decoder are compiled (see the module
    docstring). The model's step functions run unchanged on it; every other attribute is the model's."""

    def __init__(self, model: SAM2Model):
        self._model = weakref.ref(model)  # the view lives as long as a predictor holds the model
        self.image_encoder = _compile(model.image_encoder)
        self.memory_attention = PaddedMemoryAttention(model.memory_attention, model.cfg)
        self.sam_mask_decoder = PaddedMaskDecoder(model.sam_mask_decoder,
                                                  model.sam_prompt_encoder.not_a_point_embed)

    def __getattr__(self, name):
        model = self.__dict__["_model"]()
        if model is None:
            raise RuntimeError("the model of this compiled view is gone")
        return getattr(model, name)

    # the model's own steps, reading the compiled parts through self
    encode_image = SAM2Model.encode_image
    forward_sam_heads = SAM2Model.forward_sam_heads
    mask_as_output = SAM2Model.mask_as_output
    attend_memory = SAM2Model.attend_memory


_VIEWS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def compiled_view(model: SAM2Model) -> CompiledSAM2:
    """The compiled view of a model, made once per model (so predictors share its graphs)."""
    view = _VIEWS.get(model)
    if view is None:
        cfg = torch._dynamo.config
        cfg.recompile_limit = max(cfg.recompile_limit, RECOMPILE_LIMIT)
        view = _VIEWS[model] = CompiledSAM2(model)
    return view
