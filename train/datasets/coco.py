"""COCO person keypoints (and any COCO-format keypoint file with a known skeleton)."""

from __future__ import annotations

from .base import KeypointAnnotations


class CocoKeypoints(KeypointAnnotations):
    """``person_keypoints_*.json`` with its image folder; 17 joints, polygon or RLE segmentations."""

    default_skeleton = "coco17"
    name = "coco"
