"""NumPy BGR frames to Qt images."""

from __future__ import annotations

import numpy as np
from PyQt6.QtGui import QImage


def bgr_to_qimage(image: np.ndarray) -> QImage:
    """A QImage that owns a copy of a BGR uint8[H, W, 3] frame (the array may change afterwards)."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected a BGR uint8[H, W, 3] image, got {image.dtype}{list(image.shape)}")
    image = np.ascontiguousarray(image)
    h, w = image.shape[:2]
    return QImage(image.data, w, h, image.strides[0], QImage.Format.Format_BGR888).copy()
