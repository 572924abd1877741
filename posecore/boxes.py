"""Box geometry shared by the tracker, the pair refiner, training and the benchmark."""

from __future__ import annotations

import numpy as np

_EPS = 1e-9


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """float64[N, M] intersection over union of boxes float[N, 4] and float[M, 4] (x1 y1 x2 y2).

    Empty boxes have IoU 0 with everything, including themselves.
    """
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = np.clip(rb - lt, 0, None)
    inter = wh[..., 0] * wh[..., 1]
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > _EPS, inter / np.maximum(union, _EPS), 0.0)
