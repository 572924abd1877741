"""CrowdPose: COCO-like files with 14 joints, no ``area`` and a ``crowdIndex`` per image."""

from __future__ import annotations

import numpy as np

from .base import KeypointAnnotations

# crowdposetools' levels: easy below 0.2, medium below 0.8, hard from 0.8 on.
CROWD_LEVELS = (("easy", 0.0, 0.2), ("medium", 0.2, 0.8), ("hard", 0.8, float("inf")))


class CrowdPoseKeypoints(KeypointAnnotations):
    default_skeleton = "crowdpose14"
    name = "crowdpose"

    def area(self, ann: dict, box: np.ndarray) -> float:
        # CrowdPose has no segmentation area; its evaluator uses 0.53 x the box area.
        return float(box[2] * box[3] * 0.53)

    def crowd_index(self, image: dict) -> float | None:
        value = image.get("crowdIndex")
        return float(value) if isinstance(value, (int, float)) else None
