"""Occlusion augmentations on the crop: DAG's mask joints and instance paste, and limb joint augmentation.

All three run after :class:`~train.transforms.geometry.AffineCrop`, in crop pixels, and size their blocks
from the target's box in the crop. A visible joint (v = 2) that ends up under a block or a pasted person
is re-labelled as occluded (v = 1) when ``relabel_occluded`` is set; its location stays a training target.
Each step appends a record of what it did to ``sample.log``.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import cv2
import numpy as np
from pycocotools import mask as mask_utils

from posecore.skeleton import Skeleton

from ..datasets.base import PoolInstance
from .base import Sample
from .geometry import transform_points

_LIMB_WORDS = ("shoulder", "elbow", "wrist", "hip", "knee", "ankle")
# BGR ImageNet mean, for the "mean" fill.
_MEAN_BGR = (104, 116, 124)


@dataclass(frozen=True)
class BlockRecord:
    """A rectangle drawn over the crop: pixels [x1, x2) x [y1, y2), chosen for ``joint``."""

    kind: str  # "mask_joints" or "limb_joints"
    joint: int
    rect: tuple[int, int, int, int]
    value: tuple[int, int, int] | None  # the fill colour (BGR), None for noise


@dataclass(frozen=True)
class PasteRecord:
    """The pixels covered by pasted people (bool[H, W]) and the pool indices pasted."""

    mask: np.ndarray
    instances: tuple[int, ...]


def limb_joints(skeleton: Skeleton) -> np.ndarray:
    """int64 indices of the limb joints (shoulders, elbows, wrists, hips, knees, ankles)."""
    return np.asarray([i for i, n in enumerate(skeleton.joints) if any(w in n for w in _LIMB_WORDS)], np.int64)


def _rect_around(x: float, y: float, w: float, h: float, size: tuple[int, int],
                 offset: tuple[float, float] = (0.5, 0.5)) -> tuple[int, int, int, int] | None:
    """Integer pixel rectangle of about w x h that contains pixel (round(x), round(y)), clipped to size.

    ``offset`` places the joint inside it: (0.5, 0.5) is the centre.
    """
    cx, cy = int(round(x)), int(round(y))
    wi, hi = max(1, int(round(w))), max(1, int(round(h)))
    x1 = cx - min(wi - 1, int(math.floor(offset[0] * wi)))
    y1 = cy - min(hi - 1, int(math.floor(offset[1] * hi)))
    x1c, y1c = max(0, x1), max(0, y1)
    x2c, y2c = min(size[0], x1 + wi), min(size[1], y1 + hi)
    if x2c <= x1c or y2c <= y1c:
        return None
    return x1c, y1c, x2c, y2c


def _covered(keypoints: np.ndarray, covered: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> np.ndarray:
    """bool[K]: visible joints whose pixel the predicate marks as covered."""
    vis = keypoints[:, 2] == 2
    xs = np.round(keypoints[:, 0]).astype(np.int64)
    ys = np.round(keypoints[:, 1]).astype(np.int64)
    out = np.zeros(len(keypoints), bool)
    if vis.any():
        out[vis] = covered(xs[vis], ys[vis])
    return out


def _relabel_under_rects(sample: Sample, rects: Sequence[tuple[int, int, int, int]]) -> None:
    def inside(xs, ys):
        hit = np.zeros(len(xs), bool)
        for x1, y1, x2, y2 in rects:
            hit |= (xs >= x1) & (xs < x2) & (ys >= y1) & (ys < y2)
        return hit

    under = _covered(sample.keypoints, inside)
    sample.keypoints[under, 2] = 1.0


def _fill(image: np.ndarray, rect: tuple[int, int, int, int], mode: str, rng: np.random.Generator):
    x1, y1, x2, y2 = rect
    if mode == "noise":
        image[y1:y2, x1:x2] = rng.integers(0, 256, size=(y2 - y1, x2 - x1, image.shape[2]), dtype=np.uint8)
        return None
    if mode == "random":
        value = tuple(int(v) for v in rng.integers(0, 256, size=3))
    elif mode == "mean":
        value = _MEAN_BGR
    else:
        value = (0, 0, 0)
    image[y1:y2, x1:x2] = value
    return value


class MaskJoints:
    """DAG mask joints: with probability ``prob`` hide 1..``max_joints`` labelled joints under rectangles.

    Each rectangle's sides are ``size_range`` fractions of the box's sides; the joint lies at a random
    place inside its rectangle.
    """

    def __init__(self, prob: float = 0.5, max_joints: int = 3, size_range: Sequence[float] = (0.05, 0.25),
                 fill: str = "random", relabel_occluded: bool = True):
        self.prob, self.max_joints = prob, max_joints
        self.size_range = (float(size_range[0]), float(size_range[1]))
        self.fill, self.relabel = fill, relabel_occluded

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        if rng.random() >= self.prob:
            return sample
        labelled = np.flatnonzero(sample.keypoints[:, 2] > 0)
        if len(labelled) == 0:
            return sample
        n = int(rng.integers(1, min(self.max_joints, len(labelled)) + 1))
        chosen = rng.choice(labelled, size=n, replace=False)
        bw, bh = sample.box_size()
        size = (sample.image.shape[1], sample.image.shape[0])
        rects = []
        for j in chosen:
            w = rng.uniform(*self.size_range) * bw
            h = rng.uniform(*self.size_range) * bh
            x, y = sample.keypoints[j, :2]
            rect = _rect_around(x, y, w, h, size, offset=(rng.random(), rng.random()))
            if rect is None:
                continue
            value = _fill(sample.image, rect, self.fill, rng)
            rects.append(rect)
            sample.log.append(BlockRecord("mask_joints", int(j), rect, value))
        if self.relabel:
            _relabel_under_rects(sample, rects)
        return sample


class LimbJointAugmentation:
    """LJA: ceil(ratio x visible limb joints) limb joints, each under one block of ``block`` x the box's
    height and width, centred on the joint and filled with one random value in [0, 255]."""

    def __init__(self, skeleton: Skeleton, prob: float = 1.0, ratio: float = 0.15, block: float = 0.20,
                 relabel_occluded: bool = True):
        self.limbs = limb_joints(skeleton)
        self.prob, self.ratio, self.block, self.relabel = prob, ratio, block, relabel_occluded

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        if rng.random() >= self.prob:
            return sample
        visible = self.limbs[sample.keypoints[self.limbs, 2] == 2]
        if len(visible) == 0:
            return sample
        n = min(len(visible), int(math.ceil(self.ratio * len(visible))))
        chosen = rng.choice(visible, size=n, replace=False)
        bw, bh = sample.box_size()
        size = (sample.image.shape[1], sample.image.shape[0])
        rects = []
        for j in chosen:
            x, y = sample.keypoints[j, :2]
            rect = _rect_around(x, y, self.block * bw, self.block * bh, size)
            if rect is None:
                continue
            v = int(rng.integers(0, 256))
            x1, y1, x2, y2 = rect
            sample.image[y1:y2, x1:x2] = v
            rects.append(rect)
            sample.log.append(BlockRecord("limb_joints", int(j), rect, (v, v, v)))
        if self.relabel:
            _relabel_under_rects(sample, rects)
        return sample


def segmentation_mask(segmentation, height: int, width: int) -> np.ndarray:
    """uint8[H, W] 0/1 mask of a COCO polygon list or RLE (compressed or not)."""
    if isinstance(segmentation, list):
        polys = [p for p in segmentation if isinstance(p, list) and len(p) >= 6]
        if not polys:
            return np.zeros((height, width), np.uint8)
        rle = mask_utils.merge(mask_utils.frPyObjects(polys, height, width))
    elif isinstance(segmentation, dict) and isinstance(segmentation.get("counts"), list):
        rle = mask_utils.frPyObjects(segmentation, height, width)
    elif isinstance(segmentation, dict):
        rle = dict(segmentation)
        if isinstance(rle["counts"], str):
            rle["counts"] = rle["counts"].encode("ascii")
    else:
        return np.zeros((height, width), np.uint8)
    m = mask_utils.decode(rle)
    if m.shape[:2] != (height, width):  # an RLE made for another image size is unusable
        return np.zeros((height, width), np.uint8)
    return m.reshape(height, width).astype(np.uint8)


@dataclass(frozen=True)
class Cutout:
    """A person cut out of its image: pixels uint8[h, w, 3] BGR, mask uint8[h, w], keypoints float32[K, 3]."""

    pixels: np.ndarray
    mask: np.ndarray
    keypoints: np.ndarray


class InstancePool:
    """People that can be pasted, read lazily from their images and kept in a small per-worker cache."""

    def __init__(self, instances: Sequence[PoolInstance], image_path: Callable[[int], Path], min_area: float = 1024.0,
                 min_keypoints: int = 5, pool_size: int | None = None, cache_size: int = 64):
        kept = [p for p in instances
                if float(p.box[2] * p.box[3]) >= min_area and int((p.keypoints[:, 2] > 0).sum()) >= min_keypoints]
        self.instances = kept[:pool_size] if pool_size else kept
        self.image_path = image_path
        self.cache_size = cache_size
        self._cache: OrderedDict[int, Cutout | None] = OrderedDict()

    def __len__(self) -> int:
        return len(self.instances)

    def get(self, index: int) -> Cutout | None:
        if index in self._cache:
            self._cache.move_to_end(index)
            return self._cache[index]
        cut = self._cut(self.instances[index])
        if self.cache_size:
            self._cache[index] = cut
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return cut

    def _cut(self, inst: PoolInstance) -> Cutout | None:
        image = cv2.imread(str(self.image_path(inst.image_id)), cv2.IMREAD_COLOR)
        if image is None:
            return None
        h, w = image.shape[:2]
        mask = segmentation_mask(inst.segmentation, h, w)
        ys, xs = np.nonzero(mask)
        if len(xs) < 16:
            return None
        x1, x2, y1, y2 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
        kpts = inst.keypoints.copy()
        kpts[:, 0] -= x1
        kpts[:, 1] -= y1
        return Cutout(image[y1:y2, x1:x2].copy(), mask[y1:y2, x1:x2].copy(), kpts)


class InstancePaste:
    """DAG instance paste: 1..``max_instances`` people from the pool, turned by +-``rotation`` degrees and
    scaled to ``scale_range`` x the target's box height, pasted with their centre inside the target's box.

    The target's visible joints under a pasted person become occluded; the pasted people's labelled joints
    join ``sample.others`` (they are people in the crop for the multi-person heatmaps).
    """

    def __init__(self, pool: InstancePool, prob: float = 0.5, max_instances: int = 2,
                 scale_range: Sequence[float] = (0.5, 1.1), rotation: float = 30.0, relabel_occluded: bool = True):
        self.pool = pool
        self.prob, self.max_instances = prob, max_instances
        self.scale_range = (float(scale_range[0]), float(scale_range[1]))
        self.rotation, self.relabel = rotation, relabel_occluded

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        if len(self.pool) == 0 or rng.random() >= self.prob:
            return sample
        h, w = sample.image.shape[:2]
        union = np.zeros((h, w), bool)
        pasted, new_people = [], []
        own = (sample.meta.get("image_id"), sample.meta.get("ann_id"))
        for _ in range(int(rng.integers(1, self.max_instances + 1))):
            index = int(rng.integers(len(self.pool)))
            inst = self.pool.instances[index]
            if (inst.image_id, inst.ann_id) == own:
                continue
            cut = self.pool.get(index)
            if cut is None:
                continue
            m = self._placement(cut, sample, rng)
            pix = cv2.warpAffine(cut.pixels, m, (w, h), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0))
            cover = cv2.warpAffine(cut.mask, m, (w, h), flags=cv2.INTER_NEAREST, borderValue=0) > 0
            if not cover.any():
                continue
            sample.image[cover] = pix[cover]
            union |= cover
            kp = cut.keypoints.copy()
            kp[:, :2] = transform_points(kp[:, :2], m)
            inside = (kp[:, 0] >= 0) & (kp[:, 0] <= w - 1) & (kp[:, 1] >= 0) & (kp[:, 1] <= h - 1)
            kp[:, 2] = np.where(inside, kp[:, 2], 0.0)
            new_people.append(kp)
            pasted.append(index)
        if not pasted:
            return sample
        if self.relabel:
            under = _covered(sample.keypoints, lambda xs, ys: _pixels(union, xs, ys))
            sample.keypoints[under, 2] = 1.0
        sample.others = np.concatenate([sample.others.reshape(-1, *sample.keypoints.shape),
                                        np.stack(new_people).astype(np.float32)])
        sample.log.append(PasteRecord(union, tuple(pasted)))
        return sample

    def _placement(self, cut: Cutout, sample: Sample, rng: np.random.Generator) -> np.ndarray:
        """float32[2, 3] from cut-out pixels to crop pixels: scale, turn, centre inside the target's box."""
        ph, pw = cut.mask.shape
        _, bh = sample.box_size()
        s = rng.uniform(*self.scale_range) * max(bh, 1.0) / ph
        angle = rng.uniform(-self.rotation, self.rotation)
        m = cv2.getRotationMatrix2D((pw * 0.5, ph * 0.5), angle, s)
        x1, y1, x2, y2 = sample.box
        h, w = sample.image.shape[:2]
        px = rng.uniform(max(0.0, x1), max(min(w - 1.0, x2), max(0.0, x1)))
        py = rng.uniform(max(0.0, y1), max(min(h - 1.0, y2), max(0.0, y1)))
        m[:, 2] += (px - pw * 0.5, py - ph * 0.5)
        return m.astype(np.float32)


def _pixels(mask: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """mask[ys, xs] where inside the mask, False outside."""
    h, w = mask.shape
    ok = (xs >= 0) & (xs < w) & (ys >= 0) & (ys < h)
    out = np.zeros(len(xs), bool)
    out[ok] = mask[ys[ok], xs[ok]]
    return out
