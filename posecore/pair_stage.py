"""The DAG path's pair stage: CoupleGraph on every overlapping pair of people, after the top-down DAG.

Pairs are chosen by box IoU (:func:`posecore.models.couplegraph.select_pairs`); a person in several pairs
keeps the result of its largest-IoU pair (:func:`~posecore.models.couplegraph.assign_pairs`). An
image-guided CoupleGraph (``feat_channels`` > 0) reads, for each joint, the DAG's feature map of that
person's own crop at the joint (:meth:`posecore.estimators.topdown.TopDownEstimator.estimate_features`).

Its weights come from a CoupleGraph checkpoint (``pose.pair_weights``) or from inside the DAG checkpoint,
under ``extra["pair_stage"]`` (:func:`pair_stage_extra`; ``python -m train fit`` of a ``couplegraph_dag_*``
config writes such a file). Weights that are missing, unreadable or do not fit the DAG (skeleton, joints,
feature channels) raise :class:`~posecore.errors.WeightsError` with one line saying why.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch

from .device import resolve_device
from .errors import WeightsError
from .models.couplegraph import CoupleGraph, assign_pairs, select_pairs
from .types import Poses
from .weights import build_from, read_checkpoint

EXTRA_KEY = "pair_stage"  # where a DAG checkpoint holds its pair stage


def pair_stage_extra(net: CoupleGraph, iou_threshold: float) -> dict[str, Any]:
    """The entry of a DAG checkpoint's ``extra`` that holds ``net`` as its pair stage."""
    config = dict(getattr(net, "config", None) or {})
    if config.get("name") != "couplegraph":
        raise ValueError("pair_stage_extra: build the CoupleGraph with posecore.models.build_model")
    return {"config": config, "state_dict": {k: v.detach().cpu() for k, v in net.state_dict().items()},
            "iou_threshold": float(iou_threshold)}


class PairStage:
    """``refine(frame, poses, features) -> Poses``: each paired person's joints moved by CoupleGraph.

    ``features``: float32[N, K, C] per-joint features of the N people (C = the net's ``feat_channels``),
    or None for a coordinates-only net. Confidences, ``seen`` flags, boxes and scores are kept. All pairs of
    a frame go through one forward pass.
    """

    # The pipeline hands this stage the estimator's joint features (not the detector's maps).
    reads_joint_features = True

    def __init__(self, net: CoupleGraph, iou_threshold: float = 0.3, max_pairs: int = 32,
                 device: str | torch.device = "cpu", source: str = ""):
        self.device = device if isinstance(device, torch.device) else resolve_device(device)
        self.net = net.eval().to(self.device)
        self.iou_threshold, self.max_pairs = float(iou_threshold), int(max_pairs)
        self.source = source
        self.pairs_last = 0  # pairs refined in the last frame (for logs and tests)

    @property
    def skeleton(self) -> str:
        return str(getattr(self.net, "skeleton", ""))

    @property
    def feat_channels(self) -> int:
        return int(self.net.feat_channels)

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, device: str | torch.device = "cpu") -> "PairStage":
        """A CoupleGraph checkpoint, or a DAG checkpoint that holds a pair stage."""
        ckpt = read_checkpoint(path)
        if ckpt.config.get("name") != "couplegraph":
            if EXTRA_KEY in ckpt.extra:
                return cls.from_extra(ckpt.extra[EXTRA_KEY], str(path), device)
            raise WeightsError(f"{path}: holds {ckpt.config.get('name')}, not a CoupleGraph pair stage")
        net = build_from(ckpt.config, ckpt.state_dict, str(path))
        return cls(net, float(ckpt.extra.get("iou_threshold", 0.3)), device=device, source=str(path))

    @classmethod
    def from_extra(cls, entry: Any, where: str, device: str | torch.device = "cpu") -> "PairStage":
        """The pair stage stored in a DAG checkpoint's ``extra`` (see :func:`pair_stage_extra`)."""
        where = f"{where} (its pair stage)"
        if not isinstance(entry, dict) or not isinstance(entry.get("config"), dict):
            raise WeightsError(f"{where}: not a stored CoupleGraph")
        if entry["config"].get("name") != "couplegraph":
            raise WeightsError(f"{where}: holds {entry['config'].get('name')}, not a CoupleGraph")
        net = build_from(entry["config"], entry.get("state_dict"), where)
        return cls(net, float(entry.get("iou_threshold", 0.3)), device=device, source=where)

    @classmethod
    def for_dag(cls, dag_weights: str | os.PathLike, dag_extra: dict, pair_weights: str | os.PathLike | None,
                skeleton: str, num_joints: int, feature_channels: int,
                device: str | torch.device = "cpu") -> "PairStage | None":
        """The pair stage of a DAG run: ``pair_weights`` when given, else the one inside the DAG checkpoint
        ``dag_weights`` (its ``extra``, ``dag_extra``, as read when the DAG was loaded), else None (the DAG
        runs alone). Raises :class:`WeightsError` when it does not fit the DAG."""
        if pair_weights is not None:
            stage = cls.from_checkpoint(pair_weights, device)
        else:
            entry = dag_extra.get(EXTRA_KEY)
            if entry is None:
                return None
            stage = cls.from_extra(entry, str(dag_weights), device)
        stage.check_fits(skeleton, num_joints, feature_channels)
        return stage

    def check_fits(self, skeleton: str, num_joints: int, feature_channels: int) -> None:
        """Raise :class:`WeightsError` unless this net refines poses of ``skeleton`` with the DAG's features."""
        if self.skeleton and self.skeleton != skeleton:
            raise WeightsError(f"{self.source}: CoupleGraph for skeleton {self.skeleton}, the DAG's is {skeleton}")
        if self.net.num_joints != num_joints:
            raise WeightsError(f"{self.source}: CoupleGraph for {self.net.num_joints} joints, the DAG has {num_joints}")
        if self.feat_channels and self.feat_channels != feature_channels:
            raise WeightsError(f"{self.source}: CoupleGraph reads {self.feat_channels} feature channels, the DAG's "
                               f"feature map has {feature_channels or 'none'}")

    @torch.inference_mode()
    def refine(self, frame: np.ndarray, poses: Poses, features: np.ndarray | None = None) -> Poses:
        self.pairs_last = 0
        pairs, ious = select_pairs(poses.boxes, self.iou_threshold, self.max_pairs)
        if len(pairs) == 0:
            return poses
        if self.feat_channels and (features is None or features.shape[-1] != self.feat_channels):
            got = "none" if features is None else features.shape[-1]
            raise ValueError(f"the pair stage reads {self.feat_channels} feature channels per joint, got {got}")
        kp = torch.from_numpy(poses.keypoints[pairs]).to(self.device)
        boxes = torch.from_numpy(poses.boxes[pairs]).to(self.device)
        feats = torch.from_numpy(features[pairs]).to(self.device) if self.feat_channels else None
        refined = self.net(kp, boxes, feats).float().cpu().numpy()
        best, slot = assign_pairs(pairs, ious, len(poses))
        kpts = poses.keypoints.copy()
        paired = best >= 0
        kpts[paired, :, :2] = refined[best[paired], slot[paired]]
        self.pairs_last = len(pairs)
        return Poses(poses.boxes, poses.scores, kpts, poses.seen.copy(), poses.skeleton)
