"""Keypoint AP on still images, raw detector output against the same poses through the tracker.

Three result sets are scored with pycocotools (OKS keypoint AP) on a COCO keypoint annotation file:

* ``raw``: the detector's poses as they are;
* ``tracked``: each image given alone to a fresh tracker (a single photo);
* ``sequence``: all images through one tracker in file order, as ``occlupose process FOLDER`` feeds
  an image folder (unrelated images as consecutive frames: smoothing must not blend them).
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from posecore.errors import OccluposeError
from posecore.pose_score import pose_results
from posecore.types import Poses, Track
from trackers.tracker import Tracker, TrackerConfig


@dataclass
class StillImageAP:
    """OKS keypoint AP (COCO AP@[.5:.95]) of each result set, and what was scored."""

    annotations: str
    images: int
    people: int
    raw: float
    tracked: float
    sequence: float


def _pose_results(image_id: int, poses: Poses) -> list[dict]:
    return pose_results(image_id, poses.scores, poses.keypoints)


def _track_results(image_id: int, tracks: list[Track]) -> list[dict]:
    return pose_results(image_id, [t.score for t in tracks], [t.keypoints for t in tracks])


def _keypoint_ap(coco, results: list[dict], image_ids: list[int]) -> float:
    from pycocotools.cocoeval import COCOeval

    if not results:
        return 0.0
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress
        dt = coco.loadRes(results)
        ev = COCOeval(coco, dt, "keypoints")
        ev.params.imgIds = image_ids
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return float(ev.stats[0])


def still_image_ap(annotations: str | Path, estimate, tracker_config: TrackerConfig | None = None,
                   images: str | Path | None = None) -> StillImageAP:
    """Score the three result sets on the images of ``annotations`` that have keypoint labels.

    estimate(image) -> Poses for a BGR image; images: folder of the image files (default: the
    annotation file's folder).
    """
    from pycocotools.coco import COCO

    ann_path = Path(annotations)
    folder = Path(images) if images else ann_path.parent
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(ann_path))
    ids = sorted({a["image_id"] for a in coco.dataset.get("annotations", []) if a.get("num_keypoints", 0) > 0})
    if not ids:
        raise OccluposeError(f"{ann_path}: no person with keypoints to score")
    raw, tracked, sequence = [], [], []
    sequence_tracker = Tracker(tracker_config)
    for frame, image_id in enumerate(ids):
        info = coco.imgs[image_id]
        path = folder / info["file_name"]
        image = cv2.imread(str(path))
        if image is None:
            raise OccluposeError(f"cannot read image {path} (pass the image folder with --coco-images)")
        poses = estimate(image)
        raw += _pose_results(image_id, poses)
        tracked += _track_results(image_id, Tracker(tracker_config).update(poses, 0))
        sequence += _track_results(image_id, sequence_tracker.update(poses, frame))
    people = sum(1 for a in coco.dataset["annotations"] if a.get("num_keypoints", 0) > 0 and a["image_id"] in ids)
    return StillImageAP(str(ann_path), len(ids), people, _keypoint_ap(coco, raw, ids),
                        _keypoint_ap(coco, tracked, ids), _keypoint_ap(coco, sequence, ids))
