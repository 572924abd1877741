"""The ``yolo`` pose backend: keypoints from the detector's own pose head (no second pass)."""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from ..types import Detections, Poses


class YoloPoseEstimator:
    """Uses the keypoints a YOLO pose model already predicted with its boxes.

    A joint counts as seen when its confidence is at least ``seen_threshold``; the others are kept
    (with their low confidence) and flagged as not seen.
    """

    skeleton = "coco17"

    def __init__(self, seen_threshold: float = 0.5):
        self.seen_threshold = float(seen_threshold)

    def estimate(self, frame: np.ndarray, detections: Detections) -> Poses:
        if detections.keypoints is None:
            raise ConfigError("pose: the yolo backend needs YOLO pose weights (a *-pose.pt model)")
        kpts = detections.keypoints
        if kpts.shape[1] != 17:
            raise ConfigError(f"pose: the yolo backend expects COCO-17 keypoints, the model gives {kpts.shape[1]}")
        seen = kpts[..., 2] >= self.seen_threshold
        return Poses(detections.boxes, detections.scores, kpts, seen, self.skeleton)
