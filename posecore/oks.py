"""Object keypoint similarity (OKS), the one formula the tracker, the evaluation and the distillation share.

For a pair of poses with squared joint distances ``d^2`` and an object scale ``s^2`` (an area),
OKS is the mean over the joints that count of ``exp(-d^2 / (2 s^2 (2 sigma)^2))``, with COCO's
per-joint ``sigma`` (``posecore.skeleton``). Callers differ only in which joints count and which area
is the scale (a track's box, a labelled person's area, CrowdPose's 0.53 x box), so they compute those
and call :func:`keypoint_similarity`.
"""

from __future__ import annotations

import numpy as np


def joint_similarity(d2: np.ndarray, areas: np.ndarray, sigmas: np.ndarray) -> np.ndarray:
    """float64[..., K]: each joint's ``exp(-d^2 / (2 s^2 (2 sigma)^2))`` for squared distances ``d2``
    float[..., K] at scales ``areas`` float[...] (s^2), COCO's ``sigmas`` float[K]."""
    var = 2.0 * np.asarray(areas, np.float64)[..., None] * (2.0 * np.asarray(sigmas, np.float64)) ** 2
    return np.exp(-np.asarray(d2, np.float64) / var)


def keypoint_similarity(d2: np.ndarray, areas: np.ndarray, sigmas: np.ndarray,
        valid: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """OKS of paired poses from their squared joint distances.

    d2 float[..., K]: squared distances of corresponding joints; areas float[...]: each pair's scale s^2;
    sigmas float[K]; valid bool[..., K]: the joints that count (default: all).
    Returns (oks float64[...], count int[...]): the mean over the valid joints (0 where none is valid)
    and how many joints counted.
    """
    e = joint_similarity(d2, areas, sigmas)
    if valid is None:
        return e.mean(-1), np.full(e.shape[:-1], e.shape[-1])
    valid = np.asarray(valid, bool)
    count = valid.sum(-1)
    return np.where(valid, e, 0.0).sum(-1) / np.maximum(count, 1), count
