"""Occlusion-augmented copies of whole frames, for distilling a refiner of a whole-frame pose model.

A copy is the frame mirrored and zoomed (one affine map for the image and every person), then, person by
person, occluded with the steps the top-down training uses (:mod:`train.transforms.occlusion`): DAG's
mask joints, limb joint augmentation, or a person cut out of a labelled image and pasted over them (which
makes overlapping pairs for CoupleGraph). The people keep their targets from the clean frame, so what the
occlusion hides stays known; pasted people join them with their own labels.

Coordinates are continuous (pixel i spans [i, i + 1)), as YOLO's keypoints and Ultralytics' mirror
(x -> W - x) have them; :func:`cv2_matrix` turns such a map into the one ``cv2.warpAffine`` expects.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from posecore.skeleton import Skeleton

from ..config import FrameAugmentConfig
from .base import Sample
from .geometry import transform_points
from .occlusion import InstancePaste, InstancePool, LimbJointAugmentation, MaskJoints, PasteRecord

PAD_VALUE = 114  # the grey of YOLO's letterbox border


@dataclass
class FramePeople:
    """People of a frame with targets: keypoints float32[M, K, 3] (x, y, weight; weight > 0 marks a target
    joint), boxes float32[M, 4] x1 y1 x2 y2, labelled bool[M] (ground truth rather than teacher)."""

    keypoints: np.ndarray
    boxes: np.ndarray
    labelled: np.ndarray

    def __len__(self) -> int:
        return len(self.boxes)

    @classmethod
    def empty(cls, num_joints: int) -> "FramePeople":
        return cls(np.zeros((0, num_joints, 3), np.float32), np.zeros((0, 4), np.float32), np.zeros(0, bool))

    def concat(self, other: "FramePeople") -> "FramePeople":
        return FramePeople(np.concatenate([self.keypoints, other.keypoints]), np.concatenate([self.boxes, other.boxes]),
                           np.concatenate([self.labelled, other.labelled]))


@dataclass
class AugmentedFrame:
    """image uint8[H, W, 3]; people with targets in its coordinates; occluded bool[M, K]: target joints whose
    pixel an occlusion step changed; matrix float64[2, 3]: the geometry, source -> copy (continuous)."""

    image: np.ndarray
    people: FramePeople
    occluded: np.ndarray
    matrix: np.ndarray


def cv2_matrix(a: np.ndarray) -> np.ndarray:
    """The pixel-index form of a continuous-coordinate affine map: p' + 0.5 = A (p + 0.5)."""
    a = np.asarray(a, np.float64)
    out = a.copy()
    out[:, 2] = a[:, 2] + a[:, :2] @ np.array([0.5, 0.5]) - 0.5
    return out


def geometry(size: tuple[int, int], rng: np.random.Generator, flip_prob: float, zoom_range) -> np.ndarray:
    """float64[2, 3]: a random zoom about a random centre (the copy has the frame's size (W, H)), then a
    mirror with ``flip_prob``."""
    w, h = size
    z = float(np.exp(rng.uniform(np.log(zoom_range[0]), np.log(zoom_range[1]))))
    # The centre of the view: anywhere that keeps a zoomed-in view inside the frame.
    mx, my = max(0.0, w / 2 - w / (2 * z)), max(0.0, h / 2 - h / (2 * z))
    cx, cy = w / 2 + rng.uniform(-mx, mx), h / 2 + rng.uniform(-my, my)
    a = np.array([[z, 0.0, w / 2 - z * cx], [0.0, z, h / 2 - z * cy]])
    if rng.random() < flip_prob:
        a = np.array([[-1.0, 0.0, w], [0.0, 1.0, 0.0]]) @ np.vstack([a, [0, 0, 1]])
    return a


def move_people(people: FramePeople, a: np.ndarray, size: tuple[int, int], flip_index: np.ndarray) -> FramePeople:
    """People through the map ``a``: joints moved (sides swapped when it mirrors), boxes re-fitted, and
    joints that leave the copy lose their weight."""
    w, h = size
    kp = people.keypoints.copy()
    kp[..., :2] = transform_points(kp[..., :2], a)
    corners = people.boxes[:, [0, 1, 2, 1, 0, 3, 2, 3]].reshape(-1, 4, 2)
    c = transform_points(corners, a)
    boxes = np.concatenate([c.min(1), c.max(1)], -1).astype(np.float32)
    if a[0, 0] < 0:
        kp = kp[:, flip_index]
    inside = (kp[..., 0] >= 0) & (kp[..., 0] < w) & (kp[..., 1] >= 0) & (kp[..., 1] < h)
    kp[..., 2] = np.where(inside, kp[..., 2], 0.0)
    boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, w)
    boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, h)
    keep = ((boxes[:, 2] - boxes[:, 0]) > 1) & ((boxes[:, 3] - boxes[:, 1]) > 1)
    return FramePeople(kp[keep].astype(np.float32), boxes[keep], people.labelled[keep])


class FrameOcclusion:
    """``augment(image, people, rng) -> AugmentedFrame``, as configured by :class:`FrameAugmentConfig`."""

    def __init__(self, cfg: FrameAugmentConfig, skeleton: Skeleton, pool: InstancePool | None = None):
        self.cfg, self.skeleton = cfg, skeleton
        self.mask = MaskJoints(prob=1.0, max_joints=cfg.mask_max_joints, size_range=cfg.mask_size_range)
        self.lja = LimbJointAugmentation(skeleton, prob=1.0, ratio=cfg.lja_ratio, block=cfg.lja_block)
        self.paste = None
        if pool is not None and len(pool):
            self.paste = InstancePaste(pool, prob=1.0, max_instances=1, scale_range=cfg.paste_scale_range,
                                       rotation=cfg.paste_rotation)
        w = np.asarray(cfg.kind_weights, np.float64)
        if self.paste is None:
            w[2] = 0.0
        self.kind_p = w / w.sum() if w.sum() > 0 else None

    def augment(self, image: np.ndarray, people: FramePeople, rng: np.random.Generator) -> AugmentedFrame:
        h, w = image.shape[:2]
        a = geometry((w, h), rng, self.cfg.flip_prob, self.cfg.zoom_range)
        out = cv2.warpAffine(image, cv2_matrix(a), (w, h), flags=cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_CONSTANT, borderValue=(PAD_VALUE,) * 3)
        people = move_people(people, a, (w, h), self.skeleton.flip_index)
        clean = out.copy()
        pasted = []
        if self.kind_p is not None:
            for i in range(len(people)):
                if rng.random() >= self.cfg.occlude_prob:
                    continue
                kind = int(rng.choice(3, p=self.kind_p))
                n = int(rng.integers(1, self.cfg.paste_max_instances + 1)) if kind == 2 else 1
                for _ in range(n):
                    pasted += self._occlude(out, people, i, kind, rng)
        if pasted:
            people = people.concat(FramePeople(np.stack([p[0] for p in pasted]), np.stack([p[1] for p in pasted]),
                                               np.ones(len(pasted), bool)))
        changed = (out != clean).any(-1)
        occluded = _at(changed, people.keypoints) & (people.keypoints[..., 2] > 0)
        return AugmentedFrame(out, people, occluded, a)

    def _occlude(self, image: np.ndarray, people: FramePeople, i: int, kind: int,
                 rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray]]:
        """Occlude person i in place; returns the pasted people [(keypoints float32[K, 3], box float32[4])]."""
        kp = people.keypoints[i].copy()
        kp[:, 2] = np.where(kp[:, 2] > 0, 2.0, 0.0)  # the steps choose among visible (v = 2) joints
        sample = Sample(image=image, keypoints=kp, others=np.zeros((0,) + kp.shape, np.float32),
                        box=people.boxes[i].copy())
        step = (self.mask, self.lja, self.paste)[kind]
        step(sample, rng)  # draws on ``image`` in place
        if kind != 2 or not sample.log:
            return []
        record = sample.log[-1]
        if not isinstance(record, PasteRecord) or len(sample.others) == 0:
            return []
        ys, xs = np.nonzero(record.mask)
        box = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32)
        new = sample.others[-1].astype(np.float32).copy()
        new[:, 2] = (new[:, 2] > 0).astype(np.float32)
        return [(new, box)]


def _at(mask: np.ndarray, keypoints: np.ndarray) -> np.ndarray:
    """bool[M, K]: whether each joint's pixel is set in mask bool[H, W] (False off the image)."""
    h, w = mask.shape
    xs = np.floor(keypoints[..., 0]).astype(np.int64)
    ys = np.floor(keypoints[..., 1]).astype(np.int64)
    ok = (xs >= 0) & (xs < w) & (ys >= 0) & (ys < h)
    out = np.zeros(keypoints.shape[:-1], bool)
    out[ok] = mask[ys[ok], xs[ok]]
    return out
