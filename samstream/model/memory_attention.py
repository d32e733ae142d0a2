"""Memory attention: current-frame tokens attend to spatial memories and object pointers, with 2-D RoPE."""
from __future__ import annotations

from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import nn

from .common import Attention, full_precision


@lru_cache(maxsize=8)
@torch.inference_mode(False)  # a cached table must also serve later autograd (training) calls
def _rope_table(side: int, head_dim: int, theta: float, device: torch.device) -> torch.Tensor:
    # Axial RoPE for a side x side grid in row-major order -> complex (side*side, head_dim/2):
    # first half of the pairs rotate with x, second half with y.
    freqs = 1.0 / (theta ** (torch.arange(0, head_dim, 4, device=device)[: head_dim // 4].float() / head_dim))
    n = torch.arange(side * side, device=device, dtype=torch.float32)
    x = n % side
    y = torch.div(n, side, rounding_mode="floor")
    ang = torch.cat([torch.outer(x, freqs), torch.outer(y, freqs)], dim=-1)
    return torch.polar(torch.ones_like(ang), ang)


def apply_rope(x: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """Rotate consecutive channel pairs of x (B, heads, N, D) by table (N', D/2), N a multiple of N'.
    The rotation is done in float32 (also under autocast); the result has x's dtype."""
    with full_precision(x):
        xc = torch.view_as_complex(x.float().reshape(*x.shape[:-1], -1, 2))
        reps = x.shape[-2] // table.shape[0]
        if reps > 1:  # several memory frames share the grid positions of the query frame
            table = table.repeat(reps, 1)
        return torch.view_as_real(xc * table).flatten(-2).type_as(x)


class RoPEAttention(Attention):
    def __init__(self, embedding_dim: int, num_heads: int = 1, dropout: float = 0.0,
                 kv_in_dim: int | None = None, rope_theta: float = 10000.0, rope_k_repeat: bool = False):
        super().__init__(embedding_dim, num_heads, dropout=dropout, kv_in_dim=kv_in_dim)
        self.rope_theta = rope_theta
        self.rope_k_repeat = rope_k_repeat

    def forward(self, q, k, v, num_k_exclude_rope: int = 0, key_mask: torch.Tensor | None = None):
        # q (B, Nq, C) on a square grid; k, v (B, Nk, kv_in_dim); the last num_k_exclude_rope keys are
        # object pointers, which carry no grid position. key_mask (B, Nk) bool: False for padding keys.
        q, k, v = self._heads(self.q_proj(q)), self._heads(self.k_proj(k)), self._heads(self.v_proj(v))
        side = round(q.shape[-2] ** 0.5)
        with full_precision(q):  # the cached table is shared: never computed in reduced precision
            table = _rope_table(side, q.shape[-1], self.rope_theta, q.device)
        q = apply_rope(q, table)
        n_rope = k.shape[-2] - num_k_exclude_rope
        if n_rope > 0:
            if not self.rope_k_repeat and n_rope != table.shape[0]:
                raise ValueError("self-attention keys must match the query grid")
            k = torch.cat([apply_rope(k[:, :, :n_rope], table), k[:, :, n_rope:]], dim=2)
        return self.attend(q, k, v, key_mask)


class MemoryAttentionLayer(nn.Module):
    def __init__(self, d_model: int, mem_dim: int, dim_feedforward: int, dropout: float, rope_theta: float):
        super().__init__()
        self.self_attn = RoPEAttention(d_model, dropout=dropout, rope_theta=rope_theta)
        self.cross_attn_image = RoPEAttention(d_model, dropout=dropout, kv_in_dim=mem_dim, rope_theta=rope_theta,
                                              rope_k_repeat=True)
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.norm3 = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.dropout3 = nn.Dropout(dropout)

    def forward(self, tgt, memory, memory_pos, num_obj_ptr_tokens: int, memory_mask: torch.Tensor | None = None):
        t = self.norm1(tgt)
        tgt = tgt + self.dropout1(self.self_attn(t, t, t))
        t = self.norm2(tgt)
        tgt = tgt + self.dropout2(self.cross_attn_image(t, memory + memory_pos, memory, num_obj_ptr_tokens,
                                                        memory_mask))
        t = self.linear2(self.dropout(F.relu(self.linear1(self.norm3(tgt)))))
        return tgt + self.dropout3(t)


class MemoryAttention(nn.Module):
    def __init__(self, d_model: int, mem_dim: int, num_layers: int, dim_feedforward: int, dropout: float,
                 rope_theta: float):
        super().__init__()
        self.layers = nn.ModuleList(
            MemoryAttentionLayer(d_model, mem_dim, dim_feedforward, dropout, rope_theta) for _ in range(num_layers)
        )
        self.norm = nn.LayerNorm(d_model)

    def forward(self, curr: torch.Tensor, curr_pos: torch.Tensor, memory: torch.Tensor, memory_pos: torch.Tensor,
                num_obj_ptr_tokens: int = 0, memory_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Batch-first: curr, curr_pos (B, HW, C); memory, memory_pos (B, M, mem_dim) -> (B, HW, C).

        memory_mask (B, M) bool: False for padding tokens, which are not attended to (samstream.model.compiled).
        """
        x = curr + 0.1 * curr_pos
        for layer in self.layers:
            x = layer(x, memory, memory_pos, num_obj_ptr_tokens, memory_mask)
        return self.norm(x)
