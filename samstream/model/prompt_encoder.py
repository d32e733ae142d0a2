"""Prompt encoder: points and boxes -> sparse tokens, mask logits -> dense embedding."""
from __future__ import annotations

import math

import torch
from torch import nn

from .common import LayerNorm2d, full_precision


class RandomFourierEncoding(nn.Module):
    """Positional encoding of [0,1] coordinates through a fixed random Gaussian projection."""

    def __init__(self, num_pos_feats: int):
        super().__init__()
        self.register_buffer("positional_encoding_gaussian_matrix", torch.randn(2, num_pos_feats))

    def encode(self, coords: torch.Tensor) -> torch.Tensor:
        # coords (..., 2) in [0, 1] as (x, y) -> (..., 2 * num_pos_feats) as [sin, cos]
        with full_precision(coords):  # a position encoding: the product stays float32 under autocast
            coords = (2 * coords - 1) @ self.positional_encoding_gaussian_matrix
            coords = 2 * math.pi * coords
            return torch.cat([coords.sin(), coords.cos()], dim=-1)

    def grid(self, h: int, w: int) -> torch.Tensor:
        """Encoding of the cell centres of an h x w grid -> (C, h, w)."""
        dev = self.positional_encoding_gaussian_matrix.device
        y = (torch.arange(h, device=dev, dtype=torch.float32) + 0.5) / h
        x = (torch.arange(w, device=dev, dtype=torch.float32) + 0.5) / w
        xy = torch.stack([x.view(1, w).expand(h, w), y.view(h, 1).expand(h, w)], dim=-1)
        return self.encode(xy).permute(2, 0, 1)

    def points(self, coords: torch.Tensor, image_size: int) -> torch.Tensor:
        """coords (B, N, 2) in model-input pixels -> (B, N, C)."""
        return self.encode(coords.float() / image_size)


class PromptEncoder(nn.Module):
    # point labels: -1 padding, 0 negative click, 1 positive click, 2 box top-left, 3 box bottom-right
    def __init__(self, embed_dim: int, image_embedding_size: int, input_image_size: int, mask_in_chans: int = 16):
        super().__init__()
        self.embed_dim = embed_dim
        self.image_embedding_size = image_embedding_size
        self.input_image_size = input_image_size
        self.pe_layer = RandomFourierEncoding(embed_dim // 2)
        self.point_embeddings = nn.ModuleList(nn.Embedding(1, embed_dim) for _ in range(4))
        self.not_a_point_embed = nn.Embedding(1, embed_dim)
        self.mask_input_size = 4 * image_embedding_size  # 256 for 1024 inputs
        self.mask_downscaling = nn.Sequential(
            nn.Conv2d(1, mask_in_chans // 4, kernel_size=2, stride=2),
            LayerNorm2d(mask_in_chans // 4),
            nn.GELU(),
            nn.Conv2d(mask_in_chans // 4, mask_in_chans, kernel_size=2, stride=2),
            LayerNorm2d(mask_in_chans),
            nn.GELU(),
            nn.Conv2d(mask_in_chans, embed_dim, kernel_size=1),
        )
        self.no_mask_embed = nn.Embedding(1, embed_dim)

    def dense_pe(self) -> torch.Tensor:
        """Position encoding of the image-embedding grid -> (1, C, E, E)."""
        return self.pe_layer.grid(self.image_embedding_size, self.image_embedding_size).unsqueeze(0)

    def embed_points(self, coords: torch.Tensor, labels: torch.Tensor, pad: bool) -> torch.Tensor:
        # coords (B, N, 2) model-input pixels, labels (B, N) -> (B, N [+1], C)
        coords = coords + 0.5  # pixel centre
        if pad:  # a trailing "not a point" token, as the model was trained with
            coords = torch.cat([coords, coords.new_zeros(coords.shape[0], 1, 2)], dim=1)
            labels = torch.cat([labels, -labels.new_ones(labels.shape[0], 1)], dim=1)
        emb = self.pe_layer.points(coords, self.input_image_size)
        labels = labels.unsqueeze(-1)
        emb = torch.where(labels == -1, self.not_a_point_embed.weight, emb)
        for i, table in enumerate(self.point_embeddings):
            emb = torch.where(labels == i, emb + table.weight, emb)
        return emb

    def embed_boxes(self, boxes: torch.Tensor) -> torch.Tensor:
        # boxes (B, 4) XYXY model-input pixels -> (B, 2, C)
        corners = self.pe_layer.points(boxes.reshape(-1, 2, 2) + 0.5, self.input_image_size)
        return torch.stack(
            [corners[:, 0] + self.point_embeddings[2].weight[0], corners[:, 1] + self.point_embeddings[3].weight[0]],
            dim=1,
        )

    def forward(self, points: tuple[torch.Tensor, torch.Tensor] | None, boxes: torch.Tensor | None,
                masks: torch.Tensor | None, batch_size: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
        """-> sparse (B, N, C) tokens and dense (B, C, E, E) embedding.

        masks: (B, 1, 4E, 4E) logits (256x256 for 1024 inputs).
        """
        for p in (points[0] if points is not None else None, boxes, masks):
            if p is not None:
                batch_size = p.shape[0]
                break
        w = self.no_mask_embed.weight
        sparse = w.new_empty(batch_size, 0, self.embed_dim)
        if points is not None:
            sparse = torch.cat([sparse, self.embed_points(points[0], points[1], pad=boxes is None)], dim=1)
        if boxes is not None:
            sparse = torch.cat([sparse, self.embed_boxes(boxes)], dim=1)
        if masks is not None:
            dense = self.mask_downscaling(masks)
        else:
            e = self.image_embedding_size
            dense = w.reshape(1, -1, 1, 1).expand(batch_size, -1, e, e)
        return sparse, dense
