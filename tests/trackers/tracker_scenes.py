"""Synthetic people and frames for the tracker tests: COCO-17 stick figures moving on straight lines."""

from __future__ import annotations

import numpy as np

from posecore.types import Poses

# COCO-17 joints as (x, y) in units of the person's height, x from the body's axis, y down from the top.
_TEMPLATE = np.array([
    (0.0, 0.06), (-0.03, 0.04), (0.03, 0.04), (-0.06, 0.05), (0.06, 0.05),
    (-0.12, 0.20), (0.12, 0.20), (-0.16, 0.36), (0.16, 0.36), (-0.18, 0.50), (0.18, 0.50),
    (-0.09, 0.53), (0.09, 0.53), (-0.10, 0.74), (0.10, 0.74), (-0.10, 0.95), (0.10, 0.95),
])
_ARMS_UP = _TEMPLATE.copy()
_ARMS_UP[7:11] = [(-0.20, 0.10), (0.20, 0.10), (-0.22, -0.02), (0.22, -0.02)]
WIDTH = 0.5  # box width in units of height


def person(cx: float, top: float, height: float, arms_up: bool = False,
           conf: float = 0.9) -> tuple[np.ndarray, np.ndarray]:
    """(box float64[4], keypoints float64[17, 3]) of a standing figure centred at ``cx``."""
    tpl = _ARMS_UP if arms_up else _TEMPLATE
    xy = np.stack([cx + tpl[:, 0] * height, top + tpl[:, 1] * height], 1)
    y0 = min(top, float(xy[:, 1].min()))
    box = np.array([cx - WIDTH * height / 2, y0, cx + WIDTH * height / 2, top + height])
    return box, np.concatenate([xy, np.full((17, 1), conf)], 1)


def frame(people: list[tuple[np.ndarray, np.ndarray]], scores: list[float] | None = None) -> Poses:
    """Poses of one frame from ``person`` tuples (all scoring 0.9 unless ``scores`` is given)."""
    if not people:
        return Poses.empty()
    boxes = np.stack([b for b, _ in people])
    kpts = np.stack([k for _, k in people])
    scores = [0.9] * len(people) if scores is None else scores
    return Poses(boxes, np.asarray(scores), kpts)


def ids_by_x(tracks) -> list[int]:
    """Track IDs ordered from left to right by box centre."""
    return [t.track_id for t in sorted(tracks, key=lambda t: t.box[0] + t.box[2])]
