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
