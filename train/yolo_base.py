"""The base estimator the refiner corrects: YOLO11n-pose, run on whole frames, with its neck features.

:class:`YoloBase` runs ``YOLO.predict`` with the pipeline's settings (persons only; the same letterbox,
NMS and rescaling as ``posecore.detector.Detector``) and returns the people found with the neck maps of
that very pass. :meth:`YoloBase.flip_test` is the distillation teacher's view: the frame and its mirror
image, the mirrored people flipped back (left and right joints swapped) and averaged with their match.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from posecore.detector import PERSON_CLASS, bundled_weights, load_yolo
from posecore.models.couplegraph import box_iou
from posecore.skeleton import COCO17
from posecore.types import Detections
from posecore.yolo_features import YoloFeatures, YoloFeatureTap


@dataclass
class BaseOutput:
    """People found in one frame and the neck maps of the pass that found them."""

    detections: Detections
    features: YoloFeatures | None


class YoloBase:
    """YOLO pose model on CPU (or ``device``), persons only; ``run(frame)`` -> :class:`BaseOutput`."""

    def __init__(self, weights: str | Path | None = None, imgsz: int = 640, conf: float = 0.1, iou: float = 0.7,
                 max_det: int = 100, device: str = "cpu"):
        self.weights = Path(weights) if weights else bundled_weights()
        self.model = load_yolo(self.weights)
        self.imgsz, self.conf, self.iou = int(imgsz), float(conf), float(iou)
        self.max_det, self.device = int(max_det), device
        self.tap = YoloFeatureTap(self.model)

    def run(self, frame: np.ndarray, imgsz: int | None = None) -> BaseOutput:
        """People in a BGR uint8[H, W, 3] frame, by decreasing score, and that pass's neck maps."""
        threads = torch.get_num_threads()  # Ultralytics resets torch's thread count when it sets up
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                result = self.model.predict(frame, imgsz=imgsz or self.imgsz, conf=self.conf, iou=self.iou,
                                            max_det=self.max_det, classes=[PERSON_CLASS], device=self.device,
                                            verbose=False)[0]
        finally:
            torch.set_num_threads(threads)
        return BaseOutput(_detections(result), self.tap.take())

    def flip_test(self, frame: np.ndarray, imgsz: int | None = None, min_iou: float = 0.5) -> Detections:
        """People of the frame averaged with those of its mirror image (matched by box IoU >= min_iou);
        joints are averaged weighted by their confidences. People found in one view only are kept as found
        in the plain view, or dropped when only the mirror found them."""
        plain = self.run(frame, imgsz).detections
        mirror = flip_detections(self.run(frame[:, ::-1].copy(), imgsz).detections, frame.shape[1])
        return merge_flipped(plain, mirror, min_iou)


def _detections(result) -> Detections:
    boxes = result.boxes
    if boxes is None or len(boxes) == 0:
        return Detections.empty(COCO17.num_joints)
    xyxy = boxes.xyxy.float().cpu().numpy()
    conf = boxes.conf.float().cpu().numpy()
    kpts = result.keypoints.data.float().cpu().numpy()
    order = np.argsort(-conf, kind="stable")
    return Detections(xyxy, conf, kpts).select(order)


def flip_detections(det: Detections, width: int) -> Detections:
    """Detections of a mirrored frame of ``width`` pixels, in the plain frame (x -> W - x, sides swapped)."""
    boxes = det.boxes.copy()
    boxes[:, [0, 2]] = width - det.boxes[:, [2, 0]]
    kpts = det.keypoints[:, COCO17.flip_index].copy()
    kpts[..., 0] = width - kpts[..., 0]
    return Detections(boxes, det.scores.copy(), kpts)


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
