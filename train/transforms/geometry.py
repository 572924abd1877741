"""Top-down geometry: box -> centre/scale with aspect padding, half-body, random scale/rotation, flip, crop.

The recipe is HRNet's (which the DAG paper trains with): the box is padded to the input's aspect ratio
(4:3 for 256x192) and enlarged by 1.25; the flip mirrors the whole image (x -> W - 1 - x) and swaps the
skeleton's left/right joints. Pixel centres sit at integer coordinates (the convention of
:mod:`posecore.codecs`): the crop maps the region's edges onto the input's edges, [-0.5, W - 0.5], so its
centre lands on ((W - 1) / 2, (H - 1) / 2) and a flipped crop's heatmaps flip back without a shift.
"""

from __future__ import annotations

import cv2
import numpy as np

from posecore.estimators import crops
from posecore.skeleton import Skeleton

from .base import Sample

_UPPER_WORDS = ("nose", "eye", "ear", "shoulder", "elbow", "wrist", "head", "neck")
_LOWER_WORDS = ("hip", "knee", "ankle")


def box_to_center_scale(box_xyxy: np.ndarray, input_size: tuple[int, int], padding: float = 1.25
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Centre float32[2] and scale float32[2] (w, h in pixels) of one x1 y1 x2 y2 box padded to the
    input's aspect ratio and enlarged by ``padding`` (the estimator's own crop maths)."""
    centers, scales = crops.box_to_center_scale(np.asarray(box_xyxy, np.float32)[None], input_size, padding)
    return centers[0], scales[0]


def affine_matrix(center: np.ndarray, scale: np.ndarray, rotation: float, output_size: tuple[int, int]) -> np.ndarray:
    """float32[2, 3] mapping image pixels to crop pixels (the estimator's ``crop_matrix``).

    The region of size ``scale`` (w, h) around ``center``, turned by ``rotation`` degrees, fills the
    output (W, H) edge to edge; the centre lands on ((W - 1) / 2, (H - 1) / 2).
    """
    return crops.crop_matrix(center, scale, output_size, rotation).astype(np.float32)


def invert_affine(matrix: np.ndarray) -> np.ndarray:
    """float32[2, 3] inverse of an affine map."""
    return crops.invert_affine(matrix).astype(np.float32)


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a float[2, 3] affine map to float[..., 2] points."""
    return crops.apply_affine(points, np.asarray(matrix, np.float64))


def joint_groups(skeleton: Skeleton) -> tuple[np.ndarray, np.ndarray]:
    """(upper, lower) joint indices, from the joint names."""
    upper = [i for i, n in enumerate(skeleton.joints) if any(w in n for w in _UPPER_WORDS)]
    lower = [i for i, n in enumerate(skeleton.joints) if any(w in n for w in _LOWER_WORDS)]
    return np.asarray(upper, np.int64), np.asarray(lower, np.int64)


class CenterScale:
    """Set the crop region from the box: padded to the input's aspect ratio, enlarged by ``padding``."""

    def __init__(self, input_size: tuple[int, int], padding: float = 1.25):
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.padding = padding

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        sample.center, sample.scale = box_to_center_scale(sample.box, self.input_size, self.padding)
        return sample


class HalfBody:
    """With probability ``prob``, crop to the upper or lower body only (HRNet's half-body transform)."""

    def __init__(self, skeleton: Skeleton, input_size: tuple[int, int], prob: float = 0.3, min_joints: int = 8,
                 enlarge: float = 1.5):
        self.upper, self.lower = joint_groups(skeleton)
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.prob, self.min_joints, self.enlarge = prob, min_joints, enlarge

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        labelled = sample.keypoints[:, 2] > 0
        if labelled.sum() <= self.min_joints or rng.random() >= self.prob:
            return sample
        upper = self.upper[labelled[self.upper]]
        lower = self.lower[labelled[self.lower]]
        chosen = upper if (rng.random() < 0.5 and len(upper) > 2) else (lower if len(lower) > 2 else upper)
        if len(chosen) < 2:
            return sample
        pts = sample.keypoints[chosen, :2]
        lo, hi = pts.min(0), pts.max(0)
        center, scale = box_to_center_scale(np.concatenate([lo, hi]), self.input_size, self.enlarge)
        sample.center, sample.scale = pts.mean(0).astype(np.float32), scale
        return sample


class RandomScaleRotation:
    """Scale the crop region by N(1, f) clipped to [1 - f, 1 + f]; rotate by N(0, r) clipped to +-2r."""

    def __init__(self, scale_factor: float = 0.35, rotation_factor: float = 45.0, rotation_prob: float = 0.6):
        self.sf, self.rf, self.rp = scale_factor, rotation_factor, rotation_prob

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        s = float(np.clip(rng.standard_normal() * self.sf + 1.0, 1.0 - self.sf, 1.0 + self.sf))
        r = float(np.clip(rng.standard_normal() * self.rf, -2 * self.rf, 2 * self.rf))
        sample.scale = (sample.scale * s).astype(np.float32)
        sample.rotation = r if rng.random() < self.rp else 0.0
        return sample


def flip_keypoints(keypoints: np.ndarray, width: int, flip_index: np.ndarray) -> np.ndarray:
    """Mirror float[..., K, 3] keypoints in an image ``width`` wide and swap left/right joints."""
    out = np.asarray(keypoints, np.float32)[..., flip_index, :].copy()
    labelled = out[..., 2] > 0
    out[..., 0] = np.where(labelled, width - 1 - out[..., 0], out[..., 0])
    return out


class RandomFlip:
    """Mirror the whole image with probability ``prob``: pixels, keypoints (left <-> right), box, centre."""

    def __init__(self, skeleton: Skeleton, prob: float = 0.5):
        self.flip_index = skeleton.flip_index
        self.prob = prob

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        if rng.random() >= self.prob:
            return sample
        w = sample.image.shape[1]
        sample.image = np.ascontiguousarray(sample.image[:, ::-1])
        sample.keypoints = flip_keypoints(sample.keypoints, w, self.flip_index)
        if len(sample.others):
            sample.others = flip_keypoints(sample.others, w, self.flip_index)
        x1, y1, x2, y2 = sample.box
        sample.box = np.asarray([w - 1 - x2, y1, w - 1 - x1, y2], np.float32)
        sample.center = np.asarray([w - 1 - sample.center[0], sample.center[1]], np.float32)
        sample.flipped = not sample.flipped
        return sample


class AffineCrop:
    """Warp the region (centre, scale, rotation) to the input size; move every point with it.

    Joints that leave the crop get v = 0. The box becomes the target's unrotated box in crop pixels
    (its centre moved, its sides scaled), which sizes the occlusion blocks that follow.
    """

    def __init__(self, input_size: tuple[int, int]):
        self.size = (int(input_size[0]), int(input_size[1]))

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        m = affine_matrix(sample.center, sample.scale, sample.rotation, self.size)
        sample.image = cv2.warpAffine(sample.image, m, self.size, flags=cv2.INTER_LINEAR,
                                      borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
        sample.keypoints = self._move(sample.keypoints, m)
        if len(sample.others):
            sample.others = self._move(sample.others, m)
        sx, sy = self.size[0] / float(sample.scale[0]), self.size[1] / float(sample.scale[1])
        bw, bh = sample.box_size()
        c = transform_points(0.5 * (sample.box[:2] + sample.box[2:]), m)
        sample.box = np.asarray([c[0] - 0.5 * bw * sx, c[1] - 0.5 * bh * sy,
                                 c[0] + 0.5 * bw * sx, c[1] + 0.5 * bh * sy], np.float32)
        sample.matrix = m
        return sample

    def _move(self, kpts: np.ndarray, m: np.ndarray) -> np.ndarray:
        out = np.asarray(kpts, np.float32).copy()
        out[..., :2] = transform_points(out[..., :2], m)
        w, h = self.size
        inside = (out[..., 0] >= -0.5) & (out[..., 0] <= w - 0.5) & (out[..., 1] >= -0.5) & (out[..., 1] <= h - 0.5)
        out[..., 2] = np.where(inside, out[..., 2], 0.0)
        return out
