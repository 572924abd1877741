"""Training data of the refiner: the base's people on occlusion-augmented frames, with targets.

For each source frame (videos, image folders, COCO-format sets; never an image of the held-out split):

1. targets: labelled people (ground truth, their labelled joints) and, for everyone else the teacher finds,
   the teacher's joints of confidence >= ``teacher_min_conf``. The teacher is the base model on the clean
   frame at ``teacher_imgsz`` with flip test.
2. ``copies`` student copies: mirrored, zoomed and occluded (:mod:`train.transforms.frame`); the base runs
   on each at the pipeline's input size, and its people are matched to the targets (box IoU >=
   ``match_iou``, then best IoU + OKS first). The base's neck maps are read at its joints.

The result, one :class:`CopyRecord` per copy, is cached under ``cache_dir/<key>/`` frame by frame, where
the key covers every setting that changes it, so an interrupted build continues and a repeated run costs
nothing; the cache is not part of the repository.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import cv2
import numpy as np
import torch

from posecore.config import to_dict
from posecore.detector import Detector
from posecore.errors import ConfigError
from posecore.models.couplegraph import box_iou
from posecore.multiscale import flip_detections
from posecore.oks import keypoint_similarity
from posecore.skeleton import COCO17
from posecore.types import Detections

from .config import DistillConfig, FrameSource, HeldOutSplit
from .datasets import DatasetError, open_annotations
from .transforms.frame import FrameOcclusion, FramePeople
from .transforms.occlusion import InstancePool

CACHE_VERSION = 1
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp"}
Print = Callable[[str], None]


@dataclass
class CopyRecord:
    """The base's n people on one augmented copy and their targets.

    keypoints float32[n, K, 3] the base's (x, y, confidence); boxes float32[n, 4]; features float16[n, K, C]
    the base's maps at its joints; grid float16[n, K, G, C0] its finest map on the local grid around each
    joint and step float32[n] that grid's spacing in image pixels; target float32[n, K, 2]; weight
    float32[n, K] (0: no target);
    scale float32[n] the target person's size, sqrt(0.53 x box area); occluded bool[n, K] target joints an
    occlusion step covered; labelled bool[n] targets from ground truth.
    """

    keypoints: np.ndarray
    boxes: np.ndarray
    features: np.ndarray
    grid: np.ndarray
    step: np.ndarray
    target: np.ndarray
    weight: np.ndarray
    scale: np.ndarray
    occluded: np.ndarray
    labelled: np.ndarray

    def __len__(self) -> int:
        return len(self.boxes)

    def to_plain(self) -> dict[str, torch.Tensor]:
        return {k: torch.from_numpy(np.ascontiguousarray(getattr(self, k))) for k in self.__dataclass_fields__}

    @classmethod
    def from_plain(cls, d: dict[str, torch.Tensor]) -> "CopyRecord":
        return cls(**{k: d[k].numpy() for k in cls.__dataclass_fields__})


@dataclass
class FrameRef:
    """One source frame: ``name`` (unique), how to read it, its labelled people (or None), its split."""

    name: str
    load: Callable[[], np.ndarray | None]
    people: FramePeople | None
    split: str  # "train" or "val"
    copies: int | None = None  # student copies (None: the configured default)


# -- sources --------------------------------------------------------------------------------------------------
def heldout_paths(splits: list[HeldOutSplit]) -> set[Path]:
    """The resolved image files of the held-out split (never trained on)."""
    out = set()
    for s in splits:
        raw = json.loads(Path(s.ann_file).read_text(encoding="utf-8"))
        wanted = None if s.images is None else set(s.images)
        for img in raw["images"]:
            if wanted is None or int(img["id"]) in wanted:
                out.add((Path(s.img_dir) / img["file_name"]).resolve())
    return out


def _video_frames(src: FrameSource) -> Iterator[FrameRef]:
    reader = _VideoReader(Path(src.path))
    total = reader.frame_count()
    picked = list(range(0, total, src.every))[: src.max_frames]
    val_from = total - int(math.floor(total * src.val_tail)) if src.val_tail else total + 1
    for i in picked:
        yield FrameRef(f"{Path(src.path).name}#{i}", lambda i=i: reader.read(i), None,
                       "val" if i >= val_from else "train", src.copies)


class _VideoReader:
    """Frames of a video by index, decoded in order (not seeking: exact for every codec); reading forward
    from the last frame read continues the same decoder."""

    def __init__(self, path: Path):
        self.path = path
        self._cap = None
        self._next = 0

    def frame_count(self) -> int:
        cap = cv2.VideoCapture(str(self.path))
        if not cap.isOpened():
            raise DatasetError(f"distill.sources: cannot open video {self.path}")
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        cap.release()
        return n

    def read(self, index: int) -> np.ndarray | None:
        if self._cap is None or index < self._next:
            if self._cap is not None:
                self._cap.release()
            self._cap, self._next = cv2.VideoCapture(str(self.path)), 0
        while self._next < index:
            if not self._cap.grab():
                return None
            self._next += 1
        ok, frame = self._cap.read()
        self._next += 1
        return frame if ok else None


def _image_frames(src: FrameSource, skip: set[Path]) -> Iterator[FrameRef]:
    files = sorted(p for p in Path(src.path).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    files = [p for p in files if p.resolve() not in skip][:: src.every][: src.max_frames]
    for p in files:
        yield FrameRef(str(p.relative_to(src.path)), lambda p=p: cv2.imread(str(p), cv2.IMREAD_COLOR), None, "train",
                       src.copies)


def _coco_frames(src: FrameSource, skip: set[Path]) -> Iterator[FrameRef]:
    ann = open_annotations("coco", src.ann_file, src.path)
    for image_id in ann.image_ids()[:: src.every][: src.max_frames]:
        path = ann.image_path(image_id)
        if path.resolve() in skip or not path.is_file():
            continue
        rec = ann.images.get(image_id)
        people = None
        if rec is not None:
            boxes = [p.box for p in ann.people if p.image_id == image_id]
            kp = rec.people.copy()
            kp[..., 2] = (kp[..., 2] > 0).astype(np.float32)
            b = np.asarray(boxes, np.float32).reshape(-1, 4)
            people = FramePeople(kp, np.concatenate([b[:, :2], b[:, :2] + b[:, 2:]], -1), np.ones(len(b), bool))
        yield FrameRef(f"{Path(src.path).name}/{path.name}", lambda p=path: cv2.imread(str(p), cv2.IMREAD_COLOR),
                       people, "train", src.copies)


def source_frames(cfg: DistillConfig) -> list[FrameRef]:
    skip = heldout_paths(cfg.heldout)
    out: list[FrameRef] = []
    for src in cfg.sources:
        if src.kind == "video":
            if Path(src.path).resolve() in skip:
                continue
            out += list(_video_frames(src))
        elif src.kind == "images":
            out += list(_image_frames(src, skip))
        else:
            if src.ann_file is None:
                raise ConfigError("distill.sources: a coco source needs ann_file")
            out += list(_coco_frames(src, skip))
    return out


def paste_pool(cfg: DistillConfig) -> InstancePool | None:
    """People with segmentation from the COCO sources, none of them from a held-out image."""
    skip = heldout_paths(cfg.heldout)
    instances, paths = [], {}
    for src in cfg.sources:
        if src.kind != "coco" or src.ann_file is None:
            continue
        ann = open_annotations("coco", src.ann_file, src.path)
        for inst in ann.pool:
            path = ann.image_path(inst.image_id)
            if path.resolve() not in skip:
                instances.append(inst)
                paths[inst.image_id] = path
    if not instances:
        return None
    return InstancePool(instances, lambda image_id: paths[image_id], min_keypoints=5)


# -- targets and matching ---------------------------------------------------------------------------------
def teacher_people(teacher: Detections, labelled: FramePeople | None, min_conf: float,
                   same_iou: float = 0.5) -> FramePeople:
    """Labelled people, plus the teacher's people that match none of them (box IoU < same_iou); the
    teacher's joints count as targets from ``min_conf`` on."""
    kp = teacher.keypoints.copy() if len(teacher) else np.zeros((0, COCO17.num_joints, 3), np.float32)
    kp[..., 2] = (kp[..., 2] >= min_conf).astype(np.float32)
    people = FramePeople(kp, teacher.boxes.copy(), np.zeros(len(teacher), bool))
    if labelled is None or len(labelled) == 0:
        return people
    if len(people):
        keep = box_iou(people.boxes, labelled.boxes).max(1) < same_iou
        people = FramePeople(people.keypoints[keep], people.boxes[keep], people.labelled[keep])
    return labelled.concat(people)


def person_scale(boxes: np.ndarray) -> np.ndarray:
    """float32[M]: sqrt(0.53 x box area), the object scale of OKS for a box (CrowdPose's convention)."""
    wh = np.clip(boxes[:, 2:] - boxes[:, :2], 1.0, None)
    return np.sqrt(0.53 * wh[:, 0] * wh[:, 1]).astype(np.float32)


def oks_matrix(pred: np.ndarray, target: np.ndarray, scale: np.ndarray, sigmas: np.ndarray) -> np.ndarray:
    """float32[n, m]: OKS of predicted poses float[n, K, >=2] against targets float[m, K, 3] (weight > 0
    marks the joints that count), with the targets' scales float[m]."""
    d2 = ((pred[:, None, :, :2] - target[None, :, :, :2]) ** 2).sum(-1)
    return keypoint_similarity(d2, np.maximum(scale, 1.0)[None] ** 2, sigmas, (target[..., 2] > 0)[None])[0].astype(np.float32)


def match_people(pred: Detections, people: FramePeople, min_iou: float, sigmas: np.ndarray) -> np.ndarray:
    """int64[n]: the target each predicted person takes (-1: none); greedy on IoU + OKS, IoU >= min_iou."""
    out = np.full(len(pred), -1, np.int64)
    if len(pred) == 0 or len(people) == 0:
        return out
    iou = box_iou(pred.boxes, people.boxes)
    score = np.where(iou >= min_iou, iou + oks_matrix(pred.keypoints, people.keypoints,
                                                      person_scale(people.boxes), sigmas), -np.inf)
    while np.isfinite(score).any():
        i, j = np.unravel_index(int(np.argmax(score)), score.shape)
        out[i] = j
        score[i, :] = -np.inf
        score[:, j] = -np.inf
    return out


# -- building ---------------------------------------------------------------------------------------------
def base_detector(cfg: DistillConfig, imgsz: int | None = None, features: bool = True) -> Detector:
    """The base model as the pipeline's detector (persons only, same letterbox, NMS and rescaling) on the
    CPU at the student's input size (or ``imgsz``); eager rather than traced, so its numbers are exactly
    ``YOLO.predict``'s. ``features``: each pass's neck maps come with its detections."""
    det = Detector(cfg.base_weights, imgsz=imgsz or cfg.student_imgsz, conf=cfg.conf, device="cpu", frozen=False)
    if features:
        det.capture_features()
    return det


def flip_test(detector: Detector, frame: np.ndarray, min_iou: float = 0.5) -> Detections:
    """The distillation teacher's view: people of the frame averaged with those of its mirror image
    (matched by box IoU >= min_iou); joints are averaged weighted by their confidences. People found in
    one view only are kept as found in the plain view, or dropped when only the mirror found them."""
    plain = detector.detect(frame)
    mirror = flip_detections(detector.detect(frame[:, ::-1].copy()), frame.shape[1])
    return merge_flipped(plain, mirror, min_iou)


def merge_flipped(plain: Detections, mirror: Detections, min_iou: float = 0.5) -> Detections:
    """``plain`` with each person averaged with its best box match in ``mirror`` (greedy, IoU >= min_iou)."""
    if len(plain) == 0 or len(mirror) == 0:
        return plain
    iou = box_iou(plain.boxes, mirror.boxes)
    boxes, scores, kpts = plain.boxes.copy(), plain.scores.copy(), plain.keypoints.copy()
    used = np.zeros(len(mirror), bool)
    for i in range(len(plain)):  # plain people come by decreasing score
        cand = np.where(used, -1.0, iou[i])
        j = int(np.argmax(cand))
        if cand[j] < min_iou:
            continue
        used[j] = True
        a, b = plain.keypoints[i], mirror.keypoints[j]
        w = np.stack([np.maximum(a[:, 2], 1e-3), np.maximum(b[:, 2], 1e-3)])  # [2, K]
        kpts[i, :, :2] = (a[:, :2] * w[0, :, None] + b[:, :2] * w[1, :, None]) / w.sum(0)[:, None]
        kpts[i, :, 2] = (a[:, 2] + b[:, 2]) / 2
        boxes[i] = (plain.boxes[i] + mirror.boxes[j]) / 2
        scores[i] = (plain.scores[i] + mirror.scores[j]) / 2
    return Detections(boxes, scores, kpts)


def cache_key(cfg: DistillConfig, seed: int, base: Detector, grid: tuple[int, float]) -> str:
    settings = {k: v for k, v in to_dict(cfg).items() if k not in ("loss", "ship_to", "cache_dir")}
    w = Path(base.weights)
    blob = json.dumps({"v": CACHE_VERSION, "seed": seed, "cfg": settings, "grid": list(grid),
                       "weights": [w.name, w.stat().st_size]}, sort_keys=True)
    return hashlib.sha1(blob.encode()).hexdigest()[:12]


class DistillBuilder:
    """Makes (or reads back) the copy records of every source frame; ``grid`` = (radius, step in input
    pixels) of the local window read around each joint (the refiner's ``radius`` and ``grid_step``)."""

    def __init__(self, cfg: DistillConfig, cache_root: Path, seed: int = 0, say: Print = print,
                 grid: tuple[int, float] = (2, 4.0)):
        self.cfg, self.seed, self.say = cfg, int(seed), say
        self.grid = (int(grid[0]), float(grid[1]))
        self.base = base_detector(cfg)
        self.teacher = base_detector(cfg, cfg.teacher_imgsz, features=False)
        self.cache = Path(cache_root) / cache_key(cfg, seed, self.base, self.grid)
        self.sigmas = COCO17.sigmas_array
        self._augment: FrameOcclusion | None = None

    @property
    def augment(self) -> FrameOcclusion:
        if self._augment is None:
            self._augment = FrameOcclusion(self.cfg.augment, COCO17, paste_pool(self.cfg))
        return self._augment

    def build(self) -> tuple[list[CopyRecord], list[CopyRecord]]:
        """(train records, val records); frames already in the cache are read, the others made."""
        frames = source_frames(self.cfg)
        self.cache.mkdir(parents=True, exist_ok=True)
        train, val = [], []
        t0, made = time.time(), 0
        for i, ref in enumerate(frames):
            path = self.cache / f"{i:05d}.pt"
            if path.is_file():
                records = [CopyRecord.from_plain(d) for d in torch.load(path, weights_only=True)]
            else:
                records = self.frame_records(ref, i)
                tmp = path.with_suffix(".tmp")
                torch.save([r.to_plain() for r in records], tmp)
                tmp.replace(path)
                made += 1
            (val if ref.split == "val" else train).extend(r for r in records if len(r))
            if made and (made % 10 == 0 or i == len(frames) - 1):
                rate = (time.time() - t0) / made
                self.say(f"distill: {i + 1}/{len(frames)} frames ({made} made, {rate:.1f} s each, "
                         f"about {rate * (len(frames) - i - 1) / 60:.1f} min left)")
        return train, val

    def frame_records(self, ref: FrameRef, index: int) -> list[CopyRecord]:
        image = ref.load()
        if image is None:
            self.say(f"distill: skipped unreadable frame {ref.name}")
            return []
        c = self.cfg
        teacher = flip_test(self.teacher, image) if c.teacher_flip else self.teacher.detect(image)
        people = teacher_people(teacher, ref.people, c.teacher_min_conf)
        out = []
        for copy in range(ref.copies or c.copies):
            rng = np.random.default_rng([self.seed, index, copy])
            aug = self.augment.augment(image, people, rng)
            out.append(self.student_record(aug.image, aug.people, aug.occluded))
        return out

    def student_record(self, image: np.ndarray, people: FramePeople, occluded: np.ndarray) -> CopyRecord:
        det, k = self.base.detect(image), COCO17.num_joints
        n = len(det)
        if det.features is None or det.keypoints is None:
            raise ConfigError("distill.base_weights: the feature tap caught nothing; is it a YOLO pose model?")
        g = (2 * self.grid[0] + 1) ** 2
        feats = np.zeros((n, k, sum(det.features.channels)), np.float16)
        grid = np.zeros((n, k, g, det.features.channels[0]), np.float16)
        step = np.zeros(n, np.float32)
        if n:
            feats = det.features.sample(det.keypoints[..., :2], image.shape[:2]).numpy().astype(np.float16)
            grid_t, image_step = det.features.sample_grid(det.keypoints[..., :2], image.shape[:2], *self.grid)
            grid = grid_t.numpy().astype(np.float16)
            step[:] = image_step
        match = match_people(det, people, self.cfg.match_iou, self.sigmas)
        target = np.zeros((n, k, 2), np.float32)
        weight = np.zeros((n, k), np.float32)
        occ = np.zeros((n, k), bool)
        scale = np.ones(n, np.float32)
        labelled = np.zeros(n, bool)
        has = match >= 0
        if has.any():
            j = match[has]
            target[has] = people.keypoints[j, :, :2]
            weight[has] = people.keypoints[j, :, 2]
            occ[has] = occluded[j]
            scale[has] = person_scale(people.boxes[j])
            labelled[has] = people.labelled[j]
        return CopyRecord(det.keypoints.astype(np.float32), det.boxes.astype(np.float32), feats, grid, step, target,
                          weight, scale, occ, labelled)
