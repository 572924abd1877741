"""Training losses of the DAG estimator, the LJA structure loss and the visibility head.

total = w_m * lm + w_t * lt + lambda * lp + alpha(t) * ls + w_vis * lvis

* lm, lt  joints MSE with target weights (HRNet's ``JointsMSELoss``): lm on the heatmaps of every person in
          the crop, lt on the target's heatmaps (DAG, eq. 4).
* lp      masked L1 of the poses: the initial (integral) pose and each GCN / CoupleGraph stage with its own
          weight (OPEC-Net eq. 3, lambda_j = 0.3, 0.5, 1), on coordinates divided by the input size.
* ls      LJA's limb structure loss: MSE of structure heatmaps (a joint's heatmap plus its neighbours' on
          the two limb graphs), weighted by a constant / step / linear / exponential alpha(t).
* lvis    binary cross-entropy of the visibility logits against v = 2 (visibility paper, eq. 7), over the
          labelled joints only: v = 1 is occluded, v = 2 visible, and v = 0 (unlabelled, or outside the crop)
          takes no part.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from posecore.errors import ConfigError
from posecore.skeleton import Skeleton

from .config import LossConfig, StructureLossConfig

# LJA's two limb graphs, as chains of joint names.
LIMB_CHAINS = (
    ("left_wrist", "left_elbow", "left_shoulder", "right_shoulder", "right_elbow", "right_wrist"),
    ("left_ankle", "left_knee", "left_hip", "right_hip", "right_knee", "right_ankle"),
)


def joints_mse(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """0.5 x mean squared error of float[B, K, h, w] heatmaps, each joint scaled by weight float[B, K]."""
    err = (pred.float() - target.float()) ** 2
    if weight is not None:
        err = err * weight.float()[..., None, None]
    return 0.5 * err.mean()


def limb_graph(skeleton: Skeleton) -> tuple[np.ndarray, np.ndarray]:
    """(joints int64[L], adjacency float32[L, K]): each limb joint's row holds itself and its chain neighbours."""
    rows: dict[int, set[int]] = {}
    for chain in LIMB_CHAINS:
        try:
            idx = [skeleton.index(n) for n in chain]
        except ValueError:
            raise ConfigError(f"loss.structure: skeleton {skeleton.name} lacks the limb joints {chain}") from None
        for pos, j in enumerate(idx):
            nbrs = rows.setdefault(j, {j})
            if pos > 0:
                nbrs.add(idx[pos - 1])
            if pos + 1 < len(idx):
                nbrs.add(idx[pos + 1])
    joints = np.asarray(sorted(rows), np.int64)
    adj = np.zeros((len(joints), skeleton.num_joints), np.float32)
    for r, j in enumerate(joints):
        adj[r, sorted(rows[j])] = 1.0
    return joints, adj


def structure_heatmaps(heatmaps: torch.Tensor, weight: torch.Tensor, adjacency: torch.Tensor) -> torch.Tensor:
    """float[B, L, h, w]: per limb joint, the sum of its own and its neighbours' weighted heatmaps."""
    return torch.einsum("lk,bkhw->blhw", adjacency, heatmaps.float() * weight.float()[..., None, None])


def structure_alpha(cfg: StructureLossConfig, progress: float) -> float:
    """alpha at ``progress`` in [0, 1] of training.

    constant: w; step: 0 before ``start``, w from it on; linear: w * t;
    exponential: w * exp(-5 (1 - t)^2), the usual exponential ramp-up (slow start, full weight at the end).
    """
    if not cfg.enabled:
        return 0.0
    t = min(max(progress, 0.0), 1.0)
    if cfg.scheme == "constant":
        return cfg.weight
    if cfg.scheme == "step":
        return cfg.weight if t >= cfg.start else 0.0
    if cfg.scheme == "linear":
        return cfg.weight * t
    return cfg.weight * math.exp(-5.0 * (1.0 - t) ** 2)


def masked_l1(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, size: torch.Tensor) -> torch.Tensor:
    """Mean |pred - target| over labelled joints of float[B, K, 2] poses, in units of the input size."""
    err = ((pred.float() - target.float()).abs() / size).sum(-1) * mask.float()
    return err.sum() / (2.0 * mask.float().sum().clamp(min=1.0))


def visibility_loss(logits: torch.Tensor, flags: torch.Tensor) -> torch.Tensor:
    """Mean binary cross-entropy of float[B, K] visibility logits over the labelled joints of flags float[B, K].

    The visibility paper counts unlabelled joints (v = 0) as occluded (its footnote 1); we leave them out:
    a v = 0 joint may be outside the crop, hidden beyond guessing or just not clicked, so its label is
    unknown and either guess would teach VisNet something the image may not show.
    """
    labelled = (flags > 0).float()
    per_joint = F.binary_cross_entropy_with_logits(logits.float(), (flags == 2).float(), reduction="none")
    return (per_joint * labelled).sum() / labelled.sum().clamp(min=1.0)


@dataclass
class LossParts:
    total: torch.Tensor
    parts: dict[str, torch.Tensor]


class PoseLoss(nn.Module):
    """All the terms above from a model's output dict and a batch of targets.

    Batch keys: ``target_heatmaps`` float[B, K, h, w], ``target_weight`` float[B, K] (the codec's weights),
    ``multi_heatmaps`` float[B, K, h, w], ``joints`` float[B, K, 2] crop pixels, ``flags`` float[B, K] (v).
    Terms whose model output is absent (no GCN, no visibility head) are left out.
    """

    def __init__(self, cfg: LossConfig, skeleton: Skeleton, input_size: tuple[int, int]):
        super().__init__()
        self.cfg = cfg
        self.register_buffer("size", torch.tensor([float(input_size[0]), float(input_size[1])]), persistent=False)
        if cfg.structure.enabled:
            _, adj = limb_graph(skeleton)
            self.register_buffer("limb_adj", torch.from_numpy(adj), persistent=False)
        else:
            self.limb_adj = None

    def joint_weight(self, batch: dict) -> torch.Tensor:
        """float[B, K]: the codec's weight, with occluded (v = 1) joints scaled by ``occluded_weight``."""
        w = batch["target_weight"].float()
        occluded = batch["flags"] == 1
        return torch.where(occluded, w * self.cfg.occluded_weight, w)

    def forward(self, out: dict, batch: dict, progress: float = 1.0) -> LossParts:
        cfg = self.cfg
        w = self.joint_weight(batch)
        parts: dict[str, torch.Tensor] = {}
        total = out["heatmaps"].new_zeros((), dtype=torch.float32)
        if cfg.target_weight > 0:
            parts["lt"] = joints_mse(out["heatmaps"], batch["target_heatmaps"], w)
            total = total + cfg.target_weight * parts["lt"]
        if cfg.multi_weight > 0 and out.get("multi_heatmaps") is not None:
            parts["lm"] = joints_mse(out["multi_heatmaps"], batch["multi_heatmaps"])
            total = total + cfg.multi_weight * parts["lm"]
        if cfg.pose_weight > 0 and out.get("coords") is not None:
            parts["lp"] = self._pose_loss(out, batch, w)
            total = total + cfg.pose_weight * parts["lp"]
        alpha = structure_alpha(cfg.structure, progress)
        if self.limb_adj is not None:
            adj = self.limb_adj.to(w.dtype)
            pred_s = structure_heatmaps(out["heatmaps"], w, adj)
            gt_s = structure_heatmaps(batch["target_heatmaps"], w, adj)
            parts["ls"] = 0.5 * ((pred_s - gt_s) ** 2).mean()
            total = total + alpha * parts["ls"]
        if cfg.visibility_weight > 0 and out.get("visibility_logits") is not None:
            parts["lvis"] = visibility_loss(out["visibility_logits"], batch["flags"])
            total = total + cfg.visibility_weight * parts["lvis"]
        return LossParts(total, parts)

    def _pose_loss(self, out: dict, batch: dict, w: torch.Tensor) -> torch.Tensor:
        stages = out["coords"]
        if isinstance(stages, torch.Tensor):
            stages = [stages]
        weights = self.cfg.pose_stage_weights
        if len(weights) < len(stages):
            raise ConfigError(f"loss.pose_stage_weights: {len(weights)} weights for {len(stages)} GCN stages")
        weights = weights[len(weights) - len(stages):]  # the last weight goes with the last stage
        mask = w
        target = batch["joints"]
        loss = out["heatmaps"].new_zeros((), dtype=torch.float32)
        if out.get("coords_init") is not None and self.cfg.pose_init_weight > 0:
            loss = loss + self.cfg.pose_init_weight * masked_l1(out["coords_init"], target, mask, self.size)
        for lam, pose in zip(weights, stages):
            loss = loss + lam * masked_l1(pose, target, mask, self.size)
        return loss
