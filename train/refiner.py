"""Training and scoring the CoupleGraph refiner (OPEC-Net): pairs in, both people's corrected poses out.

* Loss: OPEC-Net's masked L1 between the refined and the true joints, in units of the pair's union box
  (the frame CoupleGraph works in), over the labelled joints of both people.
* Evaluation: the estimator's results on the evaluation split (a COCO results file with ``bbox``, as
  ``python -m train eval`` writes) are refined pair by pair with the runtime's own pairing rule, and
  AP is reported after refinement next to the AP before it (``initial.*``).
"""

from __future__ import annotations

import copy
from collections import defaultdict
from typing import Sequence

import numpy as np
import torch
from torch import nn

from posecore.models.couplegraph import CoupleGraph, assign_pairs, select_pairs
from posecore.pose_score import pose_results

from . import distributed
from .evaluate import EvalKind, evaluate_keypoints


class CoupleLoss(nn.Module):
    """``lc``: mean |refined - true| over labelled joints, divided by the pair's union-box half size."""

    def forward(self, out: torch.Tensor, batch: dict, progress: float = 1.0):
        from .losses import LossParts

        _, half = CoupleGraph.union_frame(batch["boxes"].float())
        err = (out.float() - batch["target"].float()).abs().sum(-1) / half[:, None]
        mask = batch["mask"].float()
        lc = (err * mask).sum() / (2.0 * mask.sum().clamp(min=1.0))
        return LossParts(lc, {"lc": lc})


def couple_forward(model: nn.Module, batch: dict) -> torch.Tensor:
    return model(batch["keypoints"], batch["boxes"])


def _boxes_of(results: Sequence[dict]) -> np.ndarray:
    """float32[N, 4] x1 y1 x2 y2 from each result's ``bbox`` (or the extent of its keypoints)."""
    out = []
    for r in results:
        if "bbox" in r:
            x, y, w, h = r["bbox"]
        else:
            kp = np.asarray(r["keypoints"], np.float32).reshape(-1, 3)
            lo, hi = kp[:, :2].min(0), kp[:, :2].max(0)
            x, y, w, h = lo[0], lo[1], hi[0] - lo[0], hi[1] - lo[1]
        out.append([x, y, x + w, y + h])
    return np.asarray(out, np.float32).reshape(-1, 4)


@torch.no_grad()
def refine_results(model: nn.Module, results: Sequence[dict], iou_threshold: float = 0.3,
                   device: torch.device = torch.device("cpu")) -> list[dict]:
    """The results with each paired person's joints moved by the refiner (scores kept)."""
    model = getattr(model, "module", model)
    was_training = model.training
    model.eval()
    out = copy.deepcopy(list(results))
    by_image: dict[int, list[int]] = defaultdict(list)
    for i, r in enumerate(out):
        by_image[int(r["image_id"])].append(i)
    for idx in by_image.values():
        if len(idx) < 2:
            continue
        rs = [out[i] for i in idx]
        boxes = _boxes_of(rs)
        pairs, ious = select_pairs(boxes, iou_threshold)
        if not len(pairs):
            continue
        kp = np.stack([np.asarray(r["keypoints"], np.float32).reshape(-1, 3) for r in rs])
        refined = model(torch.from_numpy(kp[pairs]).to(device), torch.from_numpy(boxes[pairs]).to(device))
        refined = refined.float().cpu().numpy()
        best, slot = assign_pairs(pairs, ious, len(rs))
        for n, (p, s) in enumerate(zip(best, slot)):
            if p < 0:
                continue
            new = kp[n].copy()
            new[:, :2] = refined[p, s]
            rs[n]["keypoints"] = [round(float(v), 3) for v in new.reshape(-1)]
    model.train(was_training)
    return out


class RefinerEvaluator:
    """AP of the estimator's results after refinement (and ``initial.*`` before it), on the main process."""

    def __init__(self, gt: dict, results: list[dict], sigmas: Sequence[float], kind: EvalKind, iou_threshold: float,
                 device: torch.device, dist_info: distributed.DistInfo = distributed.DistInfo(),
                 visibility_split: bool = True):
        self.gt, self.results, self.sigmas, self.kind = gt, results, list(sigmas), kind
        self.iou_threshold, self.device, self.dist, self.visibility_split = iou_threshold, device, dist_info, visibility_split
        self._initial: dict[str, float] | None = None
        self.last_results: list[dict] = []

    def __call__(self, model: nn.Module) -> dict[str, float]:
        metrics: dict[str, float] = {}
        if self.dist.is_main:
            if self._initial is None:
                self._initial = evaluate_keypoints(self.gt, self.results, self.sigmas, self.kind, self.visibility_split)
            self.last_results = refine_results(model, self.results, self.iou_threshold, self.device)
            metrics = evaluate_keypoints(self.gt, self.last_results, self.sigmas, self.kind, self.visibility_split)
            metrics.update({f"initial.{k}": v for k, v in self._initial.items() if "." not in k})
        return distributed.broadcast(metrics)


# -- image-guided CoupleGraph on a DAG (``refiner.estimator``) --------------------------------------------------
class DagPairNet(nn.Module):
    """``forward(crops, boxes, centers, scales) -> float[P, 2, K, 2]``: the DAG's pair stage as it runs.

    crops float[P, 2, 3, H, W] (both people's crops, :class:`train.datasets.pairs.PairCropDataset`); boxes
    float[P, 2, 4]; centers, scales float[P, 2, 2] of the crops. The DAG makes the initial poses (its last GCN
    stage, in image pixels, with heatmap-maximum confidences) and the joint features
    (:func:`posecore.estimators.topdown.joint_features`), as :class:`TopDownEstimator` does at run time; then
    CoupleGraph refines each pair. The DAG stays frozen (and in eval mode) unless ``fine_tune``.
    """

    def __init__(self, dag: nn.Module, couple: CoupleGraph, iou_threshold: float = 0.3, fine_tune: bool = False):
        super().__init__()
        self.dag, self.couple = dag, couple
        self.iou_threshold, self.fine_tune = float(iou_threshold), bool(fine_tune)
        if not fine_tune:
            self.dag.requires_grad_(False)

    def train(self, mode: bool = True) -> "DagPairNet":
        super().train(mode)
        if not self.fine_tune:
            self.dag.eval()  # frozen: its batch-norm statistics stay those it was trained with
        return self

    def forward(self, crops: torch.Tensor, boxes: torch.Tensor, centers: torch.Tensor,
                scales: torch.Tensor) -> torch.Tensor:
        from posecore.estimators.crops import crop_to_image
        from posecore.estimators.topdown import joint_features

        p, two = crops.shape[:2]
        x = crops.flatten(0, 1).contiguous(memory_format=torch.channels_last)
        with torch.set_grad_enabled(self.fine_tune and torch.is_grad_enabled()):
            out = self.dag(x)
            feats = joint_features(out, tuple(self.dag.input_size))
        coords = out["coords"][-1].detach().float().cpu().numpy()
        _, scores = self.dag.codec.decode(out["heatmaps"].detach().float().cpu().numpy())
        xy = crop_to_image(coords, centers.flatten(0, 1).cpu().numpy(), scales.flatten(0, 1).cpu().numpy(),
                           tuple(self.dag.input_size))
        kp = torch.from_numpy(np.concatenate((xy, scores[..., None]), -1).astype(np.float32)).to(crops.device)
        k = kp.shape[1]
        return self.couple(kp.reshape(p, two, k, 3), boxes, feats.reshape(p, two, k, -1))


def dag_pair_forward(model: nn.Module, batch: dict) -> torch.Tensor:
    return model(batch["crops"], batch["boxes"], batch["centers"], batch["scales"])


def save_dag_pair(path, model: nn.Module, extra: dict | None = None) -> None:
    """A DAG checkpoint holding its pair stage (``extra["pair_stage"]``): ``--weights`` for ``--pose dag``."""
    import os
    from pathlib import Path

    from posecore.pair_stage import EXTRA_KEY, pair_stage_extra
    from posecore.weights import save_checkpoint

    model = getattr(model, "module", model)
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    save_checkpoint(tmp, model.dag, extra={**(extra or {}),
                                           EXTRA_KEY: pair_stage_extra(model.couple, model.iou_threshold)})
    os.replace(tmp, path)


def pair_stage_results(ann, people: Sequence, estimator, stage) -> tuple[list[dict], list[dict]]:
    """COCO results of the run-time DAG path on the people's boxes, image by image: (DAG alone, DAG + pair
    stage). ``estimator`` a :class:`TopDownEstimator`, ``stage`` a :class:`posecore.pair_stage.PairStage`."""
    from posecore.types import Detections

    from .datasets.topdown import read_image

    by_image: dict[int, list] = defaultdict(list)
    for p in people:
        by_image[p.image_id].append(p)
    alone, paired = [], []
    for image_id, ps in by_image.items():
        image = read_image(ann.image_path(image_id))
        if image is None:
            continue
        boxes = np.asarray([[p.box[0], p.box[1], p.box[0] + p.box[2], p.box[1] + p.box[3]] for p in ps], np.float32)
        dets = Detections(boxes, np.asarray([p.score for p in ps], np.float32))
        poses, feats = estimator.estimate_features(image, dets)
        refined = stage.refine(image, poses, feats)
        alone += pose_results(image_id, poses.scores, poses.keypoints)
        paired += pose_results(image_id, refined.scores, refined.keypoints)
    return alone, paired


class DagPairEvaluator:
    """AP of the run-time DAG path with the pair stage (``AP`` ...) and without it (``initial.*``)."""

    def __init__(self, gt: dict, ann, people: Sequence, sigmas: Sequence[float], kind: EvalKind,
                 device: torch.device, dist_info: distributed.DistInfo = distributed.DistInfo(),
                 visibility_split: bool = True, flip_test: bool = False):
        self.gt, self.ann, self.people, self.sigmas, self.kind = gt, ann, list(people), list(sigmas), kind
        self.device, self.dist, self.visibility_split, self.flip_test = device, dist_info, visibility_split, flip_test
        self.last_results: list[dict] = []

    def __call__(self, model: nn.Module) -> dict[str, float]:
        from posecore.estimators.topdown import TopDownEstimator
        from posecore.pair_stage import PairStage

        model = getattr(model, "module", model)
        metrics: dict[str, float] = {}
        if self.dist.is_main:
            was_training = model.training
            estimator = TopDownEstimator(model.dag, device=self.device, flip_test=self.flip_test, half=False)
            stage = PairStage(copy.deepcopy(model.couple), model.iou_threshold, device=self.device)
            alone, self.last_results = pair_stage_results(self.ann, self.people, estimator, stage)
            metrics = evaluate_keypoints(self.gt, self.last_results, self.sigmas, self.kind, self.visibility_split)
            initial = evaluate_keypoints(self.gt, alone, self.sigmas, self.kind, self.visibility_split)
            metrics.update({f"initial.{k}": v for k, v in initial.items() if "." not in k})
            model.train(was_training)
        return distributed.broadcast(metrics)
