"""Affine person crops for top-down estimation, and the way back to image coordinates.

A box becomes a crop region with the input's aspect ratio (4:3 for 256x192), enlarged by
``padding`` (1.25, as in HRNet). The region [c - S/2, c + S/2] of the image maps onto the crop's
full extent [-0.5, W - 0.5], following the pixel-centre convention of :mod:`posecore.codecs`; cv2's
warpAffine samples with the same convention, so no half-pixel corrections are needed anywhere.
"""

from __future__ import annotations

import cv2
import numpy as np


def box_to_center_scale(boxes: np.ndarray, input_size: tuple[int, int], padding: float = 1.25
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Crop regions for boxes float[N, 4] (x1 y1 x2 y2).

    Returns centers float32[N, 2] and scales float32[N, 2], the region's (width, height) in image
    pixels: the box grown to the aspect ratio W/H of ``input_size`` and multiplied by ``padding``.
    """
    b = np.asarray(boxes, np.float32).reshape(-1, 4)
    centers = np.stack(((b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2), -1)
    w = np.maximum(b[:, 2] - b[:, 0], 1.0)
    h = np.maximum(b[:, 3] - b[:, 1], 1.0)
    aspect = input_size[0] / input_size[1]
    w, h = np.where(w > aspect * h, w, h * aspect), np.where(w > aspect * h, w / aspect, h)
    return centers.astype(np.float32), (np.stack((w, h), -1) * padding).astype(np.float32)


def crop_matrix(center: np.ndarray, scale: np.ndarray, input_size: tuple[int, int], rotation: float = 0.0
                ) -> np.ndarray:
    """float64[2, 3] mapping image pixels to crop pixels; ``rotation`` in degrees, counter-clockwise
    in the image, about the crop centre."""
    w, h = input_size
    sx, sy = w / float(scale[0]), h / float(scale[1])
    t = np.deg2rad(rotation)
    cos, sin = np.cos(t), np.sin(t)
    # crop = R * diag(sx, sy) * (img - c) + crop_centre, with y pointing down in both.
    a = np.array([[cos * sx, sin * sy], [-sin * sx, cos * sy]])
    offset = np.array([(w - 1) / 2.0, (h - 1) / 2.0]) - a @ np.asarray(center, np.float64)
    return np.concatenate((a, offset[:, None]), 1)


def invert_affine(m: np.ndarray) -> np.ndarray:
    """Inverse of a float[2, 3] affine matrix."""
    return cv2.invertAffineTransform(np.asarray(m, np.float64))


def apply_affine(points: np.ndarray, m: np.ndarray) -> np.ndarray:
    """points float[..., 2] through float[2, 3] matrix m."""
    p = np.asarray(points, np.float64)
    return (p @ m[:, :2].T + m[:, 2]).astype(np.float32)


def warp_crops(image: np.ndarray, centers: np.ndarray, scales: np.ndarray, input_size: tuple[int, int],
               rotations: np.ndarray | None = None) -> np.ndarray:
    """uint8[N, H, W, C] crops of ``image`` (uint8[H, W, C]); outside the image is black."""
    n = len(centers)
    w, h = input_size
    out = np.zeros((n, h, w) + image.shape[2:], image.dtype)
    for i in range(n):
        rot = 0.0 if rotations is None else float(rotations[i])
        m = crop_matrix(centers[i], scales[i], input_size, rot)
        cv2.warpAffine(image, m, (w, h), dst=out[i], flags=cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return out


def crop_to_image(coords: np.ndarray, centers: np.ndarray, scales: np.ndarray, input_size: tuple[int, int]
                  ) -> np.ndarray:
    """Crop pixels float[N, K, 2] -> image pixels float32[N, K, 2] (no rotation)."""
    c = np.asarray(coords, np.float32)
    w, h = input_size
    s = np.asarray(scales, np.float32)[:, None, :] / np.array([w, h], np.float32)
    half = np.array([(w - 1) / 2.0, (h - 1) / 2.0], np.float32)
    return ((c - half) * s + np.asarray(centers, np.float32)[:, None, :]).astype(np.float32)


def image_to_crop(coords: np.ndarray, centers: np.ndarray, scales: np.ndarray, input_size: tuple[int, int]
                  ) -> np.ndarray:
    """Image pixels float[N, K, 2] -> crop pixels float32[N, K, 2] (no rotation)."""
    c = np.asarray(coords, np.float32)
    w, h = input_size
    s = np.array([w, h], np.float32) / np.asarray(scales, np.float32)[:, None, :]
    half = np.array([(w - 1) / 2.0, (h - 1) / 2.0], np.float32)
    return ((c - np.asarray(centers, np.float32)[:, None, :]) * s + half).astype(np.float32)
