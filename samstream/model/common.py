"""Building blocks shared by several parts of the model."""
from __future__ import annotations

import contextlib
import itertools
import math
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import nn


def autocast_on(x: torch.Tensor) -> bool:
    """Whether torch.autocast (mixed precision, samstream.precision) is active for x's device."""
    return torch.is_autocast_enabled(x.device.type)


def full_precision(x: torch.Tensor):
    """Autocast switched off on x's device, for the parts SAM 2 needs in float32 (feed them `.float()` inputs);
    a no-op outside autocast, so exact float32 runs are unchanged."""
    return torch.autocast(device_type=x.device.type, enabled=False) if autocast_on(x) else contextlib.nullcontext()


def pe_dtype(x: torch.Tensor) -> torch.dtype:
    """dtype for a position encoding added to x: float32 under autocast (the encodings stay exact), else x's."""
    return torch.float32 if autocast_on(x) else x.dtype


class LayerNorm2d(nn.Module):
    """LayerNorm over the channel axis of a (B, C, H, W) map."""

    def __init__(self, num_channels: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(num_channels))
        self.bias = nn.Parameter(torch.zeros(num_channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u = x.mean(1, keepdim=True)
        s = (x - u).pow(2).mean(1, keepdim=True)
        x = (x - u) / torch.sqrt(s + self.eps)
        return self.weight[:, None, None] * x + self.bias[:, None, None]


class MLP(nn.Module):
    """`num_layers` linear layers with an activation between them (not after the last)."""

    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int, num_layers: int,
                 activation: type[nn.Module] = nn.ReLU, sigmoid_output: bool = False):
        super().__init__()
        dims = [in_dim] + [hidden_dim] * (num_layers - 1) + [out_dim]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(dims))
        self.act = activation()
        self.sigmoid_output = sigmoid_output

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = self.act(x)
        return torch.sigmoid(x) if self.sigmoid_output else x


class Attention(nn.Module):
    """Multi-head attention with separate q/k/v/out projections and an optional narrower inner width."""

    def __init__(self, embedding_dim: int, num_heads: int, downsample_rate: int = 1,
                 dropout: float = 0.0, kv_in_dim: int | None = None):
        super().__init__()
        kv_in_dim = kv_in_dim or embedding_dim
        self.internal_dim = embedding_dim // downsample_rate
        self.num_heads = num_heads
        assert self.internal_dim % num_heads == 0, "num_heads must divide embedding_dim / downsample_rate"
        self.q_proj = nn.Linear(embedding_dim, self.internal_dim)
        self.k_proj = nn.Linear(kv_in_dim, self.internal_dim)
        self.v_proj = nn.Linear(kv_in_dim, self.internal_dim)
        self.out_proj = nn.Linear(self.internal_dim, embedding_dim)
        self.dropout_p = dropout

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape  # -> (B, heads, N, C/heads)
        return x.reshape(b, n, self.num_heads, c // self.num_heads).transpose(1, 2)

    def _merge(self, x: torch.Tensor) -> torch.Tensor:
        b, h, n, c = x.shape  # -> (B, N, heads*C)
        return x.transpose(1, 2).reshape(b, n, h * c)

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
               key_mask: torch.Tensor | None = None) -> torch.Tensor:
        # key_mask (B, Nk) bool, False for padding keys (compiled graphs pad to fixed lengths): they get no weight
        p = self.dropout_p if self.training else 0.0
        mask = None if key_mask is None else key_mask[:, None, None, :]
        return self.out_proj(self._merge(F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)))

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                key_mask: torch.Tensor | None = None) -> torch.Tensor:
        # q: (B, Nq, C), k/v: (B, Nk, kv_in_dim)
        return self.attend(self._heads(self.q_proj(q)), self._heads(self.k_proj(k)), self._heads(self.v_proj(v)),
                           key_mask)


@lru_cache(maxsize=16)
@torch.inference_mode(False)  # a cached encoding must also serve later autograd (training) calls
def _sine_pe_2d(h: int, w: int, num_feats: int, temperature: float, device: torch.device) -> torch.Tensor:
    # DETR-style sine encoding of normalised (1..H)/H, (1..W)/W positions; channels [y (F), x (F)],
    # each half interleaving sin and cos of the same frequency.
    scale = 2 * math.pi
    eps = 1e-6
    y = torch.arange(1, h + 1, dtype=torch.float32, device=device).view(h, 1).expand(h, w)
    x = torch.arange(1, w + 1, dtype=torch.float32, device=device).view(1, w).expand(h, w)
    y = y / (h + eps) * scale
    x = x / (w + eps) * scale
    k = torch.arange(num_feats, dtype=torch.float32, device=device)
    dim_t = temperature ** (2 * torch.div(k, 2, rounding_mode="floor") / num_feats)
    pos_x = x[..., None] / dim_t  # (H, W, F)
    pos_y = y[..., None] / dim_t
    pos_x = torch.stack((pos_x[..., 0::2].sin(), pos_x[..., 1::2].cos()), dim=-1).flatten(-2)
    pos_y = torch.stack((pos_y[..., 0::2].sin(), pos_y[..., 1::2].cos()), dim=-1).flatten(-2)
    return torch.cat((pos_y, pos_x), dim=-1).permute(2, 0, 1).contiguous()  # (2F, H, W)


def sine_position_encoding(x: torch.Tensor, num_pos_feats: int, temperature: float = 10000.0) -> torch.Tensor:
    """Sine position encoding for a (B, C, H, W) map -> (B, num_pos_feats, H, W) in x's dtype (float32 under
    autocast)."""
    b, _, h, w = x.shape
    with full_precision(x):  # (the cached table is shared: never computed in reduced precision)
        pe = _sine_pe_2d(h, w, num_pos_feats // 2, temperature, x.device)
    return pe.to(pe_dtype(x)).unsqueeze(0).expand(b, -1, -1, -1)


def sine_encoding_1d(pos: torch.Tensor, dim: int, temperature: float = 10000.0) -> torch.Tensor:
    """1-D sine encoding of positions (N,) -> (N, dim) as [sin (dim/2), cos (dim/2)], not interleaved."""
    half = dim // 2
    k = torch.arange(half, dtype=torch.float32, device=pos.device)
    dim_t = temperature ** (2 * torch.div(k, 2, rounding_mode="floor") / half)
    v = pos.float().unsqueeze(-1) / dim_t
    return torch.cat([v.sin(), v.cos()], dim=-1)


class DropPath(nn.Module):
    """Stochastic depth: drops the whole residual branch per sample while training."""

    def __init__(self, p: float = 0.0):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.p == 0.0 or not self.training:
            return x
        keep = 1 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask / keep
