"""Running a pose model over evaluation crops, and turning its outputs into scored COCO results.

Flip test averages the prediction on the crop and on its mirror image (heatmaps and GCN poses flipped
back, left/right joints swapped); with the codec's pixel convention no half-pixel shift is needed.
Keypoints come from the last GCN stage when the model has one (``keypoint_source: auto``), else from the
decoded heatmaps; their scores are always the heatmap maxima.
"""

from __future__ import annotations

import json
from collections import defaultdict
from contextlib import nullcontext
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch
from torch import nn

from posecore.pose_score import KPT_SCORE_THR, pose_scores

from . import distributed
from .config import EvalConfig
from .evaluate import EvalKind, evaluate_keypoints, oks_nms
from .transforms.geometry import invert_affine, transform_points


def flip_back_heatmaps(heatmaps: torch.Tensor, flip_index: Sequence[int]) -> torch.Tensor:
    """float[B, K, h, w] heatmaps of a mirrored crop, mirrored back with left/right joints swapped."""
    return heatmaps[:, list(flip_index)].flip(-1)


def flip_back_coords(coords: torch.Tensor, flip_index: Sequence[int], width: int) -> torch.Tensor:
    """float[B, K, 2] crop-pixel poses of a mirrored crop, mirrored back (x -> W - 1 - x), joints swapped."""
    out = coords[:, list(flip_index)].clone()
    out[..., 0] = width - 1 - out[..., 0]
    return out


def _final_coords(out: dict, source: str) -> torch.Tensor | None:
    coords = out.get("coords")
    if source == "heatmap" or coords is None:
        if source == "gcn":
            raise ValueError("eval.keypoint_source is gcn but the model returns no GCN poses")
        return None
    return coords[-1] if isinstance(coords, (list, tuple)) else coords


@torch.no_grad()
def predict(model: nn.Module, loader: Iterable, flip_index: Sequence[int], flip_test: bool = True,
            keypoint_source: str = "auto", device: torch.device = torch.device("cpu"),
            amp: bool = False) -> dict[str, np.ndarray]:
    """Image-pixel poses for every crop of ``loader``.

    Returns image_id int64[N], ann_id int64[N], box_score float32[N], area float32[N] (the padded crop
    region's area), box float32[N, 4] (x, y, w, h) and keypoints float32[N, K, 3] (x, y, heatmap score).
    """
    model = getattr(model, "module", model)
    was_training = model.training
    model.eval()
    codec = model.codec
    width = model.input_size[0]
    autocast = torch.autocast("cuda", dtype=torch.float16) if (amp and device.type == "cuda") else nullcontext()
    parts: dict[str, list[np.ndarray]] = defaultdict(list)
    for batch in loader:
        if batch is None:
            continue
        images = batch["image"].to(device, non_blocking=True)
        with autocast:
            out = model(images)
            out_f = model(images.flip(-1)) if flip_test else None
        heatmaps = out["heatmaps"].float()
        coords = _final_coords(out, keypoint_source)
        if out_f is not None:
            heatmaps = 0.5 * (heatmaps + flip_back_heatmaps(out_f["heatmaps"].float(), flip_index))
            if coords is not None:
                coords = 0.5 * (coords.float() + flip_back_coords(_final_coords(out_f, keypoint_source).float(),
                                                                  flip_index, width))
        xy, scores = codec.decode(heatmaps)
        if coords is not None:
            xy = coords.float().cpu().numpy()
        matrices = batch["matrix"].numpy()
        img_xy = np.stack([transform_points(p, invert_affine(m)) for p, m in zip(xy, matrices)])
        scale = batch["scale"].numpy()
        parts["keypoints"].append(np.concatenate([img_xy, scores[..., None]], -1).astype(np.float32))
        parts["image_id"].append(batch["image_id"].numpy().astype(np.int64))
        parts["ann_id"].append(batch["ann_id"].numpy().astype(np.int64))
        parts["box_score"].append(batch["score"].numpy().astype(np.float32))
        parts["area"].append((scale[:, 0] * scale[:, 1]).astype(np.float32))
        parts["box"].append(batch["box"].numpy().astype(np.float32))
    model.train(was_training)
    k = model.num_joints
    empty = {"keypoints": np.zeros((0, k, 3), np.float32), "image_id": np.zeros(0, np.int64),
             "ann_id": np.zeros(0, np.int64), "box_score": np.zeros(0, np.float32), "area": np.zeros(0, np.float32),
             "box": np.zeros((0, 4), np.float32)}
    return {key: np.concatenate(v) for key, v in parts.items()} if parts else empty


def merge_predictions(chunks: Sequence[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """One prediction set from several processes' (keys as :func:`predict`)."""
    chunks = [c for c in chunks if len(c["image_id"])] or list(chunks[:1])
    return {key: np.concatenate([c[key] for c in chunks]) for key in chunks[0]}


def to_results(pred: dict[str, np.ndarray], sigmas: Sequence[float], rescore: bool = True,
               kpt_score_thr: float = KPT_SCORE_THR, oks_nms_thr: float | None = 0.9) -> list[dict]:
    """COCO results: HRNet's rescoring (box score x mean score of joints above ``kpt_score_thr``), then
    OKS-NMS per image. Each result keeps its person box (``bbox``, x y w h) for refiners downstream."""
    kpts, box_scores = pred["keypoints"], pred["box_score"]
    scores = pose_scores(box_scores, kpts, kpt_score_thr) if rescore else box_scores.astype(np.float64)
    by_image: dict[int, list[int]] = defaultdict(list)
    for i, image_id in enumerate(pred["image_id"]):
        by_image[int(image_id)].append(i)
    results = []
    for image_id, idx in by_image.items():
        idx = np.asarray(idx)
        if oks_nms_thr is not None and len(idx) > 1:
            keep = oks_nms(kpts[idx].astype(np.float64), scores[idx], pred["area"][idx].astype(np.float64),
                           sigmas, oks_nms_thr)
            idx = idx[keep]
        for i in idx:
            results.append({"image_id": image_id, "category_id": 1,
                            "keypoints": [round(float(v), 3) for v in kpts[i].reshape(-1)],
                            "score": float(scores[i]), "bbox": [round(float(v), 2) for v in pred["box"][i]]})
    return results


class Evaluator:
    """Predict on this process's share of the evaluation crops, gather, score on the main process.

    ``gt`` is the COCO-format ground truth restricted to the images evaluated; every process returns the
    same metrics dict. With ``results_path`` the main process also writes the COCO results there.
    """

    def __init__(self, gt: dict, loader: Iterable, sigmas: Sequence[float], flip_index: Sequence[int],
                 cfg: EvalConfig, kind: EvalKind, device: torch.device,
                 dist_info: distributed.DistInfo = distributed.DistInfo(), amp: bool = False,
                 results_path: Path | None = None):
        self.gt, self.loader, self.sigmas, self.flip_index = gt, loader, list(sigmas), list(flip_index)
        self.cfg, self.kind, self.device, self.dist, self.amp = cfg, kind, device, dist_info, amp
        self.results_path = results_path
        self.last_results: list[dict] = []

    def __call__(self, model: nn.Module) -> dict[str, float]:
        pred = predict(model, self.loader, self.flip_index, self.cfg.flip_test, self.cfg.keypoint_source,
                       self.device, self.amp)
        chunks = distributed.gather(pred)
        metrics: dict[str, float] = {}
        if self.dist.is_main:
            merged = merge_predictions(chunks)
            self.last_results = to_results(merged, self.sigmas, self.cfg.rescore, self.cfg.kpt_score_thr,
                                           self.cfg.oks_nms_thr)
            if self.results_path is not None:
                self.results_path.parent.mkdir(parents=True, exist_ok=True)
                self.results_path.write_text(json.dumps(self.last_results))
            metrics = evaluate_keypoints(self.gt, self.last_results, self.sigmas, self.kind, self.cfg.visibility_split)
        return distributed.broadcast(metrics)
