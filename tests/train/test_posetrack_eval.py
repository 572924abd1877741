"""PoseTrack18 frames in the quality evaluation: only the joints that mean the same as COCO's are scored."""

from __future__ import annotations

import cv2
import numpy as np

from posecore.types import Poses
from tests.conftest import shared_path
from train.config import HeldOutSplit
from train.datasets.posetrack import SHARED_SLOTS
from train.evaluate import gt_as_results
from train.pipeline_eval import load_heldout

POSETRACK = ("images_multi", "mmpose_posetrack18")


def _set():
    split = HeldOutSplit(name="posetrack", format="posetrack",
                         ann_file=shared_path(*POSETRACK, "annotations", "test_posetrack18_val.json"),
                         img_dir=shared_path(*POSETRACK))
    return load_heldout([split])[0]


def _shifted(result: dict, pixels: float, slots) -> list[float]:
    kp = np.asarray(result["keypoints"], np.float64).reshape(17, 3)
    kp[slots, :2] += pixels
    return kp.reshape(-1).tolist()


def test_head_slots_and_ears_are_not_scored_and_body_joints_are():
    hs = _set()
    assert hs.people == 14 and len(hs.paths) == 3 and all(p.exists() for p in hs.paths.values())
    for ann in hs.gt["annotations"]:
        kp = np.asarray(ann["keypoints"]).reshape(17, 3)
        assert (kp[1:5] == 0).all() and ann["num_keypoints"] == int((kp[:, 2] > 0).sum()) > 0
    truth = gt_as_results(hs.gt)
    assert hs.evaluate(truth)["AP"] == 1.0
    # head_bottom / head_top in the eye slots are not eyes: where a pose puts its eyes does not matter ...
    scores = hs.evaluate([dict(r, keypoints=_shifted(r, 300, [1, 2, 3, 4])) for r in truth])
    assert scores["AP"] == 1.0
    # ... the body joints do, and PoseTrack flags no occlusion, so there is no visible / occluded split.
    assert hs.evaluate([dict(r, keypoints=_shifted(r, 60, SHARED_SLOTS)) for r in truth])["AP"] < 0.5
    assert "visible.AP" not in scores and "occluded.AP" not in scores


def test_a_person_found_in_an_ignore_region_is_dropped_and_one_outside_is_kept():
    hs = _set()
    image_id, regions = next((i, r) for i, r in hs.ignore.items() if r)
    poly = max(regions, key=lambda p: np.ptp(p, 0).prod())
    lo, hi = poly.min(0), poly.max(0)
    inside = None
    for y in np.linspace(lo[1], hi[1], 25):  # a point of the polygon, found on a grid over its box
        for x in np.linspace(lo[0], hi[0], 25):
            if cv2.pointPolygonTest(poly.reshape(-1, 1, 2), (float(x), float(y)), True) > 3:
                inside = (x, y)
                break
        if inside:
            break
    assert inside is not None
    kp = np.zeros((2, 17, 3), np.float32)
    kp[0, :, :2] = inside
    kp[0, :, 2] = 0.9
    kp[1] = np.asarray(next(a["keypoints"] for a in hs.gt["annotations"] if a["image_id"] == image_id)).reshape(17, 3)
    poses = Poses(np.zeros((2, 4)), np.array([0.9, 0.8]), kp)
    kept = hs.results(poses, image_id)
    assert len(kept) == 1 and kept[0]["score"] == np.float32(0.8)
