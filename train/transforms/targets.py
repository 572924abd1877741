"""The last step: a cropped sample becomes the network input and its training targets (numpy, collated later)."""

from __future__ import annotations

import numpy as np

from .base import Sample

IMAGENET_MEAN_RGB = np.asarray([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD_RGB = np.asarray([0.229, 0.224, 0.225], np.float32)


def to_input(image_bgr: np.ndarray) -> np.ndarray:
    """uint8[H, W, 3] BGR -> float32[3, H, W] RGB normalised with the ImageNet mean and std."""
    rgb = image_bgr[..., ::-1].astype(np.float32) / 255.0
    return np.ascontiguousarray(((rgb - IMAGENET_MEAN_RGB) / IMAGENET_STD_RGB).transpose(2, 0, 1))


def sample_meta(sample: Sample) -> dict:
    """What evaluation needs to bring crop pixels back to the image, as fixed-size arrays."""
    m = sample.meta
    return {
        "image_id": np.int64(m.get("image_id", -1)),
        "ann_id": np.int64(m.get("ann_id", -1)),
        "score": np.float32(m.get("score", 1.0)),
        "area": np.float32(m.get("area", 0.0)),
        "box": np.asarray(m.get("box", np.zeros(4)), np.float32),  # the person's box x, y, w, h in the image
        "center": sample.center.astype(np.float32),
        "scale": sample.scale.astype(np.float32),
        "matrix": np.asarray(sample.matrix, np.float32),
    }


def body_center(joints: np.ndarray, flags: np.ndarray, box: np.ndarray, min_visible: int) -> np.ndarray:
    """float32[2]: the mean of the visible (v = 2) joints float[K, 2] (flags float[K]), or the centre of
    ``box`` float[4] x1 y1 x2 y2 when fewer than ``min_visible`` joints are visible (a mean of one or two
    joints sits on a limb, not on the body)."""
    visible = np.asarray(flags) == 2
    if visible.sum() >= min_visible:
        return np.asarray(joints, np.float32)[visible, :2].mean(0).astype(np.float32)
    box = np.asarray(box, np.float32)
    return (0.5 * (box[:2] + box[2:])).astype(np.float32)


class EncodeTargets:
    """Input image, target heatmaps (lt), multi-person heatmaps (lm), joints (lp) and flags (visibility).

    ``codec`` is a :class:`posecore.codecs.HeatmapCodec` (``encode``, ``encode_multi``).
    Output keys: image float32[3, H, W]; target_heatmaps float32[K, h, w]; target_weight float32[K];
    multi_heatmaps float32[K, h, w]; joints float32[K, 2] crop pixels; flags float32[K] (v after
    augmentation: 0 unlabelled or outside, 1 occluded, 2 visible); body_center float32[2] crop pixels
    (:func:`body_center` of the joints still visible after the occlusions, with ``center_min_joints``);
    plus :func:`sample_meta`.
    """

    def __init__(self, codec, center_min_joints: int = 4):
        self.codec = codec
        self.center_min_joints = center_min_joints

    def __call__(self, sample: Sample) -> dict[str, np.ndarray]:
        kp = sample.keypoints
        heatmaps, weight = self.codec.encode(kp[:, :2], kp[:, 2])
        people = np.concatenate([kp[None], sample.others.reshape(-1, *kp.shape)], axis=0)
        multi = self.codec.encode_multi(people[..., :2], people[..., 2])
        flags = np.where(weight > 0, kp[:, 2], 0.0).astype(np.float32)
        return {
            "image": to_input(sample.image),
            "target_heatmaps": heatmaps.astype(np.float32),
            "target_weight": weight.astype(np.float32),
            "multi_heatmaps": multi.astype(np.float32),
            "joints": kp[:, :2].astype(np.float32),
            "flags": flags,
            "body_center": body_center(kp[:, :2], flags, sample.box, self.center_min_joints),
            **sample_meta(sample),
        }
