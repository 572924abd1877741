"""``yolo_refiner``: a base model's poses corrected with its own features, per joint, per person, per pair.

In the manner of OPEC-Net, which corrects the poses of a pretrained base estimator with a GCN fed by that
estimator's feature maps. The base here is YOLO11n-pose: its initial poses are its keypoints (x, y,
confidence), and its neck maps (P3, P4, P5, strides 8 to 32) are read at and around the joints.

1. Local step (OPEC-Net's integral regression, on a small window): P3 is read on a (2r+1)^2 grid around
   each joint; a per-joint score of every grid point, soft-maxed, gives the expected offset within the
   window. YOLO regresses all keypoints from the person's centre anchor; the maps at the joint itself hold
   evidence that regression never used. Scores start at zero: the window's centre, no move.
2. FGMH-GCN stages (:class:`posecore.models.gcn.FGMHGCN`'s progressive multi-hop graph regressors) in the
   person's crop frame (the top-down estimator's 4:3 region, ``padding`` x the box). Each node carries its
   joint's coordinates, the base confidence, what the local step found (its offset and how peaked its
   window was) and, with ``feat_dim`` > 0, the three maps read at the joint, projected. The features are
   read once, at the base pose: reading YOLO's coarse maps again at joints moved by a few pixels says
   little new, and it lets training cache them per joint.
3. CoupleGraph (:class:`posecore.models.couplegraph.CoupleGraph`) on the pairs given (people whose boxes
   overlap), fed the FGMH-GCN poses and the same node features.

Every output layer starts at zero, so an untrained refiner returns its input poses.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn as nn

from ..config import from_dict
from ..skeleton import get_skeleton
from ..yolo_features import local_grid
from .couplegraph import CoupleGraph, CoupleGraphConfig, assign_pairs
from .gcn import FGMHGCN, GCNConfig
from .registry import register_model


def person_frame(boxes: torch.Tensor, aspect: float = 0.75, padding: float = 1.25) -> tuple[torch.Tensor, torch.Tensor]:
    """Centre float[N, 2] and size float[N, 2] (w, h) of each box's crop region: the box grown to the
    aspect ratio w/h = ``aspect`` and enlarged ``padding`` times (as ``estimators.crops.box_to_center_scale``)."""
    center = (boxes[:, :2] + boxes[:, 2:]) / 2
    w = (boxes[:, 2] - boxes[:, 0]).clamp_min(1.0)
    h = (boxes[:, 3] - boxes[:, 1]).clamp_min(1.0)
    wide = w > aspect * h
    size = torch.stack((torch.where(wide, w, h * aspect), torch.where(wide, w / aspect, h)), -1)
    return center, size * padding


class LocalStep(nn.Module):
    """``forward(grid [N, K, G, C], step [N]) -> (offset [N, K, 2] image pixels, peak [N, K])``: soft-argmax
    of per-joint scores over the grid points; ``peak`` is the largest grid probability (how sure)."""

    def __init__(self, num_joints: int, channels: int, radius: int, hidden: int):
        super().__init__()
        self.register_buffer("offsets", local_grid(radius), persistent=False)
        g = len(self.offsets)
        self.register_buffer("grid_mean", torch.zeros(channels))
        self.register_buffer("grid_std", torch.ones(channels))
        self.embed = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU())
        self.score = nn.Parameter(torch.zeros(num_joints, hidden))  # zero: uniform weights, offset 0
        self.prior = nn.Parameter(torch.zeros(num_joints, g))

    def forward(self, grid: torch.Tensor, step: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.embed((grid.float() - self.grid_mean) / self.grid_std)  # [N, K, G, H]
        logits = (h * self.score[None, :, None]).sum(-1) + self.prior[None]
        p = logits.softmax(-1)
        return (p @ self.offsets) * step[:, None, None], p.amax(-1)


class YoloRefinerNet(nn.Module):
    """``forward(keypoints, boxes, features, grid, step, pairs) -> dict``.

    keypoints float[N, K, 3] (x, y, confidence) in image pixels; boxes float[N, 4] x1 y1 x2 y2;
    features float[N, K, C] the base's maps read at the joints (C = sum of ``in_channels``; may be None
    when ``feat_dim`` is 0);
    grid float[N, K, G, in_channels[0]] the finest map on the local grid around each joint
    (:meth:`posecore.yolo_features.YoloFeatures.sample_grid`) and step float[N] its spacing in image pixels;
    pairs int64[P, 2] indices of overlapping people (P may be 0).
    Returns ``local``: float[N, K, 2] after the local step, ``stages``: [float[N, K, 2]] after each FGMH-GCN
    stage (the last is the per-person result), all image pixels, and ``couple``: float[P, 2, K, 2] or None.
    """

    def __init__(self, skeleton: str, in_channels: Sequence[int], radius: int, grid_step: float, local_hidden: int,
                 feat_dim: int, feat_dropout: float, gcn: GCNConfig, couple: CoupleGraphConfig | None,
                 aspect: float, padding: float):
        super().__init__()
        sk = get_skeleton(skeleton)
        self.skeleton, self.num_joints = sk.name, sk.num_joints
        self.in_channels = tuple(int(c) for c in in_channels)
        self.radius, self.grid_step = int(radius), float(grid_step)
        self.aspect, self.padding = float(aspect), float(padding)
        total = sum(self.in_channels)
        self.local = LocalStep(sk.num_joints, self.in_channels[0], radius, local_hidden)
        # Standardisation of the base's features, set from the training data before training.
        self.register_buffer("feat_mean", torch.zeros(total))
        self.register_buffer("feat_std", torch.ones(total))
        self.feat_dim = int(feat_dim)
        self.proj = None
        if self.feat_dim:
            self.proj = nn.Sequential(nn.Dropout(feat_dropout), nn.Linear(total, self.feat_dim), nn.ReLU())
        node = 3 + self.feat_dim  # local offset (2, crop units), local peak, projected features
        self.fgmh = FGMHGCN(sk.adjacency, node, gcn)
        self.couple = None if couple is None else CoupleGraph(sk.adjacency, node, couple)

    def set_feature_stats(self, mean: torch.Tensor, std: torch.Tensor, grid_mean: torch.Tensor,
                          grid_std: torch.Tensor) -> None:
        self.feat_mean.copy_(mean)
        self.feat_std.copy_(std.clamp_min(1e-3))
        self.local.grid_mean.copy_(grid_mean)
        self.local.grid_std.copy_(grid_std.clamp_min(1e-3))

    def forward(self, keypoints: torch.Tensor, boxes: torch.Tensor, features: torch.Tensor | None, grid: torch.Tensor,
                step: torch.Tensor, pairs: torch.Tensor | None = None) -> dict:
        n, k, _ = keypoints.shape
        want = (n, self.num_joints, len(self.feat_mean))
        if k != self.num_joints or grid.shape[:2] != (n, k) or (self.proj is not None and (
                features is None or tuple(features.shape) != want)):
            got = None if features is None else tuple(features.shape)
            raise ValueError(f"expected keypoints [N, {self.num_joints}, 3], grid [N, {self.num_joints}, G, C] and "
                             f"features {list(want)}, got {tuple(keypoints.shape)}, {tuple(grid.shape)}, {got}")
        offset, peak = self.local(grid, step.float())
        xy = keypoints[..., :2].float() + offset
        center, size = person_frame(boxes.float(), self.aspect, self.padding)
        half = size[:, None] / 2
        parts = [offset / half, peak.unsqueeze(-1)]
        if self.proj is not None:
            parts.append(self.proj((features.float() - self.feat_mean) / self.feat_std))
        node = torch.cat(parts, -1)
        uv = (xy - center[:, None]) / half  # the crop's grid_sample coordinates
        scores = keypoints[..., 2].float()
        stages = []
        for stage in self.fgmh.stages:  # FGMHGCN's progressive stages, fed the features read at the base pose
            inputs = [uv, scores.unsqueeze(-1)] if self.fgmh.cfg.score_input else [uv]
            uv = uv + stage(torch.cat(inputs + [node], -1))
            stages.append(uv * half + center[:, None])
        couple = None
        if self.couple is not None and pairs is not None and len(pairs):
            kp = torch.cat((stages[-1], scores.unsqueeze(-1)), -1)
            couple = self.couple(kp[pairs], boxes.float()[pairs], node[pairs])
        return {"local": xy, "stages": stages, "couple": couple}

    @staticmethod
    def assemble(out: dict, pairs: np.ndarray, ious: np.ndarray) -> torch.Tensor:
        """float[N, K, 2]: each person's final joints: the CoupleGraph result of its highest-IoU pair, else
        the last FGMH-GCN stage (the runtime's pairing rule, :func:`assign_pairs`)."""
        final = out["stages"][-1]
        if out["couple"] is None or len(pairs) == 0:
            return final
        best, slot = assign_pairs(pairs, ious, len(final))
        paired = np.flatnonzero(best >= 0)
        final = final.clone()
        final[torch.from_numpy(paired)] = out["couple"][torch.from_numpy(best[paired]), torch.from_numpy(slot[paired])]
        return final


@register_model
def yolo_refiner(skeleton: str = "coco17", in_channels: Sequence[int] = (64, 128, 256), radius: int = 2,
                 grid_step: float = 4.0, local_hidden: int = 16, feat_dim: int = 0, feat_dropout: float = 0.0,
                 gcn: dict | None = None, couple: dict | None = None, aspect: float = 0.75,
                 padding: float = 1.25) -> YoloRefinerNet:
    """Local step, FGMH-GCN and (unless ``couple`` is None) CoupleGraph on YOLO neck features."""
    gcn_cfg = from_dict(GCNConfig, {"hidden": 64, "stages": 2, "blocks": 1, **(gcn or {})}, "model.gcn")
    couple_cfg = None if couple is None else from_dict(CoupleGraphConfig, couple, "model.couple")
    if feat_dim < 0 or radius < 1 or grid_step <= 0 or local_hidden < 1:
        raise ValueError("feat_dim >= 0, radius >= 1, grid_step > 0 and local_hidden >= 1 are required")
    return YoloRefinerNet(skeleton, in_channels, radius, grid_step, local_hidden, feat_dim, feat_dropout, gcn_cfg,
                          couple_cfg, aspect, padding)
