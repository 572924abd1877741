"""Poses for the refiner tests."""

from __future__ import annotations

import numpy as np

from posecore.types import Poses


def three_people(second_x1: float) -> Poses:
    """Three people with random joints inside their boxes: the second box starts at ``second_x1`` and
    overlaps the first (box IoU 0.51 at 130, 0.40 at 140), the third stands apart."""
    rng = np.random.default_rng(0)
    boxes = np.array([[100, 50, 200, 300], [second_x1, 60, second_x1 + 100, 310], [600, 100, 700, 350]], np.float32)
    kpts = np.zeros((3, 17, 3), np.float32)
    for i, (x1, y1, x2, y2) in enumerate(boxes):
        kpts[i, :, 0] = rng.uniform(x1, x2, 17)
        kpts[i, :, 1] = rng.uniform(y1, y2, 17)
        kpts[i, :, 2] = rng.uniform(0.1, 1.0, 17)
    return Poses(boxes, np.array([0.9, 0.8, 0.7]), kpts, kpts[..., 2] > 0.5)
