"""The ranking score of a pose in COCO results: its box score times the mean confidence of its confident joints.

COCO's keypoint AP ranks a method's poses by their ``score``; a person box found with confidence but whose
joints were barely found (hidden, cut off, another person's) should rank below one whose joints are clear.
This is HRNet's and mmpose's rescoring of top-down results (joints above ``0.2``), used here for every pose
model. On the labelled images of ``../shared/data`` it raised keypoint AP on every set, most on the
occluded ones (README, "Quality presets").
"""

from __future__ import annotations

import numpy as np

KPT_SCORE_THR = 0.2


def pose_scores(box_scores: np.ndarray, keypoints: np.ndarray, thr: float = KPT_SCORE_THR) -> np.ndarray:
    """float64[N]: ``box_scores`` float[N] times the mean confidence of each pose's joints above ``thr``
    (0 for a pose with none), for ``keypoints`` float[N, K, 3] (x, y, confidence)."""
    box_scores = np.asarray(box_scores, np.float64).reshape(-1)
    if not len(box_scores):
        return box_scores
    conf = np.asarray(keypoints, np.float64).reshape(len(box_scores), -1, 3)[..., 2]
    confident = conf > thr
    count = confident.sum(1)
    mean = np.where(count > 0, (conf * confident).sum(1) / np.maximum(count, 1), 0.0)
    return box_scores * mean


def pose_results(image_id: int, box_scores: np.ndarray, keypoints: np.ndarray) -> list[dict]:
    """COCO keypoint results of one image's poses (``keypoints`` float[N, K, 3]), scored by :func:`pose_scores`."""
    if not len(box_scores):
        return []
    kpts = np.asarray(keypoints, np.float64).reshape(len(box_scores), -1)
    return [{"image_id": int(image_id), "category_id": 1, "score": float(s), "keypoints": k.tolist()}
            for s, k in zip(pose_scores(box_scores, kpts), kpts)]
