"""Skeleton tables: joint names, limbs, flip pairs and OKS sigmas, and mappings between them."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np


@dataclass(frozen=True)
class Skeleton:
    name: str
    joints: tuple[str, ...]
    limbs: tuple[tuple[int, int], ...]  # undirected bones, joint indices
    flip_pairs: tuple[tuple[int, int], ...]  # left/right partners swapped by a horizontal flip
    sigmas: tuple[float, ...]  # OKS per-joint falloff (COCO's sigma, not 2*sigma)

    def __post_init__(self) -> None:
        k = len(self.joints)
        if len(self.sigmas) != k:
            raise ValueError(f"{self.name}: {len(self.sigmas)} sigmas for {k} joints")
        for a, b in self.limbs + self.flip_pairs:
            if not (0 <= a < k and 0 <= b < k) or a == b:
                raise ValueError(f"{self.name}: bad joint pair ({a}, {b})")

    @property
    def num_joints(self) -> int:
        return len(self.joints)

    def index(self, joint: str) -> int:
        return self.joints.index(joint)

    @cached_property
    def flip_index(self) -> np.ndarray:
        """int64[K]: the joint each joint becomes after a horizontal flip."""
        idx = np.arange(self.num_joints)
        for a, b in self.flip_pairs:
            idx[a], idx[b] = b, a
        return idx

    @cached_property
    def adjacency(self) -> np.ndarray:
        """float32[K, K] symmetric 0/1 bone adjacency without self-loops."""
        a = np.zeros((self.num_joints, self.num_joints), np.float32)
        for i, j in self.limbs:
            a[i, j] = a[j, i] = 1.0
        return a

    @cached_property
    def sigmas_array(self) -> np.ndarray:
        return np.asarray(self.sigmas, np.float32)


COCO17 = Skeleton(
    name="coco17",
    joints=(
        "nose", "left_eye", "right_eye", "left_ear", "right_ear",
        "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
        "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
    ),
    limbs=(
        (15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6), (5, 7), (6, 8),
        (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6),
    ),
    flip_pairs=((1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16)),
    sigmas=(
        0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072, 0.062, 0.062,
        0.107, 0.107, 0.087, 0.087, 0.089, 0.089,
    ),
)

CROWDPOSE14 = Skeleton(
    name="crowdpose14",
    joints=(
        "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
        "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle", "head", "neck",
    ),
    limbs=(
        (12, 13), (13, 0), (13, 1), (0, 2), (2, 4), (1, 3), (3, 5), (0, 6), (1, 7), (6, 7),
        (6, 8), (8, 10), (7, 9), (9, 11),
    ),
    flip_pairs=((0, 1), (2, 3), (4, 5), (6, 7), (8, 9), (10, 11)),
    # crowdposetools' sigmas: COCO's body sigmas, and 0.079 for head and neck.
    sigmas=(0.079, 0.079, 0.072, 0.072, 0.062, 0.062, 0.107, 0.107, 0.087, 0.087, 0.089, 0.089, 0.079, 0.079),
)

SKELETONS: dict[str, Skeleton] = {s.name: s for s in (COCO17, CROWDPOSE14)}


def get_skeleton(name: str) -> Skeleton:
    try:
        return SKELETONS[name]
    except KeyError:
        raise ValueError(f"unknown skeleton {name!r}; choose one of {sorted(SKELETONS)}") from None


# CrowdPose's 12 body joints are COCO joints 5..16 in the same order.
_BODY = np.arange(5, 17)


def coco17_to_crowdpose14(kpts: np.ndarray) -> np.ndarray:
    """Map float[..., 17, 3] COCO keypoints to float32[..., 14, 3] CrowdPose keypoints.

    The body joints copy over. COCO has no neck or head top: the neck is the shoulders' midpoint and
    the head top is extrapolated from the neck through the centre of the face joints by half that
    distance again; both take the lowest confidence of the joints they are made from.
    """
    kpts = np.asarray(kpts, np.float32)
    out = np.zeros(kpts.shape[:-2] + (14, 3), np.float32)
    out[..., :12, :] = kpts[..., _BODY, :]
    shoulders = kpts[..., 5:7, :]
    neck = shoulders[..., :2].mean(-2)
    out[..., 13, :2] = neck
    out[..., 13, 2] = shoulders[..., 2].min(-1)
    face = kpts[..., 0:5, :]
    w = (face[..., 2] > 0).astype(np.float32)
    face_c = (face[..., :2] * w[..., None]).sum(-2) / np.maximum(w.sum(-1, keepdims=True), 1.0)
    out[..., 12, :2] = face_c + 0.5 * (face_c - neck)
    out[..., 12, 2] = np.where(w.sum(-1) > 0, np.minimum(face[..., 2].max(-1), out[..., 13, 2]), 0.0)
    return out


def crowdpose14_to_coco17(kpts: np.ndarray) -> np.ndarray:
    """Map float[..., 14, 3] CrowdPose keypoints to float32[..., 17, 3] COCO; face joints get confidence 0."""
    kpts = np.asarray(kpts, np.float32)
    out = np.zeros(kpts.shape[:-2] + (17, 3), np.float32)
    out[..., _BODY, :] = kpts[..., :12, :]
    return out
