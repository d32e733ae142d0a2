"""Memory encoder: fuses a frame's features with its predicted mask into a compact memory."""
from __future__ import annotations

import math

import torch
from torch import nn

from .common import DropPath, LayerNorm2d, sine_position_encoding


class MaskDownSampler(nn.Module):
    """Mask (B, 1, S, S) -> (B, dim, S/16, S/16) through stride-2 convs that widen 4x per step."""

    def __init__(self, embed_dim: int, total_stride: int = 16):
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 1
        for _ in range(int(math.log2(total_stride))):
            c_out = c_in * 4
            layers += [nn.Conv2d(c_in, c_out, kernel_size=3, stride=2, padding=1), LayerNorm2d(c_out), nn.GELU()]
            c_in = c_out
        layers.append(nn.Conv2d(c_in, embed_dim, kernel_size=1))
        self.encoder = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)


class CXBlock(nn.Module):
    """ConvNeXt block: depthwise 7x7 conv, LayerNorm, pointwise MLP, layer scale, residual."""

    def __init__(self, dim: int, drop_path: float = 0.0):
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, kernel_size=7, padding=3, groups=dim)
        self.norm = LayerNorm2d(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(4 * dim, dim)
        self.gamma = nn.Parameter(1e-6 * torch.ones(dim))
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.norm(self.dwconv(x)).permute(0, 2, 3, 1)  # channels-last for the linears
        y = self.gamma * self.pwconv2(self.act(self.pwconv1(y)))
        return x + self.drop_path(y.permute(0, 3, 1, 2))


class Fuser(nn.Module):
    def __init__(self, dim: int, num_layers: int = 2):
        super().__init__()
        self.layers = nn.ModuleList(CXBlock(dim) for _ in range(num_layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


class MemoryEncoder(nn.Module):
    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        self.out_dim = out_dim
        self.mask_downsampler = MaskDownSampler(in_dim)
        self.pix_feat_proj = nn.Conv2d(in_dim, in_dim, kernel_size=1)
        self.fuser = Fuser(in_dim)
        self.out_proj = nn.Conv2d(in_dim, out_dim, kernel_size=1)

    def forward(self, pix_feat: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """pix_feat (B, C, E, E) raw frame features; mask (B, 1, S, S) already scaled (no sigmoid here).

        -> memory features (B, out_dim, E, E) and their sine position encoding (B, out_dim, E, E).
        """
        x = self.pix_feat_proj(pix_feat) + self.mask_downsampler(mask)
        x = self.out_proj(self.fuser(x))
        return x, sine_position_encoding(x, self.out_dim)
