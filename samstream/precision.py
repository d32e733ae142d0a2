"""Mixed precision: run the model under torch.autocast in bfloat16 or float16, or exactly in float32.

The weights stay as loaded (float32 unless `load_model(..., dtype=)` says otherwise); autocast runs the
matrix products, convolutions and attention in the reduced dtype. The parts SAM 2 needs in float32 are
guarded inside the model itself (samstream.model.common.full_precision): position encodings (sine,
random Fourier and RoPE), the object-score head, the returned mask logits and scores, and the sigmoid of
masks before memory encoding. "fp32" is a no-op: the outputs are those of the exact model, bit for bit.
"""
from __future__ import annotations

import contextlib

import torch

PRECISIONS = ("fp32", "bf16", "fp16")
_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def check_precision(precision) -> str:
    """precision if it is one of PRECISIONS, else a ValueError naming the choices."""
    if not isinstance(precision, str) or precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    return precision


def precision_dtype(precision: str) -> torch.dtype:
    """The compute dtype of a precision name (float32 for "fp32")."""
    return _DTYPES[check_precision(precision)]


def autocast(precision: str, device: torch.device | str):
    """A context that runs model code at `precision` on `device`: torch.autocast for bf16 / fp16, nothing for
    fp32. Use it around model calls only, never across a generator's yield (autocast state is per thread)."""
    if check_precision(precision) == "fp32":
        return contextlib.nullcontext()
    device_type = torch.device(device).type
    return torch.autocast(device_type=device_type, dtype=_DTYPES[precision])
