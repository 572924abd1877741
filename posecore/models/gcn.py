"""Multi-hop modulated graph convolution and the Feature-Guided Multi-Hop GCN (FGMH-GCN) of DAG.

Eq. (3) of the DAG paper, for node features M (D x N):

    M' = sigma( sum_{k=1..K} w_k * (W0 M + W1 M A_k) )

with per-hop modulation matrices w_k (D x N, element-wise), a self weight W0 and a neighbour weight
W1 shared by the hops, and A_k the symmetrically normalised k-hop adjacency without self-loops.
Following MM-GCN (Lee & Kim, BMVC 2022), which the paper builds on, A_k connects the joints whose
shortest path along the skeleton is exactly k bones long ("distance" mode). The literal k-th power
of the normalised one-hop matrix is available as "power" mode.

Feature guidance: before each refinement stage every joint's feature vector is read with
``grid_sample`` at its current location from the feature map, so the graph sees image evidence
the initial pose may have missed. Stages are progressive as in OPEC-Net: each predicts an offset
from the previous pose, and every stage's pose is returned for the coordinate loss l_p.
Coordinates inside the GCN are grid_sample's normalised [-1, 1] (see :mod:`posecore.codecs`).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..config import from_dict, option
from ..skeleton import get_skeleton
from .registry import register_model
from .visibility import VisibilityConfig, VisibilityReasoning


# --------------------------------------------------------------------------- graph matrices
def hop_distances(adjacency: np.ndarray) -> np.ndarray:
    """int64[N, N] shortest-path lengths along the edges of a 0/1 adjacency; -1 where unreachable."""
    a = np.asarray(adjacency) > 0
    n = len(a)
    dist = np.full((n, n), -1, np.int64)
    for s in range(n):  # breadth-first search from every node; graphs here have tens of nodes
        dist[s, s] = 0
        queue = deque([s])
        while queue:
            u = queue.popleft()
            for v in np.flatnonzero(a[u]):
                if dist[s, v] < 0:
                    dist[s, v] = dist[s, u] + 1
                    queue.append(v)
    return dist


def hop_matrices(adjacency: np.ndarray, hops: int) -> np.ndarray:
    """float32[hops, N, N]: entry [k-1, i, j] is 1 when joints i and j are exactly k edges apart."""
    dist = hop_distances(adjacency)
    return np.stack([(dist == k).astype(np.float32) for k in range(1, hops + 1)])


def normalize_adjacency(a: np.ndarray) -> np.ndarray:
    """D^-1/2 A D^-1/2 for a symmetric A without self-loops; isolated nodes keep zero rows."""
    a = np.asarray(a, np.float64)
    deg = a.sum(-1)
    inv = np.where(deg > 0, 1.0 / np.sqrt(np.maximum(deg, 1e-12)), 0.0)
    return (inv[..., :, None] * a * inv[..., None, :]).astype(np.float32)


def multi_hop_adjacency(adjacency: np.ndarray, hops: int,
                        mode: Literal["distance", "power"] = "distance") -> np.ndarray:
    """float32[hops, N, N]: the normalised A_k of eq. (3) for k = 1..hops."""
    if hops < 1:
        raise ValueError(f"hops must be >= 1, got {hops}")
    if mode == "distance":
        return normalize_adjacency(hop_matrices(adjacency, hops))
    if mode == "power":
        a1 = normalize_adjacency((np.asarray(adjacency) > 0).astype(np.float32) * (1 - np.eye(len(adjacency))))
        out, p = [], np.eye(len(a1), dtype=np.float64)
        for _ in range(hops):
            p = p @ a1
            out.append(p.astype(np.float32))
        return np.stack(out)
    raise ValueError(f"hop mode must be 'distance' or 'power', got {mode!r}")


# --------------------------------------------------------------------------- layers
class MultiHopGraphConv(nn.Module):
    """``forward(x: float[B, N, Din]) -> float[B, N, Dout]``: eq. (3) before the non-linearity.

    ``node_groups`` > 1 ties the modulation of node i to nodes i + N/g, i + 2N/g, ... (CoupleGraph
    uses 2, so that swapping its two people permutes the output the same way).
    """

    def __init__(self, in_dim: int, out_dim: int, adjacency: np.ndarray, hops: int = 3,
                 mode: Literal["distance", "power"] = "distance", node_groups: int = 1, bias: bool = True) -> None:
        super().__init__()
        adj = multi_hop_adjacency(adjacency, hops, mode)
        n = adj.shape[-1]
        if n % node_groups:
            raise ValueError(f"{n} nodes do not split into {node_groups} groups")
        self.register_buffer("adj", torch.from_numpy(adj), persistent=False)
        self.weight = nn.Parameter(torch.empty(2, in_dim, out_dim))  # W0 (self), W1 (neighbours)
        nn.init.xavier_uniform_(self.weight[0])
        nn.init.xavier_uniform_(self.weight[1])
        # Modulation starts at 1/hops: the sum over hops begins as a plain average.
        self.modulation = nn.Parameter(torch.full((hops, n // node_groups, out_dim), 1.0 / hops))
        self.node_groups = node_groups
        self.bias = nn.Parameter(torch.zeros(out_dim)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h0 = x @ self.weight[0]  # W0 M
        h1 = x @ self.weight[1]  # W1 M
        neigh = torch.einsum("knm,bmd->bknd", self.adj.to(h1.dtype), h1)  # W1 M A_k, per hop
        mod = self.modulation.repeat(1, self.node_groups, 1)  # w_k: [hops, N, Dout]
        out = (mod * (h0.unsqueeze(1) + neigh)).sum(1)
        return out if self.bias is None else out + self.bias


class GraphConvBlock(nn.Module):
    """Multi-hop graph convolution, BatchNorm over channels, ReLU (the sigma of eq. 3)."""

    def __init__(self, in_dim: int, out_dim: int, adjacency: np.ndarray, hops: int, mode: str,
                 node_groups: int = 1, dropout: float = 0.0) -> None:
        super().__init__()
        self.gconv = MultiHopGraphConv(in_dim, out_dim, adjacency, hops, mode, node_groups)
        self.bn = nn.BatchNorm1d(out_dim)
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.gconv(x)
        x = self.bn(x.transpose(1, 2)).transpose(1, 2)
        return self.drop(F.relu(x))


class ResGraphBlock(nn.Module):
    """Two graph-conv blocks with a residual connection."""

    def __init__(self, dim: int, adjacency: np.ndarray, hops: int, mode: str, node_groups: int = 1,
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.block1 = GraphConvBlock(dim, dim, adjacency, hops, mode, node_groups, dropout)
        self.block2 = GraphConvBlock(dim, dim, adjacency, hops, mode, node_groups, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block2(self.block1(x))


class GraphRegressor(nn.Module):
    """Input block, residual blocks and an output graph conv to a 2-D offset per node.

    ``forward(x: float[B, N, Din]) -> float[B, N, 2]``; the output layer starts at zero so that a
    fresh regressor leaves the pose unchanged.
    """

    def __init__(self, in_dim: int, adjacency: np.ndarray, hidden: int, blocks: int, hops: int, mode: str,
                 node_groups: int = 1, dropout: float = 0.0) -> None:
        super().__init__()
        self.input = GraphConvBlock(in_dim, hidden, adjacency, hops, mode, node_groups, dropout)
        self.blocks = nn.Sequential(*(ResGraphBlock(hidden, adjacency, hops, mode, node_groups, dropout)
                                      for _ in range(blocks)))
        self.output = MultiHopGraphConv(hidden, 2, adjacency, hops, mode, node_groups)
        nn.init.zeros_(self.output.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output(self.blocks(self.input(x)))


# --------------------------------------------------------------------------- FGMH-GCN
@dataclass
class GCNConfig:
    hidden: int = option(128, ge=8, help="node feature width")
    stages: int = option(3, ge=1, le=8, help="progressive refinement stages, each with its own weights")
    blocks: int = option(2, ge=0, le=8, help="residual graph blocks per stage")
    hops: int = option(3, ge=1, le=8, help="K of eq. (3)")
    hop_mode: Literal["distance", "power"] = option("distance", help="A_k: exact k-hop neighbours, or A^k")
    dropout: float = option(0.0, ge=0.0, lt=1.0)
    score_input: bool = option(True, help="feed each joint's heatmap confidence to its node")


def sample_joint_features(feature_map: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
    """float[B, K, C]: bilinear features at normalised joint positions coords float[B, K, 2] in [-1, 1]."""
    grid = coords.to(feature_map.dtype).unsqueeze(2)  # [B, K, 1, 2]
    out = F.grid_sample(feature_map, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out.squeeze(-1).transpose(1, 2)


class FGMHGCN(nn.Module):
    """Feature-guided multi-hop GCN refining a pose.

    ``forward(coords, feature_map=None, scores=None, visible=None) -> dict``:
    coords float[B, K, 2] normalised [-1, 1]; feature_map float[B, C, h, w] covering the same crop
    (C = ``feat_channels``; None only when ``feat_channels`` is 0); scores float[B, K] joint
    confidences (used when ``score_input``); visible float/bool[B, K] ground-truth visibility for
    the optional visibility reasoning (teacher forcing; predicted when None).
    Returns ``{"coords": [float[B, K, 2]] * stages}`` (normalised, the last is final) and, with
    visibility reasoning, ``"visibility_logits"`` float[B, K] of the last stage.
    """

    def __init__(self, adjacency: np.ndarray, feat_channels: int = 0, cfg: GCNConfig | None = None,
                 visibility: VisibilityConfig | None = None) -> None:
        super().__init__()
        cfg = cfg or GCNConfig()
        visibility = visibility or VisibilityConfig()
        self.cfg = cfg
        self.num_joints = len(adjacency)
        self.feat_channels = feat_channels
        self.visibility = None
        node_feat = feat_channels
        if visibility.enabled:
            if feat_channels <= 0:
                raise ValueError("visibility reasoning needs joint features (feat_channels > 0)")
            self.visibility = VisibilityReasoning(feat_channels, self.num_joints, visibility)
            node_feat = visibility.dim
        in_dim = 2 + int(cfg.score_input) + node_feat
        self.stages = nn.ModuleList(
            GraphRegressor(in_dim, adjacency, cfg.hidden, cfg.blocks, cfg.hops, cfg.hop_mode, 1, cfg.dropout)
            for _ in range(cfg.stages)
        )

    def forward(self, coords: torch.Tensor, feature_map: torch.Tensor | None = None,
                scores: torch.Tensor | None = None, visible: torch.Tensor | None = None) -> dict:
        if self.feat_channels and feature_map is None:
            raise ValueError(f"this GCN reads {self.feat_channels} feature channels; pass feature_map")
        if feature_map is not None and feature_map.shape[1] != self.feat_channels:
            raise ValueError(f"feature_map has {feature_map.shape[1]} channels, expected {self.feat_channels}")
        b, k, _ = coords.shape
        if self.cfg.score_input and scores is None:
            scores = coords.new_ones(b, k)
        outputs, logits = [], None
        for stage in self.stages:
            parts = [coords]
            if self.cfg.score_input:
                parts.append(scores.to(coords.dtype).unsqueeze(-1))
            if self.feat_channels:
                feats = sample_joint_features(feature_map, coords).to(coords.dtype)
                if self.visibility is not None:
                    feats, logits = self.visibility(feats, visible)
                parts.append(feats)
            coords = coords + stage(torch.cat(parts, dim=-1))
            outputs.append(coords)
        out = {"coords": outputs}
        if logits is not None:
            out["visibility_logits"] = logits
        return out


@register_model
def fgmh_gcn(skeleton: str = "coco17", feat_channels: int = 0, gcn: dict | None = None,
             visibility: dict | None = None) -> FGMHGCN:
    """A stand-alone FGMH-GCN on the skeleton's bone graph (coordinates normalised to the crop)."""
    return FGMHGCN(get_skeleton(skeleton).adjacency, feat_channels,
                   from_dict(GCNConfig, gcn, "model.gcn"), from_dict(VisibilityConfig, visibility, "model.visibility"))
