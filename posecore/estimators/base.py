"""The interface every pose backend implements."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from ..types import Detections, Poses


@runtime_checkable
class PoseEstimator(Protocol):
    skeleton: str

    def estimate(self, frame: np.ndarray, detections: Detections) -> Poses:
        """Keypoints for each detected person of a BGR uint8[H, W, 3] frame (same order as ``detections``)."""
        ...
