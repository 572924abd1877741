"""Keypoint datasets on disk (COCO, CrowdPose, OCHuman) and the top-down torch datasets built on them."""

from __future__ import annotations

from .base import DatasetError, DatasetReport, ImageRecord, KeypointAnnotations, PersonRecord, PoolInstance, \
    load_detections
from .coco import CocoKeypoints
from .crowdpose import CROWD_LEVELS, CrowdPoseKeypoints
from .ochuman import OCHumanKeypoints

FORMATS: dict[str, type[KeypointAnnotations]] = {
    "coco": CocoKeypoints,
    "crowdpose": CrowdPoseKeypoints,
    "ochuman": OCHumanKeypoints,
}


def open_annotations(fmt: str, ann_file, img_dir, skeleton: str = "", max_people: int | None = None,
                     check_files: bool = True) -> KeypointAnnotations:
    """Read one split in its native format; ``skeleton`` overrides the format's own."""
    try:
        cls = FORMATS[fmt]
    except KeyError:
        raise DatasetError(f"unknown dataset format {fmt!r}; choose one of {sorted(FORMATS)}") from None
    return cls(ann_file, img_dir, skeleton or None, max_people=max_people, check_files=check_files)


__all__ = [
    "CROWD_LEVELS", "CocoKeypoints", "CrowdPoseKeypoints", "DatasetError", "DatasetReport", "FORMATS",
    "ImageRecord", "KeypointAnnotations", "OCHumanKeypoints", "PersonRecord", "PoolInstance",
    "load_detections", "open_annotations",
]
