"""Keypoint AP/AR of COCO-format results: COCO and OCHuman, CrowdPose, and visible/occluded splits.

* COCO, OCHuman and any COCO-format set: pycocotools' ``COCOeval`` with the skeleton's OKS sigmas.
* CrowdPose: faster-coco-eval's ``keypoints_crowd`` mode, which follows crowdposetools (its 14 sigmas,
  0.53 x box area as the object scale, 20 people per image, AP easy / medium / hard by crowd index).
* Visible and occluded joints separately (the visibility paper's Table 3): the same evaluator on a copy of
  the ground truth that keeps only v = 2 (or only v = 1) joints; people left with none are ignored.

Results are COCO result dicts: ``image_id``, ``category_id``, ``keypoints`` (K x (x, y, score)), ``score``.
"""

from __future__ import annotations

import contextlib
import copy
import io
import math
from typing import Iterable, Literal, Sequence

import numpy as np

from posecore.oks import keypoint_similarity

EvalKind = Literal["coco", "crowdpose"]

COCO_NAMES = ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl")
CROWDPOSE_NAMES = ("AP", "AP50", "AP75", "AR", "AR50", "AR75", "AP_easy", "AP_medium", "AP_hard")


def eval_kind(dataset_format: str) -> EvalKind:
    return "crowdpose" if dataset_format == "crowdpose" else "coco"


def _quiet():
    return contextlib.redirect_stdout(io.StringIO())


def _clean_results(gt: dict, results: Sequence[dict], num_joints: int) -> list[dict]:
    """Results of known images with K x 3 keypoints, as plain floats; category 1."""
    known = {int(img["id"]) for img in gt["images"]}
    out = []
    for r in results:
        if int(r["image_id"]) not in known:
            continue
        kp = np.asarray(r["keypoints"], np.float64).reshape(-1)
        if kp.size != 3 * num_joints:
            raise ValueError(f"result for image {r['image_id']}: {kp.size} keypoint numbers, expected {3 * num_joints}")
        out.append({"image_id": int(r["image_id"]), "category_id": int(r.get("category_id", 1)),
                    "keypoints": kp.tolist(), "score": float(r["score"])})
    return out


def _coco_stats(gt: dict, results: list[dict], sigmas: np.ndarray) -> dict[str, float]:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    if not results:
        return {name: 0.0 for name in COCO_NAMES}
    with _quiet():
        coco_gt = COCO()
        coco_gt.dataset = copy.deepcopy(gt)
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(copy.deepcopy(results))
        ev = COCOeval(coco_gt, coco_dt, "keypoints")
        ev.params.kpt_oks_sigmas = np.asarray(sigmas, np.float64)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    # -1 marks an area range with nobody in it.
    return {name: (float(v) if v >= 0 else math.nan) for name, v in zip(COCO_NAMES, ev.stats)}


def _crowdpose_stats(gt: dict, results: list[dict], sigmas: np.ndarray) -> dict[str, float]:
    from faster_coco_eval import COCO, COCOeval_faster

    if not results:
        return {name: 0.0 for name in CROWDPOSE_NAMES}
    gt = copy.deepcopy(gt)
    for img in gt["images"]:
        img.setdefault("crowdIndex", 0.0)
    with _quiet():
        coco_gt = COCO(gt)
        coco_dt = coco_gt.loadRes(copy.deepcopy(results))
        ev = COCOeval_faster(coco_gt, coco_dt, iouType="keypoints_crowd", kpt_oks_sigmas=list(map(float, sigmas)),
                             use_area=False, print_function=lambda *a, **k: None)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    stats = {name: float(v) for name, v in zip(CROWDPOSE_NAMES, ev.all_stats)}
    for level in ("AP_easy", "AP_medium", "AP_hard"):
        if stats[level] < 0:  # no image of that crowd level
            stats[level] = math.nan
    return stats


def visibility_subset(gt: dict, flag: int) -> dict:
    """A copy of the ground truth keeping only joints whose flag is ``flag``; ``num_keypoints`` recounted."""
    out = copy.deepcopy(gt)
    for ann in out["annotations"]:
        kp = np.asarray(ann.get("keypoints", []), np.float64).reshape(-1, 3)
        keep = kp[:, 2] == flag
        kp[~keep] = 0.0
        ann["keypoints"] = kp.reshape(-1).tolist()
        ann["num_keypoints"] = int(keep.sum())
    return out


def normalise_gt(gt: dict) -> dict:
    """A copy with the fields the evaluators read filled in where a COCO-like file leaves them out."""
    out = copy.deepcopy(gt)
    out.setdefault("categories", [{"id": 1, "name": "person"}])
    for i, ann in enumerate(out["annotations"]):
        ann.setdefault("id", i + 1)
        ann.setdefault("iscrowd", 0)
        ann.setdefault("category_id", 1)
        ann.setdefault("num_keypoints", int(sum(1 for v in ann.get("keypoints", [])[2::3] if v > 0)))
        if "area" not in ann and "bbox" in ann:
            ann["area"] = float(ann["bbox"][2] * ann["bbox"][3])
    return out


def evaluate_keypoints(gt: dict, results: Sequence[dict], sigmas: Sequence[float], kind: EvalKind = "coco",
                       visibility_split: bool = True) -> dict[str, float]:
    """AP/AR of ``results`` against the COCO-format ground truth dict ``gt``.

    Returns a flat dict: the evaluator's metrics (``AP``, ``AP50``, ...; NaN where a range holds nobody)
    and, with ``visibility_split``, the same under ``visible.`` and ``occluded.`` prefixes.
    """
    sigmas = np.asarray(sigmas, np.float64)
    gt = normalise_gt(gt)
    clean = _clean_results(gt, results, len(sigmas))
    stats_fn = _crowdpose_stats if kind == "crowdpose" else _coco_stats
    metrics = stats_fn(gt, clean, sigmas)
    if visibility_split:
        owner = _best_gt(gt, clean, sigmas, kind)
        for prefix, flag in (("visible", 2), ("occluded", 1)):
            metrics.update({f"{prefix}.{k}": v for k, v in _split_stats(gt, clean, owner, flag, sigmas, stats_fn).items()
                            if not k.startswith("AP_")})
    return metrics


def _split_stats(gt: dict, results: list[dict], owner: list[int | None], flag: int, sigmas: np.ndarray,
                 stats_fn) -> dict[str, float]:
    """Metrics on the joints flagged ``flag`` only, among the people who have such joints.

    A person without such joints leaves the evaluation together with the results whose best OKS match
    (on all joints) is that person; otherwise their results would count as false positives or take
    another person's match, and the ground truth itself would not score 1.
    """
    sub = visibility_subset(gt, flag)
    has = {a["id"]: a["num_keypoints"] > 0 for a in sub["annotations"]}
    if not any(has[a["id"]] and not a["iscrowd"] for a in sub["annotations"]):
        return {k: math.nan for k in (CROWDPOSE_NAMES if stats_fn is _crowdpose_stats else COCO_NAMES)}
    kept = [r for r, o in zip(results, owner) if o is None or has.get(o, True)]
    return stats_fn(sub, kept, sigmas)


def _best_gt(gt: dict, results: list[dict], sigmas: np.ndarray, kind: EvalKind) -> list[int | None]:
    """For each result, the id of the non-crowd labelled person it matches best by OKS (None if no OKS > 0)."""
    by_image: dict[int, list[dict]] = {}
    for ann in gt["annotations"]:
        if not ann["iscrowd"] and ann["num_keypoints"] > 0:
            by_image.setdefault(int(ann["image_id"]), []).append(ann)
    out: list[int | None] = []
    for r in results:
        anns = by_image.get(r["image_id"], [])
        if not anns:
            out.append(None)
            continue
        det = np.asarray(r["keypoints"], np.float64).reshape(-1, 3)
        scores = []
        for ann in anns:
            g = np.asarray(ann["keypoints"], np.float64).reshape(-1, 3)
            vis = g[:, 2] > 0
            area = ann["bbox"][2] * ann["bbox"][3] * 0.53 if kind == "crowdpose" else ann["area"]
            d2 = ((det[:, :2] - g[:, :2]) ** 2).sum(-1)
            scores.append(float(keypoint_similarity(d2, area + np.spacing(1), sigmas, vis)[0]))
        best = int(np.argmax(scores))
        out.append(anns[best]["id"] if scores[best] > 0 else None)
    return out


def gt_as_results(gt: dict) -> list[dict]:
    """Every labelled, non-crowd ground-truth person as a result with score 1 (an evaluator's upper bound)."""
    out = []
    for ann in gt["annotations"]:
        if ann.get("iscrowd", 0) or not any(v > 0 for v in ann["keypoints"][2::3]):
            continue
        kp = np.asarray(ann["keypoints"], np.float64).reshape(-1, 3).copy()
        kp[:, 2] = 1.0
        out.append({"image_id": ann["image_id"], "category_id": 1, "keypoints": kp.reshape(-1).tolist(),
                    "score": 1.0})
    return out


def oks(kpts: np.ndarray, others: np.ndarray, area: float, other_areas: np.ndarray, sigmas: np.ndarray) -> np.ndarray:
    """OKS of one pose float[K, 3] against float[N, K, 3] poses, with the mean of the two areas as scale."""
    d2 = ((others[..., :2] - kpts[None, :, :2]) ** 2).sum(-1)
    return keypoint_similarity(d2, (area + other_areas) / 2 + np.spacing(1), sigmas)[0]


def oks_nms(kpts: np.ndarray, scores: np.ndarray, areas: np.ndarray, sigmas: Sequence[float], thr: float) -> list[int]:
    """Indices kept by greedy OKS non-maximum suppression (HRNet's ``oks_nms``), best score first.

    kpts: float[N, K, 3]; scores: float[N]; areas: float[N] (box areas).
    """
    sig = np.asarray(sigmas, np.float64)
    order = list(np.argsort(-np.asarray(scores), kind="stable"))
    keep = []
    while order:
        i = order.pop(0)
        keep.append(int(i))
        if not order:
            break
        rest = np.asarray(order)
        o = oks(kpts[i], kpts[rest], areas[i], areas[rest], sig)
        order = [int(j) for j, v in zip(rest, o) if v <= thr]
    return keep


def format_metrics(metrics: dict[str, float], keys: Iterable[str] | None = None) -> str:
    """``AP 0.712  AP50 0.901 ...`` in a stable order; NaN shown as n/a."""
    keys = list(keys) if keys is not None else list(metrics)
    parts = []
    for k in keys:
        v = metrics.get(k, math.nan)
        parts.append(f"{k} {'n/a' if not math.isfinite(v) else f'{v:.4f}'}")
    return "  ".join(parts)
