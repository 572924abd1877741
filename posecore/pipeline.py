"""The frame pipeline: detector → pose estimator → optional refiner → tracker.

``Pipeline.stream(frames)`` is a generator of :class:`FrameResult`; it knows nothing about where
frames come from or where results go, so the batch command, the GUI and the benchmark all consume
the same generator. Decoding runs ahead in a background thread so it overlaps inference.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from trackers.tracker import Tracker, TrackerConfig

from .config import from_dict, option
from .detector import Detector, DetectorConfig
from .errors import ConfigError
from .estimators.base import PoseEstimator
from .estimators.yolo import YoloPoseEstimator
from .io.threads import Prefetcher
from .io.sources import Frame
from .types import FrameResult, Poses


@dataclass
class PoseConfig:
    backend: Literal["yolo", "dag"] = option("yolo", help="yolo: the detector's pose head; dag: top-down DAG")
    weights: str | None = option(None, help="checkpoint for the dag backend")
    seen_threshold: float = option(0.5, ge=0.0, le=1.0, help="joint confidence at which a joint counts as seen")
    flip_test: bool = option(False, help="dag: average with the horizontally flipped crop")


@dataclass
class PipelineConfig:
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    pose: PoseConfig = field(default_factory=PoseConfig)
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    prefetch: int = option(4, ge=1, le=64, help="decoded frames kept ready ahead of inference")


def load_pipeline_config(data: dict | None) -> PipelineConfig:
    return from_dict(PipelineConfig, data or {}, "")


def build_estimator(cfg: PoseConfig, device: str) -> PoseEstimator:
    if cfg.backend == "yolo":
        return YoloPoseEstimator(cfg.seen_threshold)
    if not cfg.weights:
        raise ConfigError("pose.weights: the dag backend needs a checkpoint (--weights CKPT)")
    from .estimators.topdown import TopDownEstimator

    return TopDownEstimator.from_checkpoint(cfg.weights, device=device, flip_test=cfg.flip_test,
                                            seen_threshold=cfg.seen_threshold)


class Pipeline:
    """Runs the stages on frames. Stages are plain objects with ``detect`` / ``estimate`` /
    ``refine`` / ``update`` methods, so any of them can be swapped or faked."""

    def __init__(self, detector: Detector, estimator: PoseEstimator, tracker: Tracker, refiner=None,
                 prefetch: int = 4):
        self.detector = detector
        self.estimator = estimator
        self.tracker = tracker
        self.refiner = refiner
        self.prefetch = prefetch

    @classmethod
    def from_config(cls, cfg: PipelineConfig | dict) -> "Pipeline":
        if isinstance(cfg, dict):
            cfg = load_pipeline_config(cfg)
        detector = Detector.from_config(cfg.detector)
        if cfg.pose.backend == "yolo" and not detector.has_pose_head:
            raise ConfigError("pose.backend: yolo needs pose weights for the detector (a *-pose.pt model)")
        estimator = build_estimator(cfg.pose, cfg.detector.device)
        return cls(detector, estimator, Tracker.from_config(cfg.tracker), prefetch=cfg.prefetch)

    def reset(self) -> None:
        """Forget all tracks, as before a new video."""
        self.tracker.reset()

    @property
    def skeleton(self) -> str:
        return self.estimator.skeleton

    def estimate(self, image: np.ndarray, timings: dict[str, float] | None = None) -> Poses:
        """Detect and estimate poses in one BGR frame (no tracking)."""
        timings = {} if timings is None else timings
        t0 = time.perf_counter()
        detections = self.detector.detect(image)
        t1 = time.perf_counter()
        poses = self.estimator.estimate(image, detections)
        t2 = time.perf_counter()
        if self.refiner is not None:
            poses = self.refiner.refine(image, poses, None)
        t3 = time.perf_counter()
        timings.update(detect=t1 - t0, pose=t2 - t1, refine=t3 - t2)
        return poses

    def track(self, frame: Frame, poses: Poses, timings: dict[str, float] | None = None) -> FrameResult:
        """Feed one frame's poses to the tracker and package the result."""
        timings = {} if timings is None else timings
        t0 = time.perf_counter()
        tracks = self.tracker.update(poses, frame.index)
        timings["track"] = time.perf_counter() - t0
        return FrameResult(frame.index, frame.time_s, frame.image, poses, tracks, frame.name, timings)

    def process(self, frame: Frame) -> FrameResult:
        timings: dict[str, float] = {}
        poses = self.estimate(frame.image, timings)
        return self.track(frame, poses, timings)

    def stream(self, frames: Iterable[Frame]) -> Iterator[FrameResult]:
        """Results for ``frames`` in order; decoding of later frames overlaps inference."""
        with Prefetcher(frames, depth=self.prefetch) as ahead:
            while True:
                t0 = time.perf_counter()
                try:
                    frame = next(ahead)
                except StopIteration:
                    return
                wait = time.perf_counter() - t0
                result = self.process(frame)
                result.timings["decode"] = wait
                yield result
