"""CoupleGraph (OPEC-Net, Qiu et al. ECCV 2020, Sec. 3.2): refine two overlapping people together.

The graph has 2N nodes: each person's skeleton edges (E_s) plus an edge between the corresponding
joints of the two people (E_c = {v_i v_{i+N}}). Each node carries its joint's coordinates,
normalised to the pair's union box (centre at 0, the longer side spanning [-1, 1]), its confidence
and, when available, an image feature read at the joint. Multi-hop modulated graph convolutions
(see :mod:`posecore.models.gcn`) predict an offset per joint; both refined poses come out.

The modulation of node i is shared with node i + N, so the network is equivariant to swapping the
two people: swapping the inputs swaps the outputs.

Pairs per frame (:func:`select_pairs`): every two people whose boxes overlap with IoU >= threshold.
A person in several pairs is refined in each, and keeps the result of the pair with the largest IoU
(ties: the pair listed first, i.e. the lower partner index) -- :func:`assign_pairs`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn as nn

from ..boxes import box_iou  # noqa: F401  (part of this module's API)
from ..config import from_dict, option
from ..skeleton import get_skeleton
from .gcn import GraphRegressor
from .registry import register_model


def couple_adjacency(adjacency: np.ndarray) -> np.ndarray:
    """float32[2N, 2N]: two copies of the skeleton plus edges between corresponding joints."""
    a = (np.asarray(adjacency) > 0).astype(np.float32)
    n = len(a)
    out = np.zeros((2 * n, 2 * n), np.float32)
    out[:n, :n] = a
    out[n:, n:] = a
    idx = np.arange(n)
    out[idx, idx + n] = out[idx + n, idx] = 1.0
    return out


def select_pairs(boxes: np.ndarray, iou_threshold: float = 0.3, max_pairs: int | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (i < j) of overlapping people: int64[M, 2] and their IoU float32[M], by IoU descending
    (ties by index); at most ``max_pairs`` of them."""
    iou = box_iou(boxes, boxes)
    i, j = np.triu_indices(len(iou), k=1)
    keep = iou[i, j] >= iou_threshold
    i, j = i[keep], j[keep]
    ious = iou[i, j]
    order = np.lexsort((j, i, -ious))
    if max_pairs is not None:
        order = order[:max_pairs]
    return np.stack((i[order], j[order]), -1).astype(np.int64).reshape(-1, 2), ious[order].astype(np.float32)


def assign_pairs(pairs: np.ndarray, ious: np.ndarray, num_people: int) -> tuple[np.ndarray, np.ndarray]:
    """For each person, the pair whose result it keeps: (pair index int64[N], -1 when unpaired;
    slot int64[N], 0 or 1 = its position in that pair). The pair of largest IoU wins; ties go to the
    pair listed first."""
    best = np.full(num_people, -1, np.int64)
    slot = np.zeros(num_people, np.int64)
    best_iou = np.full(num_people, -np.inf)
    for p, (pair, iou) in enumerate(zip(np.asarray(pairs).reshape(-1, 2), ious)):
        for s, person in enumerate(pair):
            if iou > best_iou[person]:
                best_iou[person], best[person], slot[person] = iou, p, s
    return best, slot


@dataclass
class CoupleGraphConfig:
    hidden: int = option(128, ge=8)
    blocks: int = option(2, ge=0, le=8)
    hops: int = option(2, ge=1, le=8)
    hop_mode: Literal["distance", "power"] = option("distance")
    dropout: float = option(0.0, ge=0.0, lt=1.0)


class CoupleGraph(nn.Module):
    """``forward(keypoints, boxes, features=None) -> float[P, 2, K, 2]`` refined image coordinates.

    keypoints: float[P, 2, K, 3] (x, y, confidence) in image pixels for P pairs of two people;
    boxes: float[P, 2, 4] x1 y1 x2 y2; features: float[P, 2, K, C] per-joint image features
    (C = ``feat_channels``), or None, read as zeros, when the model was built with features but
    none are available.
    """

    def __init__(self, adjacency: np.ndarray, feat_channels: int = 0, cfg: CoupleGraphConfig | None = None) -> None:
        super().__init__()
        cfg = cfg or CoupleGraphConfig()
        self.num_joints = len(adjacency)
        self.feat_channels = feat_channels
        self.regressor = GraphRegressor(3 + feat_channels, couple_adjacency(adjacency), cfg.hidden, cfg.blocks,
                                        cfg.hops, cfg.hop_mode, node_groups=2, dropout=cfg.dropout)

    @staticmethod
    def union_frame(boxes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Centre float[P, 2] and half-size float[P, 1] of each pair's union box."""
        lo = boxes[..., :2].amin(dim=1)
        hi = boxes[..., 2:].amax(dim=1)
        center = (lo + hi) / 2
        half = ((hi - lo).amax(dim=-1, keepdim=True) / 2).clamp_min(1.0)
        return center, half

    def forward(self, keypoints: torch.Tensor, boxes: torch.Tensor,
                features: torch.Tensor | None = None) -> torch.Tensor:
        p, two, k, _ = keypoints.shape
        if two != 2 or k != self.num_joints:
            raise ValueError(f"keypoints: expected [P, 2, {self.num_joints}, 3], got {tuple(keypoints.shape)}")
        center, half = self.union_frame(boxes)
        uv = (keypoints[..., :2] - center[:, None, None]) / half[:, None, None]
        parts = [uv, keypoints[..., 2:3]]
        if self.feat_channels:
            if features is None:
                features = keypoints.new_zeros(p, 2, k, self.feat_channels)
            parts.append(features.to(keypoints.dtype))
        x = torch.cat(parts, dim=-1).reshape(p, 2 * k, -1)  # nodes 0..K-1: first person, K..2K-1: second
        uv = uv + self.regressor(x).reshape(p, 2, k, 2)
        return uv * half[:, None, None] + center[:, None, None]


@register_model
def couplegraph(skeleton: str = "coco17", feat_channels: int = 0, hidden: int = 128, blocks: int = 2, hops: int = 2,
                hop_mode: str = "distance", dropout: float = 0.0) -> CoupleGraph:
    """CoupleGraph for pairs of people on the skeleton's bone graph."""
    cfg = from_dict(CoupleGraphConfig, {"hidden": hidden, "blocks": blocks, "hops": hops, "hop_mode": hop_mode,
                                        "dropout": dropout}, "model")
    model = CoupleGraph(get_skeleton(skeleton).adjacency, feat_channels, cfg)
    model.skeleton = get_skeleton(skeleton).name
    return model
