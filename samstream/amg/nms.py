"""Greedy non-maximum suppression of boxes in plain torch (no torchvision)."""
from __future__ import annotations

import numpy as np
import torch


def box_area(boxes: torch.Tensor) -> torch.Tensor:
    """boxes (N, 4) XYXY -> (N,) (x1 - x0) * (y1 - y0)."""
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(N, 4), (M, 4) XYXY -> (N, M) intersection over union (NaN where both boxes are empty)."""
    lt = torch.maximum(a[:, None, :2], b[None, :, :2])
    rb = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    return inter / (box_area(a)[:, None] + box_area(b)[None, :] - inter)


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float, block: int = 2048) -> torch.Tensor:
    """Indices of the boxes kept by greedy NMS, by decreasing score (ties: earlier box first).

    A box is dropped when its IoU with a kept, higher-ranked box is > iou_threshold. Boxes are
    compared in float32, as torchvision's nms does, so that the same boxes are kept.
    """
    n = boxes.shape[0]
    if n == 0:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    order = torch.argsort(scores, descending=True, stable=True)
    b = boxes[order].float()
    removed = np.zeros(n, dtype=bool)
    keep = []
    # IoU rows are computed a block at a time against all boxes: memory O(block * n)
    for s in range(0, n, block):
        e = min(s + block, n)
        over = (box_iou(b[s:e], b) > iou_threshold).cpu().numpy()  # (e - s, n)
        for i in range(s, e):
            if removed[i]:
                continue
            keep.append(i)
            removed |= over[i - s]
    return order[torch.tensor(keep, dtype=torch.long, device=boxes.device)]
