"""Visibility-aware keypoint reasoning (Sun et al., "Rethinking Visibility in Human Pose Estimation").

VisNet, a small MLP, predicts a visibility logit per joint from its feature; its input is detached
so the visibility loss does not train the feature extractor (Sec. 5.1). Occluded joints' features
are soft-masked by 0.01, visible ones kept (Sec. 4.2), and pre-norm transformer blocks then reason
over the joint tokens (Sec. 4.3), so occluded joints are inferred mostly from visible ones.

Note on eq. (3): the printed case split gives the mask 1 below sigmoid 0.5 and 0.01 above, while the
text says sigmoid near 0 means invisible and that invisible joints are masked out. We follow the
text: mask = 0.01 where sigmoid(logit) < threshold (occluded), 1 otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from ..config import option


@dataclass
class VisibilityConfig:
    enabled: bool = option(False, help="VisNet + masked transformer reasoning over the joint features")
    dim: int = option(64, ge=8, help="token width of the transformer")
    depth: int = option(2, ge=1, le=12, help="transformer blocks")
    heads: int = option(4, ge=1)
    mlp_ratio: float = option(2.0, gt=0.0)
    visnet_hidden: int = option(64, ge=4, help="hidden width of the VisNet MLP")
    occluded_scale: float = option(0.01, ge=0.0, le=1.0, help="mask value of occluded joints")
    threshold: float = option(0.5, gt=0.0, lt=1.0, help="sigmoid(logit) below this counts as occluded")

    def __post_init__(self) -> None:
        if self.dim % self.heads:
            raise ValueError(f"visibility.dim ({self.dim}) must be divisible by visibility.heads ({self.heads})")


class VisNet(nn.Module):
    """``forward(x: float[B, K, D]) -> float[B, K]`` visibility logits (sigmoid near 1 = visible)."""

    def __init__(self, in_dim: int, hidden: int = 64) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(x).squeeze(-1)


class TransformerBlock(nn.Module):
    """Pre-norm block: x + MSA(LN(x)), then x + MLP(LN(x))."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 2.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.norm1(x)
        x = x + self.attn(y, y, y, need_weights=False)[0]
        return x + self.mlp(self.norm2(x))


class VisibilityReasoning(nn.Module):
    """``forward(x: float[B, K, D], visible=None) -> (float[B, K, dim], logits float[B, K])``.

    ``visible`` (bool or 0/1 float[B, K]) replaces the predicted visibility in the mask when given,
    e.g. ground truth while training; the logits are returned either way for the visibility loss.
    """

    def __init__(self, in_dim: int, num_joints: int, cfg: VisibilityConfig | None = None) -> None:
        super().__init__()
        cfg = cfg or VisibilityConfig(enabled=True)
        self.cfg = cfg
        self.visnet = VisNet(in_dim, cfg.visnet_hidden)
        self.proj = nn.Linear(in_dim, cfg.dim)
        # Joint identity: attention is permutation-invariant, so each token learns which joint it is.
        self.joint_embed = nn.Parameter(torch.zeros(1, num_joints, cfg.dim))
        nn.init.trunc_normal_(self.joint_embed, std=0.02)
        self.blocks = nn.Sequential(*(TransformerBlock(cfg.dim, cfg.heads, cfg.mlp_ratio) for _ in range(cfg.depth)))
        self.norm = nn.LayerNorm(cfg.dim)

    def mask(self, logits: torch.Tensor, visible: torch.Tensor | None = None) -> torch.Tensor:
        """float[B, K]: 1 for visible joints, ``occluded_scale`` for occluded ones."""
        vis = (torch.sigmoid(logits) >= self.cfg.threshold) if visible is None else (visible > 0)
        return torch.where(vis, 1.0, self.cfg.occluded_scale).to(logits.dtype)

    def forward(self, x: torch.Tensor, visible: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.visnet(x.detach())
        masked = x * self.mask(logits, visible).unsqueeze(-1).to(x.dtype)
        tokens = self.proj(masked) + self.joint_embed
        return self.norm(self.blocks(tokens)), logits
