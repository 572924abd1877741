"""Heatmap heads: a 1x1 convolution from features to one heatmap per joint (HRNet's final layer).

The DAG uses two: the multi-joint head on the backbone features (every person's joints in the
crop, loss l_m) and the target-joint head on the ADAM-enhanced features (the target's joints, l_t).
"""

from __future__ import annotations

import torch
import torch.nn as nn


class HeatmapHead(nn.Module):
    """``forward(x: float[B, C, h, w]) -> float[B, K, h, w]``."""

    def __init__(self, in_channels: int, num_joints: int, kernel_size: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, num_joints, kernel_size, padding=kernel_size // 2)
        # Small weights: heatmaps start near zero, the value of most target pixels.
        nn.init.normal_(self.conv.weight, std=0.001)
        nn.init.zeros_(self.conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)
