"""Box operations (x1, y1, x2, y2) in pure PyTorch, matching torchvision.ops."""

import torch
from torch import Tensor


def box_area(boxes: Tensor) -> Tensor:
    """Area of boxes float[N, 4] -> float[N]."""
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def box_iou(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    """Pairwise IoU of float[N, 4] and float[M, 4] -> float[N, M]."""
    area1 = box_area(boxes1)
    area2 = box_area(boxes2)
    lt = torch.max(boxes1[:, None, :2], boxes2[None, :, :2])
    rb = torch.min(boxes1[:, None, 2:], boxes2[None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    return inter / (area1[:, None] + area2[None, :] - inter)


def nms(boxes: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
    """Greedy NMS: indices int64[K] of kept boxes, sorted by decreasing score.

    A box is dropped when its IoU with a higher-scoring kept box is strictly greater than
    ``iou_threshold``, as in torchvision.
    """
    if boxes.numel() == 0:
        return torch.empty((0,), dtype=torch.int64, device=boxes.device)
    order = torch.argsort(scores, descending=True, stable=True)
    # One IoU matrix, then a greedy sweep over a boolean matrix on the CPU: O(N^2) memory,
    # which is fine for the few thousand candidates a detector passes to NMS.
    over = (box_iou(boxes[order], boxes[order]) > iou_threshold).cpu()
    n = order.numel()
    suppressed = torch.zeros(n, dtype=torch.bool)
    keep = []
    for i in range(n):
        if suppressed[i]:
            continue
        keep.append(i)
        suppressed |= over[i]
    return order[torch.tensor(keep, dtype=torch.int64, device=order.device)]


def batched_nms(boxes: Tensor, scores: Tensor, idxs: Tensor, iou_threshold: float) -> Tensor:
    """NMS done independently per category ``idxs``; boxes of different categories never suppress."""
    if boxes.numel() == 0:
        return torch.empty((0,), dtype=torch.int64, device=boxes.device)
    # Shift each category into its own region of the plane so that they cannot overlap.
    offsets = idxs.to(boxes) * (boxes.max() - boxes.min() + 1)
    return nms(boxes + offsets[:, None], scores, iou_threshold)
