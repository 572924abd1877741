"""Pairs of overlapping people with an initial pose each: the training data of the CoupleGraph refiner.

A pair is two labelled people of one image whose boxes overlap with IoU >= threshold (the refiner's own
rule, :func:`posecore.models.couplegraph.select_pairs`). Their initial poses are either the estimator's
predictions on the training split (a COCO results file, matched to the people by OKS) or synthetic
ones: the ground truth with the errors crowded scenes cause, i.e. jitter on the OKS scale (more on
occluded joints), joints taken from the partner (identity swaps) and joints lost somewhere in the box.

:class:`PairCropDataset` gives the image-guided CoupleGraph on a DAG its pairs as images instead: both
people's crops (the DAG makes the initial poses and the features while training), from real pairs and from
people pasted over a labelled one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from torch.utils.data import Dataset

from posecore.estimators.crops import box_to_center_scale, warp_crops
from posecore.models.couplegraph import select_pairs

from ..transforms.base import Sample
from ..transforms.occlusion import PasteRecord
from ..transforms.targets import to_input
from .base import DatasetError, KeypointAnnotations
from .topdown import read_image


@dataclass(frozen=True)
class PairRecord:
    """boxes float32[2, 4] x1 y1 x2 y2; target float32[2, K, 3] ground truth; initial float32[2, K, 3] or None."""

    image_id: int
    ann_ids: tuple[int, int]
    boxes: np.ndarray
    target: np.ndarray
    initial: np.ndarray | None = None


def _xyxy(box_xywh: np.ndarray) -> np.ndarray:
    x, y, w, h = box_xywh
    return np.asarray([x, y, x + w, y + h], np.float32)


def build_pairs(ann: KeypointAnnotations, iou_threshold: float = 0.3,
                initial: dict[int, np.ndarray] | None = None) -> list[PairRecord]:
    """Every overlapping pair of labelled people; with ``initial`` (ann id -> float[K, 3]) only pairs
    whose two people both have a prediction."""
    by_image: dict[int, list] = {}
    for p in ann.people:
        by_image.setdefault(p.image_id, []).append(p)
    out = []
    for image_id, people in by_image.items():
        if len(people) < 2:
            continue
        boxes = np.stack([_xyxy(p.box) for p in people])
        pairs, _ = select_pairs(boxes, iou_threshold)
        for i, j in pairs:
            a, b = people[i], people[j]
            init = None
            if initial is not None:
                if a.ann_id not in initial or b.ann_id not in initial:
                    continue
                init = np.stack([initial[a.ann_id], initial[b.ann_id]]).astype(np.float32)
            out.append(PairRecord(image_id, (a.ann_id, b.ann_id), boxes[[i, j]],
                                  np.stack([a.keypoints, b.keypoints]).astype(np.float32), init))
    return out


def match_predictions(ann: KeypointAnnotations, results: list[dict], sigmas: np.ndarray,
                      min_oks: float = 0.3) -> dict[int, np.ndarray]:
    """ann id -> predicted keypoints float32[K, 3]: greedy best-OKS matching per image (best score first).

    OPEC-Net keeps only proposals with OKS > 0.3 to their person for training; so does ``min_oks``.
    """
    k = len(sigmas)
    var = (2 * np.asarray(sigmas, np.float64)) ** 2
    by_image: dict[int, list[dict]] = {}
    for r in results:
        by_image.setdefault(int(r["image_id"]), []).append(r)
    out: dict[int, np.ndarray] = {}
    people_by_image: dict[int, list] = {}
    for p in ann.people:
        people_by_image.setdefault(p.image_id, []).append(p)
    for image_id, preds in by_image.items():
        people = [p for p in people_by_image.get(image_id, []) if p.ann_id not in out]
        for r in sorted(preds, key=lambda r: -float(r.get("score", 0.0))):
            kp = np.asarray(r["keypoints"], np.float64).reshape(k, 3)
            best, best_oks = None, min_oks
            for p in people:
                vis = p.keypoints[:, 2] > 0
                d2 = ((kp[:, :2] - p.keypoints[:, :2]) ** 2).sum(-1)
                o = float(np.exp(-d2[vis] / var[vis] / (2 * max(p.area, 1.0))).mean())
                if o > best_oks:
                    best, best_oks = p, o
            if best is not None:
                out[best.ann_id] = kp.astype(np.float32)
                people = [p for p in people if p.ann_id != best.ann_id]
    return out


def synthetic_initial(target: np.ndarray, boxes: np.ndarray, sigmas: np.ndarray, rng: np.random.Generator,
                      noise: float = 0.5, swap_prob: float = 0.1, miss_prob: float = 0.1) -> np.ndarray:
    """Plausible estimator output float32[2, K, 3] for a pair's ground truth float[2, K, 3].

    Jitter has std ``noise`` x OKS falloff (2 sigma x object scale), doubled for occluded joints; with
    ``swap_prob`` a joint sits on the partner's same joint, with ``miss_prob`` anywhere in its box.
    Confidence falls with the error made, as a heatmap maximum would. Unlabelled joints are guesses near
    the box centre with low confidence.
    """
    out = np.zeros_like(target, dtype=np.float32)
    k = target.shape[1]
    falloff = 2 * np.asarray(sigmas, np.float32)
    for p in range(2):
        x1, y1, x2, y2 = boxes[p]
        scale = float(np.sqrt(max((x2 - x1) * (y2 - y1) * 0.53, 1.0)))
        gt, partner = target[p], target[1 - p]
        std = noise * falloff * scale * np.where(gt[:, 2] == 1, 2.0, 1.0)
        xy = gt[:, :2] + rng.standard_normal((k, 2)) * std[:, None]
        swap = (rng.random(k) < swap_prob) & (partner[:, 2] > 0)
        xy[swap] = partner[swap, :2] + rng.standard_normal((int(swap.sum()), 2)) * std[swap, None]
        miss = rng.random(k) < miss_prob
        unlabelled = gt[:, 2] == 0
        lost = miss | unlabelled
        xy[lost, 0] = rng.uniform(x1, x2, int(lost.sum()))
        xy[lost, 1] = rng.uniform(y1, y2, int(lost.sum()))
        err = np.linalg.norm(xy - gt[:, :2], axis=-1) / np.maximum(falloff * scale, 1e-6)
        conf = np.exp(-0.5 * err**2) * rng.uniform(0.8, 1.0, k)
        conf[lost] = rng.uniform(0.0, 0.3, int(lost.sum()))
        out[p, :, :2], out[p, :, 2] = xy, conf
    return out


class PairDataset(Dataset):
    """Items: keypoints float32[2, K, 3] (initial poses), boxes float32[2, 4], target float32[2, K, 2],
    mask float32[2, K] (labelled joints). Synthetic initial poses are drawn from (seed, epoch, index)."""

    def __init__(self, pairs: list[PairRecord], sigmas, seed: int = 0, noise: float = 0.5, swap_prob: float = 0.1,
                 miss_prob: float = 0.1):
        self.pairs, self.sigmas = pairs, np.asarray(sigmas, np.float32)
        self.seed, self.epoch = int(seed), 0
        self.noise, self.swap_prob, self.miss_prob = noise, swap_prob, miss_prob

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        pair = self.pairs[index]
        initial = pair.initial
        if initial is None:
            rng = np.random.default_rng([self.seed, self.epoch, index])
            initial = synthetic_initial(pair.target, pair.boxes, self.sigmas, rng, self.noise, self.swap_prob,
                                        self.miss_prob)
        return {"keypoints": initial.astype(np.float32), "boxes": pair.boxes.astype(np.float32),
                "target": pair.target[..., :2].astype(np.float32),
                "mask": (pair.target[..., 2] > 0).astype(np.float32)}


class PairCropDataset(Dataset):
    """Pairs as the DAG's pair stage sees them at run time: each person's crop, made from its box as
    :class:`posecore.estimators.topdown.TopDownEstimator` makes it, with both people's ground truth.

    Items ``0 .. len(pairs) - 1`` are the real overlapping pairs; the next ``pasted`` ones are made by pasting a
    person of ``paste.pool`` (DAG's instance paste, :class:`train.transforms.InstancePaste`) over a labelled
    person (a host) of ``hosts``, drawn from (seed, epoch, index); its box is the pasted pixels' extent.

    Items: crops float32[2, 3, H, W] (the network input), boxes float32[2, 4] x1 y1 x2 y2, centers and scales
    float32[2, 2] of the crops, target float32[2, K, 2], mask float32[2, K] (labelled joints).
    """

    def __init__(self, ann: KeypointAnnotations, pairs: list[PairRecord], input_size: tuple[int, int],
                 padding: float = 1.25, hosts: list | None = None, paste=None, pasted: int = 0, seed: int = 0):
        self.ann, self.pairs = ann, pairs
        self.input_size, self.padding = tuple(input_size), float(padding)
        self.hosts = list(hosts or [])
        self.paste = paste
        self.pasted = int(pasted) if (self.hosts and paste is not None and len(paste.pool)) else 0
        self.seed, self.epoch = int(seed), 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.pairs) + self.pasted

    def _read(self, image_id: int) -> np.ndarray:
        image = read_image(self.ann.image_path(image_id))
        if image is None:
            raise DatasetError(f"cannot read the image of image id {image_id}: {self.ann.image_path(image_id)}")
        return image

    def _pasted_pair(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(image, boxes float32[2, 4], target float32[2, K, 3]) of a host and a person pasted over it."""
        rng = np.random.default_rng([self.seed, self.epoch, index])
        for _ in range(8):  # a cut-out can be unreadable or land outside the image: draw again
            host = self.hosts[int(rng.integers(len(self.hosts)))]
            image = self._read(host.image_id)
            box = _xyxy(host.box)
            sample = Sample(image, host.keypoints.copy(), np.zeros((0, *host.keypoints.shape), np.float32), box,
                            meta={"image_id": host.image_id, "ann_id": host.ann_id})
            sample = self.paste(sample, rng)
            record = next((r for r in sample.log if isinstance(r, PasteRecord)), None)
            if record is None:
                continue
            ys, xs = np.nonzero(record.mask)
            if len(xs) < 16:
                continue
            pasted_box = np.asarray([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32)
            return sample.image, np.stack([box, pasted_box]), np.stack([sample.keypoints, sample.others[-1]])
        raise DatasetError(f"{self.ann.ann_file}: no person of the instance pool could be pasted")

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        if index < len(self.pairs):
            pair = self.pairs[index]
            image, boxes, target = self._read(pair.image_id), pair.boxes, pair.target
        else:
            image, boxes, target = self._pasted_pair(index)
        centers, scales = box_to_center_scale(boxes, self.input_size, self.padding)
        crops = warp_crops(image, centers, scales, self.input_size)
        return {"crops": np.stack([to_input(c) for c in crops]), "boxes": boxes.astype(np.float32),
                "centers": centers, "scales": scales, "target": target[..., :2].astype(np.float32),
                "mask": (target[..., 2] > 0).astype(np.float32)}
