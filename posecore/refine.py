"""The refiner stage: the trained ``yolo_refiner`` corrects YOLO11n-pose's poses with the detector's own
neck maps.

:class:`YoloRefiner` runs the network of :mod:`posecore.models.yolo_refiner` (a local step, FGMH-GCN per
person, CoupleGraph per overlapping pair) on the poses of one frame and the :class:`YoloFeatures` of the
detection pass that found them, which arrive with the detections (``Detections.features``, once the
detector was asked to keep them). :func:`build_default_refiner` gives the shipped one for a detector
(``pose.refine``), or None where it stays off.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from .device import resolve_device
from .errors import ConfigError, WeightsError
from .models.couplegraph import select_pairs
from .models.yolo_refiner import YoloRefinerNet
from .types import Poses
from .weights import load_checkpoint, read_checkpoint
from .yolo_features import YoloFeatures

SHIPPED_WEIGHTS = "refiner_yolo11n.pt"


def shipped_refiner_path() -> Path:
    """The refiner weights shipped in the package (trained by ``configs/train/refiner_yolo11n.yaml``)."""
    return Path(str(resources.files("posecore.assets") / "weights" / SHIPPED_WEIGHTS))


class YoloRefiner:
    """The trained ``yolo_refiner`` on YOLO pose estimates, reading the detector's own neck maps.

    ``refine(frame, poses, features)``: ``features`` are the :class:`YoloFeatures` of the detection pass
    that produced ``poses`` (``Detections.features`` from a detector that captures them). Joints move;
    confidences, ``seen`` flags, boxes and scores are kept. All people go through one forward pass.
    """

    reads_joint_features = False  # it reads the detector's maps (``Detections.features``), not the estimator's

    def __init__(self, net: YoloRefinerNet, iou_threshold: float = 0.3, max_pairs: int = 32,
                 device: str | torch.device = "cpu", info: dict | None = None):
        self.device = device if isinstance(device, torch.device) else resolve_device(device)
        self.net = net.eval().to(self.device)
        self.iou_threshold, self.max_pairs = float(iou_threshold), int(max_pairs)
        self.info = dict(info or {})

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, device: str | torch.device = "cpu") -> "YoloRefiner":
        net, config = load_checkpoint(path)
        if not isinstance(net, YoloRefinerNet):
            raise WeightsError(f"{path}: holds {config['name']}, not a yolo_refiner")
        extra = read_checkpoint(path).extra
        return cls(net, float(extra.get("iou_threshold", 0.3)), device=device, info=extra)

    @property
    def in_channels(self) -> tuple[int, ...]:
        return self.net.in_channels

    @torch.inference_mode()
    def refine(self, frame: np.ndarray, poses: Poses, features: YoloFeatures | None = None) -> Poses:
        if len(poses) == 0:
            return poses
        if not isinstance(features, YoloFeatures):
            raise ValueError("the YOLO refiner needs the detector's neck maps of this frame (YoloFeatures); "
                             "call the detector's capture_features() and pass Detections.features")
        if features.channels != self.in_channels:
            raise ValueError(f"feature maps with {features.channels} channels; this refiner reads {self.in_channels}")
        xy = poses.keypoints[..., :2]
        feats = None if self.net.proj is None else features.sample(xy, frame.shape[:2]).to(self.device)
        grid, step = features.sample_grid(xy, frame.shape[:2], self.net.radius, self.net.grid_step)
        kp = torch.from_numpy(poses.keypoints).to(self.device)
        boxes = torch.from_numpy(poses.boxes).to(self.device)
        pairs, ious = select_pairs(poses.boxes, self.iou_threshold, self.max_pairs)
        out = self.net(kp, boxes, feats, grid.to(self.device), torch.full((len(poses),), step, device=self.device),
                       torch.from_numpy(pairs).to(self.device))
        xy = YoloRefinerNet.assemble(out, pairs, ious).float().cpu().numpy()
        kpts = poses.keypoints.copy()
        kpts[..., :2] = xy
        return Poses(poses.boxes, poses.scores, kpts, poses.seen.copy(), poses.skeleton)


def build_default_refiner(detector, mode: str = "auto", weights: str | os.PathLike | None = None,
                          device: str | torch.device | None = None) -> YoloRefiner | None:
    """The shipped refiner (or ``weights``) for ``detector`` (a :class:`posecore.detector.Detector`), on
    the detector's device unless ``device`` says otherwise, or None; the detector then keeps its neck maps.

    ``mode``: ``off`` -> None; ``auto`` -> the refiner only when the weights were measured to help
    (``enabled_by_default`` in the checkpoint, set by ``python -m train fit`` from the held-out
    evaluation) and fit the detector, else None; ``on`` -> the refiner, and where it cannot run (no pose
    head, weights missing, a neck with other channels than the weights were trained on; YOLO11n-pose:
    64, 128, 256) a :class:`ConfigError` or :class:`WeightsError` saying why, never a silent no-op.
    """
    if mode not in ("auto", "on", "off"):
        raise ConfigError(f"pose.refine: expected auto, on or off, got {mode!r}")
    if mode == "off":
        return None
    required = mode == "on"
    if not detector.has_pose_head:
        if required:
            raise ConfigError("pose.refine: on needs a YOLO pose model as the detector (a *-pose.pt)")
        return None
    path = Path(weights) if weights is not None else shipped_refiner_path()
    if not path.is_file():
        if required or weights is not None:
            raise WeightsError(f"pose.refine: refiner weights not found: {path}")
        return None
    if mode == "auto" and not read_checkpoint(path).extra.get("enabled_by_default", False):
        return None
    neck = detector.neck_channels
    refiner = YoloRefiner.from_checkpoint(path, device=detector.device if device is None else device)
    if neck != refiner.in_channels:
        if required:
            raise ConfigError(f"pose.refine: on: the refiner {path.name} reads neck maps of {refiner.in_channels} "
                              f"channels; the detector's have {neck or 'an unknown number of'}")
        return None
    detector.capture_features()
    return refiner
