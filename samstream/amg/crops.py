"""Where the automatic mask generator looks: crop boxes over the image and click grids inside each crop."""
from __future__ import annotations

import math

import numpy as np
import torch


def point_grid(n_per_side: int) -> np.ndarray:
    """(n*n, 2) cell centres (x, y) of an n x n grid over [0, 1]^2, row by row (x varies fastest)."""
    if n_per_side < 1:
        raise ValueError(f"a point grid needs at least 1 point per side, got {n_per_side}")
    # (k + 0.5) / n, computed as an evenly spaced range (rounds like the official grid)
    half = 1 / (2 * n_per_side)
    centres = np.linspace(half, 1 - half, n_per_side)
    xs, ys = np.meshgrid(centres, centres)
    return np.stack([xs, ys], axis=-1).reshape(-1, 2)


def layer_point_grids(points_per_side: int, n_layers: int, downscale_factor: int) -> list[np.ndarray]:
    """One grid per crop layer: layer i has int(points_per_side / downscale_factor**i) points per side."""
    grids = []
    for i in range(n_layers + 1):
        n = int(points_per_side / (downscale_factor ** i))
        if n < 1:
            raise ValueError(f"crop layer {i} would have {points_per_side} / {downscale_factor}^{i} < 1 points per "
                             f"side: lower crop_n_points_downscale_factor or crop_n_layers")
        grids.append(point_grid(n))
    return grids


def crop_boxes(height: int, width: int, n_layers: int, overlap_ratio: float) -> tuple[list[list[int]], list[int]]:
    """Crop boxes [x0, y0, x1, y1] (x1, y1 exclusive) and their layer: layer 0 is the whole image, layer
    i >= 1 has (2^i)^2 overlapping crops; the overlap shrinks with the layer."""
    boxes, layers = [[0, 0, width, height]], [0]
    short = min(height, width)
    for i in range(1, n_layers + 1):
        n = 2 ** i
        overlap = int(overlap_ratio * short * (2 / n))
        cw = math.ceil((overlap * (n - 1) + width) / n)
        ch = math.ceil((overlap * (n - 1) + height) / n)
        xs = [int((cw - overlap) * k) for k in range(n)]
        ys = [int((ch - overlap) * k) for k in range(n)]
        for x0 in xs:  # column-major over the crops, as the official order
            for y0 in ys:
                boxes.append([x0, y0, min(x0 + cw, width), min(y0 + ch, height)])
                layers.append(i)
    return boxes, layers


def near_crop_edge(boxes: torch.Tensor, crop_box: list[int], image_box: list[int], atol: float = 20.0) -> torch.Tensor:
    """boxes (N, 4) XYXY in image pixels -> (N,) True where a side lies within atol of a crop edge that is
    not also an edge of the image (such masks are probably cut by the crop)."""
    crop = torch.as_tensor(crop_box, dtype=torch.float32, device=boxes.device)
    img = torch.as_tensor(image_box, dtype=torch.float32, device=boxes.device)
    b = boxes.float()
    at_crop = torch.isclose(b, crop[None], atol=atol, rtol=0)
    at_image = torch.isclose(b, img[None], atol=atol, rtol=0)
    return (at_crop & ~at_image).any(dim=1)
