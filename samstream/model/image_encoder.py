"""Hiera image encoder (windowed / global attention, query pooling) and the FPN neck."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .common import MLP, DropPath, sine_position_encoding
from .config import HieraConfig


def window_partition(x: torch.Tensor, w: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """(B, H, W, C) -> (B * nWin, w, w, C), zero-padding H and W up to multiples of w."""
    b, h, wd, c = x.shape
    ph, pw = (w - h % w) % w, (w - wd % w) % w
    if ph or pw:
        x = F.pad(x, (0, 0, 0, pw, 0, ph))
    hp, wp = h + ph, wd + pw
    x = x.view(b, hp // w, w, wp // w, w, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, w, w, c), (hp, wp)


def window_unpartition(windows: torch.Tensor, w: int, pad_hw: tuple[int, int], hw: tuple[int, int]) -> torch.Tensor:
    """Inverse of window_partition: (B * nWin, w, w, C) -> (B, H, W, C), cropping the padding."""
    hp, wp = pad_hw
    h, wd = hw
    b = windows.shape[0] // (hp * wp // w // w)
    x = windows.view(b, hp // w, wp // w, w, w, -1).permute(0, 1, 3, 2, 4, 5).reshape(b, hp, wp, -1)
    return x[:, :h, :wd, :] if (hp > h or wp > wd) else x


def _max_pool2x2(x: torch.Tensor) -> torch.Tensor:
    # (B, H, W, C) channels-last -> (B, H/2, W/2, C)
    return F.max_pool2d(x.permute(0, 3, 1, 2), kernel_size=2, stride=2).permute(0, 2, 3, 1)


class MultiScaleAttention(nn.Module):
    def __init__(self, dim: int, dim_out: int, num_heads: int, q_pool: bool):
        super().__init__()
        self.num_heads = num_heads
        self.q_pool = q_pool
        self.qkv = nn.Linear(dim, dim_out * 3)
        self.proj = nn.Linear(dim_out, dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, h, w, _ = x.shape  # b = batch * windows
        qkv = self.qkv(x).reshape(b, h * w, 3, self.num_heads, -1)
        q, k, v = qkv.unbind(2)  # each (b, h*w, heads, head_dim)
        if self.q_pool:  # pool all heads' queries together inside the window
            q = _max_pool2x2(q.reshape(b, h, w, -1))
            h, w = q.shape[1:3]
            q = q.reshape(b, h * w, self.num_heads, -1)
        out = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
        return self.proj(out.transpose(1, 2).reshape(b, h, w, -1))


class MultiScaleBlock(nn.Module):
    def __init__(self, dim: int, dim_out: int, num_heads: int, mlp_ratio: float, drop_path: float,
                 q_pool: bool, window_size: int):
        super().__init__()
        self.dim, self.dim_out = dim, dim_out
        self.window_size = window_size  # 0 = global attention
        self.q_pool = q_pool
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = MultiScaleAttention(dim, dim_out, num_heads, q_pool)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim_out, eps=1e-6)
        self.mlp = MLP(dim_out, int(dim_out * mlp_ratio), dim_out, 2, activation=nn.GELU)
        if dim != dim_out:
            self.proj = nn.Linear(dim, dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (B, H, W, dim) -> (B, H', W', dim_out)
        shortcut = x
        x = self.norm1(x)
        if self.dim != self.dim_out:  # residual path: project the *normed* input, then pool
            shortcut = self.proj(x)
            if self.q_pool:
                shortcut = _max_pool2x2(shortcut)
        w = self.window_size
        if w > 0:
            hw = x.shape[1:3]
            x, pad_hw = window_partition(x, w)
        x = self.attn(x)
        if w > 0:
            if self.q_pool:  # pooled windows land on the pooled grid
                w //= 2
                hw = shortcut.shape[1:3]
                pad_hw = (hw[0] + (w - hw[0] % w) % w, hw[1] + (w - hw[1] % w) % w)
            x = window_unpartition(x, w, pad_hw, hw)
        x = shortcut + self.drop_path(x)
        return x + self.drop_path(self.mlp(self.norm2(x)))


class PatchEmbed(nn.Module):
    def __init__(self, embed_dim: int):
        super().__init__()
        self.proj = nn.Conv2d(3, embed_dim, kernel_size=7, stride=4, padding=3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).permute(0, 2, 3, 1)  # (B, H/4, W/4, C) channels-last


class Hiera(nn.Module):
    """Hierarchical ViT trunk; returns one channels-first map per stage, highest resolution first."""

    def __init__(self, cfg: HieraConfig):
        super().__init__()
        self.cfg = cfg
        dim, heads = cfg.embed_dim, cfg.num_heads
        self.patch_embed = PatchEmbed(dim)
        self.pos_embed = nn.Parameter(torch.zeros(1, dim, *cfg.window_pos_embed_bkg_spatial_size))
        self.pos_embed_window = nn.Parameter(torch.zeros(1, dim, cfg.window_spec[0], cfg.window_spec[0]))
        depth = sum(cfg.stages)
        dpr = torch.linspace(0, cfg.drop_path_rate, depth).tolist()
        self.stage_ends = cfg.stage_ends
        q_pool_blocks = set(cfg.q_pool_blocks)
        stage = 1
        blocks = []
        for i in range(depth):
            # a stage's first (q-pool) block still uses the previous stage's window size
            window = 0 if i in cfg.global_att_blocks else cfg.window_spec[stage - 1]
            dim_out = dim
            if i - 1 in self.stage_ends:
                dim_out, heads, stage = dim * 2, heads * 2, stage + 1
            blocks.append(MultiScaleBlock(dim, dim_out, heads, cfg.mlp_ratio, dpr[i], i in q_pool_blocks, window))
            dim = dim_out
        self.blocks = nn.ModuleList(blocks)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.pos_embed_window, std=0.02)

    def _pos_embed(self, h: int, w: int) -> torch.Tensor:
        pe = F.interpolate(self.pos_embed, size=(h, w), mode="bicubic")
        win = self.pos_embed_window
        pe = pe + win.tile(1, 1, h // win.shape[-2], w // win.shape[-1])
        return pe.permute(0, 2, 3, 1)  # (1, h, w, C)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.patch_embed(x)
        x = x + self._pos_embed(*x.shape[1:3])
        outs = []
        for i, blk in enumerate(self.blocks):
            x = blk(x)
            if i in self.stage_ends:
                outs.append(x.permute(0, 3, 1, 2))
        return outs


class _Lateral(nn.Module):
    def __init__(self, in_dim: int, d_model: int):
        super().__init__()
        self.conv = nn.Conv2d(in_dim, d_model, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class FpnNeck(nn.Module):
    """1x1 lateral convs; top-down (nearest x2) fusion only into the levels in `top_down_levels`."""

    def __init__(self, d_model: int, channel_list: list[int], top_down_levels: tuple[int, ...]):
        super().__init__()
        self.d_model = d_model
        self.convs = nn.ModuleList(_Lateral(c, d_model) for c in channel_list)  # lowest resolution first
        self.top_down_levels = set(top_down_levels)

    def forward(self, xs: list[torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        n = len(self.convs) - 1
        feats: list[torch.Tensor] = [None] * (n + 1)  # type: ignore[list-item]
        prev = None
        for i in range(n, -1, -1):  # from the lowest resolution up
            lateral = self.convs[n - i](xs[i])
            if i in self.top_down_levels and prev is not None:
                up = F.interpolate(prev.to(torch.float32), scale_factor=2.0, mode="nearest")
                prev = lateral + up.to(lateral.dtype)
            else:
                prev = lateral
            feats[i] = prev
        pos = [sine_position_encoding(f, self.d_model) for f in feats]
        return feats, pos


class ImageEncoder(nn.Module):
    def __init__(self, trunk: Hiera, neck: FpnNeck, scalp: int = 1):
        super().__init__()
        self.trunk = trunk
        self.neck = neck
        self.scalp = scalp

    def forward(self, images: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """images (B, 3, S, S) normalised -> FPN maps and their position encodings, highest resolution first.

        With S = 1024 and scalp 1: maps of 256x256, 128x128, 64x64, each with `d_model` channels.
        """
        feats, pos = self.neck(self.trunk(images))
        if self.scalp > 0:
            feats, pos = feats[: -self.scalp], pos[: -self.scalp]
        return feats, pos
