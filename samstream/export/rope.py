"""Axial 2-D RoPE in real arithmetic: the same rotation as `samstream.model.memory_attention.apply_rope`,
written with cos / sin tables so that ONNX (which has no complex tensors) can express it."""
from __future__ import annotations

import torch


def rope_tables(side: int, head_dim: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of the rotation angles of a side x side grid in row-major order -> 2 x (side*side, head_dim/2);
    the same angles as the model's complex table (first half of the pairs rotate with x, second half with y)."""
    freqs = 1.0 / (theta ** (torch.arange(0, head_dim, 4)[: head_dim // 4].float() / head_dim))
    n = torch.arange(side * side, dtype=torch.float32)
    x = n % side
    y = torch.div(n, side, rounding_mode="floor")
    ang = torch.cat([torch.outer(x, freqs), torch.outer(y, freqs)], dim=-1)
    # torch.polar(1, ang) is cos + i sin; taking the parts of that table keeps the exact same values
    table = torch.polar(torch.ones_like(ang), ang)
    return table.real.contiguous(), table.imag.contiguous()


def apply_rope_real(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate consecutive channel pairs of x (..., N, D) by the angles of cos / sin (N, D/2): the pair (a, b)
    becomes (a cos - b sin, a sin + b cos), the real and imaginary parts of (a + ib)(cos + i sin)."""
    pairs = x.unflatten(-1, (-1, 2))  # (..., N, D/2, 2)
    a, b = pairs[..., 0], pairs[..., 1]
    return torch.stack([a * cos - b * sin, a * sin + b * cos], dim=-1).flatten(-2)
