"""PoseTrack18 frames (COCO-like files) scored as COCO keypoints on the joints both define alike.

PoseTrack18's files use COCO's 17 slots with their own joints: the eye slots (1, 2) hold head_bottom and
head_top, the ear slots (3, 4) are never labelled, and the other 13 (nose, shoulders ... ankles) are
COCO's joints. Our poses fill the slots with COCO's joints, so only those 13 are scored: the ground truth's
other slots become unlabelled (v = 0), which pycocotools' OKS leaves out of each person's mean.

Its flag 1 means "labelled" (the files mark no occlusion), so there is no visible / occluded split; and
its boxes carry no mask area, so the OKS scale is 0.53 x the box area, crowdposetools' rule for boxes.
Frames have ignore regions (polygons round unlabelled people): as PoseTrack's own evaluation (poseval)
drops predicted joints that fall in them, a predicted person whose 13 scored joints all lie in them is
dropped.
"""

from __future__ import annotations

import copy

import cv2
import numpy as np

from .base import DatasetError

# COCO-17 slots that hold the same joint in PoseTrack18: the nose and the 12 body joints.
SHARED_SLOTS = np.array([0, *range(5, 17)])
BOX_AREA_FACTOR = 0.53


def posetrack_as_coco(gt: dict) -> dict:
    """A copy of a PoseTrack18 ground-truth dict with only ``SHARED_SLOTS`` labelled and COCO's fields."""
    out = copy.deepcopy(gt)
    drop = np.setdiff1d(np.arange(17), SHARED_SLOTS)
    for ann in out["annotations"]:
        kp = np.asarray(ann.get("keypoints", []), np.float64)
        if kp.size != 51:
            raise DatasetError(f"PoseTrack annotation {ann.get('id')}: {kp.size} keypoint numbers, expected 51")
        kp = kp.reshape(17, 3)
        kp[drop] = 0.0
        ann["keypoints"] = kp.reshape(-1).tolist()
        ann["num_keypoints"] = int((kp[:, 2] > 0).sum())
        if len(ann.get("bbox") or ()) != 4:
            raise DatasetError(f"PoseTrack annotation {ann.get('id')}: no bbox [x, y, w, h] to scale its OKS by")
        ann["area"] = BOX_AREA_FACTOR * float(ann["bbox"][2] * ann["bbox"][3])
        ann["iscrowd"] = int(bool(ann.get("iscrowd", 0)))
    return out


def ignore_regions(image: dict) -> list[np.ndarray]:
    """float32[P, 2] polygons of one PoseTrack image entry (``ignore_regions_x`` / ``_y``)."""
    xs, ys = image.get("ignore_regions_x") or [], image.get("ignore_regions_y") or []
    return [np.stack([np.asarray(x, np.float32), np.asarray(y, np.float32)], -1)
            for x, y in zip(xs, ys) if len(x) >= 3 and len(x) == len(y)]


def in_ignore_regions(keypoints: np.ndarray, regions: list[np.ndarray]) -> bool:
    """Whether every joint of float[K, 2+] ``keypoints`` lies inside one of ``regions`` (any one)."""
    if not regions:
        return False
    inside = np.zeros(len(keypoints), bool)
    for poly in regions:
        contour = poly.reshape(-1, 1, 2)
        inside |= [cv2.pointPolygonTest(contour, (float(x), float(y)), False) >= 0 for x, y in keypoints[:, :2]]
    return bool(inside.all())
