"""Keypoint AP on the real samples: the ground truth scores 1, a perturbation scores what pycocotools says."""

from __future__ import annotations

import contextlib
import copy
import io

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from posecore.skeleton import COCO17, CROWDPOSE14
from train.datasets import load_detections, open_annotations
from train.evaluate import evaluate_keypoints, gt_as_results, oks_nms, visibility_subset

CASES = [("coco", COCO17, "coco"), ("ochuman", COCO17, "coco"), ("crowdpose", CROWDPOSE14, "crowdpose")]


def perturbed(gt: dict, noise: float, seed: int = 0) -> list[dict]:
    """Ground truth with every joint moved by N(0, noise x box height) and random scores."""
    rng = np.random.default_rng(seed)
    out = gt_as_results(gt)
    heights = {a["image_id"]: [] for a in gt["annotations"]}
    for a in gt["annotations"]:
        heights[a["image_id"]].append(a["bbox"][3])
    for r in out:
        kp = np.asarray(r["keypoints"]).reshape(-1, 3)
        kp[:, :2] += rng.normal(0, noise * np.mean(heights[r["image_id"]]), (len(kp), 2))
        r["keypoints"] = kp.reshape(-1).tolist()
        r["score"] = float(rng.uniform(0.3, 1.0))
    return out


def direct_pycocotools_ap(gt: dict, results: list[dict], sigmas, crowdpose: bool) -> float:
    """AP straight from pycocotools; for CrowdPose with crowdposetools' settings (0.53 x box area as
    the scale, 20 people per image, one area range)."""
    gt = copy.deepcopy(gt)
    for a in gt["annotations"]:
        if crowdpose:
            a["area"] = a["bbox"][2] * a["bbox"][3] * 0.53
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = gt
        coco.createIndex()
        ev = COCOeval(coco, coco.loadRes(copy.deepcopy(results)), "keypoints")
        ev.params.kpt_oks_sigmas = np.asarray(sigmas)
        if crowdpose:
            ev.params.maxDets, ev.params.areaRng, ev.params.areaRngLbl = [20], [[0, 1e10]], ["all"]
        ev.evaluate()
        ev.accumulate()
    p = ev.eval["precision"][:, :, 0, 0, -1]
    return float(p[p > -1].mean())


@pytest.mark.parametrize("name,skeleton,kind", CASES)
def test_ground_truth_scores_one(name, skeleton, kind, load_gt):
    gt = load_gt(name)
    metrics = evaluate_keypoints(gt, gt_as_results(gt), skeleton.sigmas, kind)
    assert metrics["AP"] == pytest.approx(1.0)
    assert metrics["AR"] == pytest.approx(1.0)
    # Every sample has both visible and occluded joints, so both splits are defined and perfect.
    assert metrics["visible.AP"] == pytest.approx(1.0)
    assert metrics["occluded.AP"] == pytest.approx(1.0)
    if kind == "crowdpose":
        levels = [metrics[k] for k in ("AP_easy", "AP_medium", "AP_hard")]
        indices = [img["crowdIndex"] for img in gt["images"]]
        # The levels that hold an image score 1; the others are undefined.
        for (lo, hi), value in zip(((0, 0.2), (0.2, 0.8), (0.8, 9)), levels):
            has = any(lo <= c < hi for c in indices)
            assert (value == pytest.approx(1.0)) if has else np.isnan(value)


@pytest.mark.parametrize("name,skeleton,kind", CASES)
def test_perturbation_matches_direct_pycocotools(name, skeleton, kind, load_gt):
    gt = load_gt(name)
    results = perturbed(gt, noise=0.04)
    metrics = evaluate_keypoints(gt, results, skeleton.sigmas, kind, visibility_split=False)
    assert metrics["AP"] < 0.95
    assert metrics["AP"] == pytest.approx(direct_pycocotools_ap(gt, results, skeleton.sigmas, kind == "crowdpose"),
                                          abs=1e-9)


def test_visible_split_is_pycocotools_on_visible_joints(load_gt):
    gt = load_gt("coco")
    results = perturbed(gt, noise=0.03, seed=1)
    metrics = evaluate_keypoints(gt, results, COCO17.sigmas, "coco")
    # Every labelled person of the sample has visible joints, so no result leaves the visible split.
    direct = direct_pycocotools_ap(visibility_subset(gt, 2), results, COCO17.sigmas, False)
    assert metrics["visible.AP"] == pytest.approx(direct, abs=1e-9)
    # Moving only the occluded joints far away leaves the visible AP and ruins the occluded AP.
    moved = gt_as_results(gt)  # one result per labelled person, in annotation order
    for r, a in zip(moved, [a for a in gt["annotations"] if any(v > 0 for v in a["keypoints"][2::3])]):
        kp = np.asarray(r["keypoints"]).reshape(-1, 3)
        flags = np.asarray(a["keypoints"]).reshape(-1, 3)[:, 2]
        kp[flags == 1, :2] += 80.0
        r["keypoints"] = kp.reshape(-1).tolist()
    m2 = evaluate_keypoints(gt, moved, COCO17.sigmas, "coco")
    assert m2["visible.AP"] == pytest.approx(1.0)
    assert m2["occluded.AP"] < 0.2


def test_empty_results_score_zero(load_gt):
    gt = load_gt("coco")
    assert evaluate_keypoints(gt, [], COCO17.sigmas, "coco", visibility_split=False)["AP"] == 0.0


def test_oks_nms_drops_duplicates_keeps_distinct(load_gt):
    gt = load_gt("coco")
    people = [a for a in gt["annotations"] if a["image_id"] == 197388 and a["num_keypoints"] > 0]
    kpts = np.asarray([a["keypoints"] for a in people], np.float64).reshape(len(people), -1, 3)
    areas = np.asarray([a["area"] for a in people])
    dup = np.concatenate([kpts, kpts[:1] + [1.0, 1.0, 0.0]])
    scores = np.concatenate([np.linspace(0.9, 0.5, len(people)), [0.95]])
    keep = oks_nms(dup, scores, np.concatenate([areas, areas[:1]]), COCO17.sigmas, 0.9)
    assert sorted(keep) == list(range(1, len(people) + 1))  # the better-scored copy replaces person 0


def test_detection_file_loads_boxes_of_known_images(sample_paths):
    fmt, ann_file, img_dir = sample_paths("coco")
    ann = open_annotations(fmt, ann_file, img_dir)
    det_file = ann_file.parent / "test_coco_det_AP_H_56.json"
    dets = load_detections(det_file, set(ann.image_ids()), score_thr=0.5)
    assert dets and all(d.score >= 0.5 and d.image_id in ann.image_ids() for d in dets)
    assert all(d.keypoints is None and d.box[2] > 0 for d in dets)
