"""``python -m train eval-pipeline``: the yolo pipeline with and without the refiner on the held-out split.

For every image of each held-out set (``distill.heldout``; splits with the same name are pooled) the base
runs on the whole image at the pipeline's input size, as the pipeline does, and the refiner refines its
people with the neck maps of that pass. Both result sets are scored with pycocotools: keypoint AP, and
AP on the visible (v = 2) and occluded (v = 1) joints alone (:func:`train.evaluate.evaluate_keypoints`).
CrowdPose is scored on its 14 joints, our COCO-17 poses mapped with ``coco17_to_crowdpose14``.

Speed: the per-frame time of the pipeline's detector and yolo pose backend, and the refiner's time for
1, 2, 5 and 10 people (people of a real frame, repeated where it has fewer), single-threaded as the
pipeline's detection workers run on a two-core CPU; medians of interleaved repeats.

The rule for the default: on the ``coco`` set, the refiner is on by default only if it raises the AP of
occluded joints and does not lower the overall AP.
"""

from __future__ import annotations

import json
import math
import statistics
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import torch

from posecore.detector import Detector
from posecore.errors import ConfigError, WeightsError
from posecore.pose_score import pose_results
from posecore.refine import YoloRefiner
from posecore.skeleton import COCO17, CROWDPOSE14, coco17_to_crowdpose14
from posecore.types import Poses

from .config import HeldOutSplit, TrainConfig
from .datasets import DatasetError
from .datasets.posetrack import SHARED_SLOTS, ignore_regions, in_ignore_regions, posetrack_as_coco
from .distill import base_detector
from .evaluate import evaluate_keypoints, normalise_gt

Print = Callable[[str], None]
DECIDING_SET = "coco"
PEOPLE_COUNTS = (1, 2, 5, 10)
SHIPPED_METRICS = ("AP", "AP50", "AR", "visible.AP", "occluded.AP")


@dataclass
class HeldOutSet:
    """A pooled evaluation set: ground truth (COCO format), image files by id, and how to score it."""

    name: str
    gt: dict
    paths: dict[int, Path]
    kind: str  # "coco" or "crowdpose"
    visibility: bool = True  # the files flag occluded joints (v = 1) apart from visible ones (v = 2)
    # image id -> float[P, 2] polygons round unlabelled people (PoseTrack): people found there are dropped
    ignore: dict[int, list[np.ndarray]] = field(default_factory=dict)

    @property
    def people(self) -> int:
        return sum(1 for a in self.gt["annotations"] if not a.get("iscrowd") and a.get("num_keypoints", 1) > 0)

    def results(self, poses: Poses, image_id: int) -> list[dict]:
        """COCO results of the poses found in one image, in this set's joints."""
        regions = self.ignore.get(image_id)
        if regions:
            poses = poses.select(np.array([not in_ignore_regions(k[SHARED_SLOTS], regions)
                                           for k in poses.keypoints], bool))
        return _results(poses, image_id, self.kind)

    def evaluate(self, results: list[dict]) -> dict[str, float]:
        """pycocotools' metrics of ``results``; the visible / occluded split where the files make it."""
        sigmas = (COCO17 if self.kind == "coco" else CROWDPOSE14).sigmas
        return evaluate_keypoints(self.gt, results, sigmas, self.kind, visibility_split=self.visibility)


def load_heldout(splits: list[HeldOutSplit]) -> list[HeldOutSet]:
    """The held-out sets, splits of the same name pooled (image ids must not collide)."""
    sets: dict[str, HeldOutSet] = {}
    for s in splits:
        raw = json.loads(Path(s.ann_file).read_text(encoding="utf-8"))
        wanted = None if s.images is None else set(s.images)
        images = [im for im in raw["images"] if wanted is None or int(im["id"]) in wanted]
        ids = {int(im["id"]) for im in images}
        anns = [a for a in raw["annotations"] if int(a["image_id"]) in ids]
        kind = "crowdpose" if s.format == "crowdpose" else "coco"
        if s.format == "posetrack":
            anns = posetrack_as_coco({"annotations": anns})["annotations"]
        hs = sets.setdefault(s.name, HeldOutSet(s.name, {"images": [], "annotations": [],
                                                         "categories": raw.get("categories", [])}, {}, kind))
        if s.format == "posetrack":
            hs.visibility = False
            hs.ignore.update({int(im["id"]): ignore_regions(im) for im in images})
        if ids & set(hs.paths):
            raise ConfigError(f"distill.heldout: image ids of {s.ann_file} collide within set {s.name!r}")
        next_id = 1 + max([int(a.get("id", 0)) for a in hs.gt["annotations"]] or [0])
        for i, a in enumerate(anns):  # annotation ids are renumbered: pooled files may reuse them
            a = dict(a)
            a["id"] = next_id + i
            hs.gt["annotations"].append(a)
        hs.gt["images"] += images
        hs.paths.update({int(im["id"]): Path(s.img_dir) / im["file_name"] for im in images})
    return [replace(h, gt=normalise_gt(h.gt)) for h in sets.values()]


def _results(poses: Poses, image_id: int, kind: str) -> list[dict]:
    return pose_results(image_id, poses.scores,
                        poses.keypoints if kind == "coco" else coco17_to_crowdpose14(poses.keypoints))


def score_set(hs: HeldOutSet, base: Detector, refiner: YoloRefiner | None) -> dict[str, dict[str, float]]:
    """{"base": metrics, "refined": metrics} of the pipeline's poses on one held-out set."""
    base_res, ref_res = [], []
    for image_id, path in sorted(hs.paths.items()):
        frame = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if frame is None:
            raise DatasetError(f"held-out image missing or unreadable: {path}")
        det = base.detect(frame)
        poses = Poses(det.boxes, det.scores, det.keypoints, det.keypoints[..., 2] >= 0.5)
        base_res += hs.results(poses, image_id)
        if refiner is not None:
            ref_res += hs.results(refiner.refine(frame, poses, det.features), image_id)
    out = {"base": hs.evaluate(base_res)}
    if refiner is not None:
        out["refined"] = hs.evaluate(ref_res)
    return out


# -- speed ------------------------------------------------------------------------------------------------
def _median_time(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def measure_speed(frames: list[np.ndarray], refiner: YoloRefiner, base: Detector, imgsz: int,
                  repeats: int = 5, threads: int = 1) -> dict[str, float]:
    """Seconds per frame of the pipeline's detector + yolo pose backend (median over frames), and of the
    refiner for each of ``PEOPLE_COUNTS`` people; ``threads`` torch threads for both."""
    from posecore.estimators.yolo import YoloPoseEstimator

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        detector = Detector(base.weights, imgsz=imgsz, conf=base.conf, device="cpu")
        estimator = YoloPoseEstimator()
        pipeline = lambda f: estimator.estimate(f, detector.detect(f))  # noqa: E731
        # The frame with most people gives the refiner its inputs; fewer people are a subset of them.
        runs = [base.detect(f) for f in frames]
        best = int(np.argmax([len(r) for r in runs]))
        frame, det = frames[best], runs[best]
        if len(det) == 0:
            raise DatasetError("eval-pipeline: no person found in the held-out images to time the refiner on")
        for f in frames:
            pipeline(f)  # warm-up (traces, allocations)
        out: dict[str, float] = {}
        per_frame, per_people = [], {n: [] for n in PEOPLE_COUNTS}
        for _ in range(repeats):  # interleaved, so that load from other processes hits both alike
            per_frame.append(statistics.median(_median_time(lambda f=f: pipeline(f), 1) for f in frames))
            for n in PEOPLE_COUNTS:
                idx = np.arange(n) % len(det)
                poses = Poses(det.boxes[idx], det.scores[idx], det.keypoints[idx])
                per_people[n].append(_median_time(lambda: refiner.refine(frame, poses, det.features), 3))
        out["pipeline_s"] = statistics.median(per_frame)
        for n in PEOPLE_COUNTS:
            out[f"refine_{n}_s"] = statistics.median(per_people[n])
        out["frame_people"] = float(len(det))
        return out
    finally:
        torch.set_num_threads(before)


def speed_frames(cfg: TrainConfig, sets: list[HeldOutSet], count: int = 6) -> list[np.ndarray]:
    """A few held-out images, the ones with most labelled people first."""
    items = []
    for hs in sets:
        n = {}
        for a in hs.gt["annotations"]:
            n[int(a["image_id"])] = n.get(int(a["image_id"]), 0) + 1
        items += [(n.get(i, 0), str(p)) for i, p in hs.paths.items()]
    items.sort(key=lambda t: (-t[0], t[1]))
    return [cv2.imread(p, cv2.IMREAD_COLOR) for _, p in items[:count]]


# -- the report -------------------------------------------------------------------------------------------
def decide(scores: dict[str, dict[str, dict[str, float]]]) -> tuple[bool, str]:
    """The issue's rule on the deciding set: occluded AP up and overall AP not down."""
    s = scores.get(DECIDING_SET)
    if s is None or "refined" not in s:
        return False, f"no {DECIDING_SET!r} held-out set scored"
    b, r = s["base"], s["refined"]
    occ_up = _num(r.get("occluded.AP")) > _num(b.get("occluded.AP"))
    ap_kept = _num(r["AP"]) >= _num(b["AP"])
    why = (f"{DECIDING_SET}: occluded-joint AP {_num(b.get('occluded.AP')):.4f} -> {_num(r.get('occluded.AP')):.4f} "
           f"({'up' if occ_up else 'not up'}), AP {_num(b['AP']):.4f} -> {_num(r['AP']):.4f} "
           f"({'kept' if ap_kept else 'lowered'})")
    return occ_up and ap_kept, why


def _num(v) -> float:
    return float(v) if isinstance(v, (int, float)) and math.isfinite(v) else -1.0


def table(scores: dict, sets: list[HeldOutSet], speed: dict[str, float] | None) -> list[str]:
    lines = ["set        people  images  poses    AP      AP50    AP75    AR      AP vis  AP occ"]
    for hs in sets:
        for which in ("base", "refined"):
            m = scores[hs.name].get(which)
            if m is None:
                continue
            vals = [m.get(k, math.nan) for k in ("AP", "AP50", "AP75", "AR", "visible.AP", "occluded.AP")]
            cells = "  ".join("  n/a " if not math.isfinite(v) else f"{v:.4f}" for v in vals)
            lines.append(f"{hs.name:<10} {hs.people:>6}  {len(hs.paths):>6}  {which:<7}  {cells}")
    if speed:
        p = speed["pipeline_s"]
        costs = [(n, speed[f"refine_{n}_s"]) for n in PEOPLE_COUNTS]
        lines.append(f"speed (1 thread): pipeline (detector + yolo poses) {p * 1000:.1f} ms/frame; refiner "
                     + ", ".join(f"{n} people {s * 1000:.2f} ms (+{100 * s / p:.1f}%)" for n, s in costs))
    return lines


def evaluate_pipeline(cfg: TrainConfig, weights: str | Path | None, out: Print = print, note: Print = print,
                      speed: bool = True, output: Path | None = None) -> dict:
    """Score base and base + refiner on every held-out set; print the table; return everything measured."""
    dc = cfg.distill
    if dc is None or not dc.heldout:
        raise ConfigError("distill.heldout: eval-pipeline needs a held-out split in the config")
    path = Path(weights) if weights else (Path(dc.ship_to) if dc.ship_to else cfg.output_dir / "best.pt")
    if not path.is_file():
        raise WeightsError(f"refiner weights not found: {path}")
    refiner = YoloRefiner.from_checkpoint(path, device="cpu")
    base = base_detector(dc)
    sets = load_heldout(dc.heldout)
    note(f"eval-pipeline: refiner {path}; base {base.weights.name} at {dc.student_imgsz}; held-out "
         + ", ".join(f"{h.name} ({len(h.paths)} images, {h.people} people)" for h in sets))
    scores = {hs.name: score_set(hs, base, refiner) for hs in sets}
    sp = measure_speed(speed_frames(cfg, sets), refiner, base, dc.student_imgsz) if speed else None
    on, why = decide(scores)
    for line in table(scores, sets, sp):
        out(line)
    out(f"default: {'on' if on else 'off'} ({why})")
    report = {"weights": str(path), "scores": scores, "speed": sp, "enabled_by_default": on, "decision": why,
              "sets": {h.name: {"images": sorted(h.paths), "people": h.people} for h in sets}}
    if output is not None:
        output.mkdir(parents=True, exist_ok=True)
        (output / "pipeline_eval.json").write_text(json.dumps(_plain(report), indent=1))
        note(f"wrote {output / 'pipeline_eval.json'}")
    return report


def _plain(v):
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def ship(cfg: TrainConfig, best: Path, builder, train_recs, val_recs, state, seconds: float, say: Print) -> Path:
    """Score ``best`` on the held-out split and write it to ``distill.ship_to`` with what was measured and
    how it was made (``enabled_by_default`` follows the rule of :func:`decide`)."""
    from posecore.weights import load_checkpoint, save_checkpoint

    report = evaluate_pipeline(cfg, best, out=say, note=say, output=cfg.output_dir)
    model, config = load_checkpoint(best)
    dc = cfg.distill
    extra = {
        "enabled_by_default": bool(report["enabled_by_default"]),
        "decision": report["decision"],
        "iou_threshold": float(dc.iou_threshold),
        "heldout": _plain({name: {which: {m: v for m, v in s.items() if m in SHIPPED_METRICS}
                                   for which, s in d.items()} for name, d in report["scores"].items()}),
        "speed": _plain(report["speed"] or {}),
        "training": {"copies": len(train_recs), "people": int(sum(len(r) for r in train_recs)),
                     "val_copies": len(val_recs), "epochs": int(state.epoch), "best_epoch": int(state.best_epoch),
                     "minutes": round(seconds / 60, 1), "seed": int(cfg.solver.seed),
                     "sources": [str(s.path) for s in dc.sources]},
    }
    path = save_checkpoint(dc.ship_to, model, config, extra)
    state_word = "on" if extra["enabled_by_default"] else "off"
    say(f"shipped {path} ({path.stat().st_size / 1e6:.2f} MB), default {state_word}")
    return path
