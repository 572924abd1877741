"""ADAM, the Adaptive Discriminative Attention Module of DAG (Xu et al., ICASSP 2024, Sec. 2.3).

Channel attention (eq. 1): the instance feature F_i (C x 1 x 1) is read from the multi-joint feature
map F_m at the centre of the target's body, passed through a linear layer L, expanded (Psi) to
C x H x W and multiplied with F_m:  C = F_m * Psi(L(F_i)).

Spatial attention (eq. 2): 1x1 convolutions (Phi) give Q, K, V (C x H x W), reshaped to C x N with
N = H x W; S = K^T Q is N x N and the output is V softmax(S)^T reshaped back to C x H x W.

The two results are concatenated and fused by a 1x1 convolution into the enhanced feature map
(Fig. 2: "C" then "Enhance Feature Maps").
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..config import option


@dataclass
class ADAMConfig:
    channel: bool = option(True, help="channel attention from the body-centre instance feature (eq. 1)")
    spatial: bool = option(True, help="spatial self-attention over the H x W positions (eq. 2)")


class ChannelAttention(nn.Module):
    """``forward(fm: float[B, C, H, W], centers: float[B, 2] | None) -> float[B, C, H, W]``.

    ``centers`` are grid_sample coordinates in [-1, 1] of the body centre; None means the crop
    centre, which is the box centre of a top-down crop.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.linear = nn.Linear(channels, channels)
        # Start close to identity gating (weights ~0, bias 1) so the module first passes F_m through.
        nn.init.normal_(self.linear.weight, std=0.01)
        nn.init.ones_(self.linear.bias)

    @staticmethod
    def instance_feature(fm: torch.Tensor, centers: torch.Tensor | None = None) -> torch.Tensor:
        """F_i: float[B, C], bilinearly read at the centre (the 4 middle pixels of an even-sized map)."""
        b = fm.shape[0]
        if centers is None:
            centers = fm.new_zeros(b, 2)
        grid = centers.to(fm.dtype).view(b, 1, 1, 2)
        return F.grid_sample(fm, grid, mode="bilinear", align_corners=False).view(b, -1)

    def forward(self, fm: torch.Tensor, centers: torch.Tensor | None = None) -> torch.Tensor:
        weights = self.linear(self.instance_feature(fm, centers))  # L(F_i): [B, C]
        return fm * weights[:, :, None, None]  # Psi (expand) then element-wise product


class SpatialAttention(nn.Module):
    """``forward(f: float[B, C, H, W]) -> float[B, C, H, W]``, eq. (2) of the paper."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.query = nn.Conv2d(channels, channels, 1)
        self.key = nn.Conv2d(channels, channels, 1)
        self.value = nn.Conv2d(channels, channels, 1)
        # The paper's S = K^T Q has no 1/sqrt(C) scaling; small Q/K weights keep the initial
        # softmax soft so the attention can learn instead of starting saturated.
        for conv in (self.query, self.key):
            nn.init.normal_(conv.weight, std=0.01)
            nn.init.zeros_(conv.bias)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        b, c, h, w = f.shape

        def tokens(conv: nn.Conv2d) -> torch.Tensor:  # C x N, stored as [B, 1, N, C]
            return conv(f).flatten(2).transpose(1, 2).contiguous()[:, None]

        q, k, v = tokens(self.query), tokens(self.key), tokens(self.value)
        # softmax(S) with S = K^T Q, rows indexed by K's position: this is attention with K as the
        # "query" tokens and Q as the "key" tokens; V softmax(S)^T is then its output transposed.
        # scaled_dot_product_attention computes it without materialising N x N; a head axis and
        # contiguous tokens let it take the fused kernel (about 8x faster on CPU than otherwise).
        out = F.scaled_dot_product_attention(k, q, v, scale=1.0)
        return out[:, 0].transpose(1, 2).reshape(b, c, h, w)


class ADAM(nn.Module):
    """``forward(fm: float[B, C, H, W], centers=None) -> float[B, C, H, W]`` enhanced features."""

    def __init__(self, channels: int, cfg: ADAMConfig | None = None) -> None:
        super().__init__()
        cfg = cfg or ADAMConfig()
        self.channel = ChannelAttention(channels) if cfg.channel else None
        self.spatial = SpatialAttention(channels) if cfg.spatial else None
        parts = int(cfg.channel) + int(cfg.spatial)
        self.fuse = nn.Sequential(
            nn.Conv2d(channels * parts, channels, 1, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
        ) if parts else nn.Identity()

    def forward(self, fm: torch.Tensor, centers: torch.Tensor | None = None) -> torch.Tensor:
        parts = []
        if self.channel is not None:
            parts.append(self.channel(fm, centers))
        if self.spatial is not None:
            parts.append(self.spatial(fm))
        if not parts:
            return fm
        return self.fuse(torch.cat(parts, dim=1))
