"""The frame pipeline: detector → pose estimator → optional refiner → tracker.

``Pipeline.stream(frames)`` is a generator of :class:`FrameResult`; it knows nothing about where
frames come from or where results go, so the batch command, the GUI and the benchmark all consume
the same generator.

Work overlaps: decoding runs ahead in a background thread, and when the detector is thread-safe
``workers`` frames are in detection at once (each with ``threads`` torch threads), so on a machine with
few cores inference keeps every core busy while results still come out in frame order. Pose
estimation, refinement and tracking run in the consuming thread, one frame at a time, in order.

``stream`` smooths the joints with ``tracker.smoothing_lag`` frames of look-ahead
(:class:`trackers.smoother.FixedLagSmoother`), then stitches identities and fills gaps over
``tracker.stitch_gap + 1`` frames (:class:`trackers.stitching.Stitcher`), so its results come out
:attr:`Pipeline.delay` frames late and the last ones when the frames run out; :meth:`Pipeline.track`,
for live display, is causal.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Literal, Protocol

import numpy as np

from posecore.config import from_dict, option
from posecore.detector import Detector, DetectorConfig
from posecore.errors import ConfigError
from posecore.estimators.base import PoseEstimator
from posecore.estimators.yolo import YoloPoseEstimator
from posecore.io.sources import Frame
from posecore.io.threads import Prefetcher
from posecore.multiscale import MultiPassDetector, PassesConfig
from posecore.types import Detections, FrameResult, Poses, Track
from trackers.camera_motion import CameraMotion
from trackers.smoother import FixedLagSmoother
from trackers.stitching import StitchSettings, Stitcher, forget_after, stitch_settings
from trackers.tracker import Tracker, TrackerConfig

if TYPE_CHECKING:
    import torch

    from posecore.pair_stage import PairStage

log = logging.getLogger("occlupose.pipeline")


@dataclass
class PoseConfig:
    backend: Literal["yolo", "dag"] = option("yolo", help="yolo: the detector's pose head; dag: top-down DAG")
    weights: str | None = option(None, help="checkpoint for the dag backend")
    pair_weights: str | None = option(
        None, help="dag: CoupleGraph checkpoint for overlapping pairs (default: the one inside --weights, if any)")
    seen_threshold: float = option(0.5, ge=0.0, le=1.0, help="joint confidence at which a joint counts as seen")
    flip_test: bool = option(False, help="dag: average with the horizontally flipped crop")
    refine: Literal["auto", "on", "off"] = option(
        "auto", help="yolo: the shipped refiner (FGMH-GCN + CoupleGraph on the detector's own features); "
                     "auto: on only where it was measured to help. dag: the CoupleGraph pair stage; auto: "
                     "when there are pair weights, on: an error without them, off: the DAG alone")


@dataclass
class PipelineConfig:
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    pose: PoseConfig = field(default_factory=PoseConfig)
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    passes: PassesConfig = field(default_factory=PassesConfig)  # extra inference passes (posecore.multiscale)
    prefetch: int = option(4, ge=1, le=64, help="decoded frames kept ready ahead of inference")
    workers: int = option(0, ge=0, le=16, help="frames in detection at once; 0: auto (2 when the detector allows)")
    stills: bool = option(False, help="frames are unrelated still images: each is tracked alone (no IDs or "
                                      "smoothing across them), so every person is reported exactly as detected")
    threads: int = option(0, ge=0, le=256,
                          help="torch threads per detection worker on CPU; 0: auto (the cores left after one "
                               "for decoding and encoding, shared by the workers, at least 1)")


def load_pipeline_config(data: dict | None) -> PipelineConfig:
    return from_dict(PipelineConfig, data or {}, "")


def build_estimator(cfg: PoseConfig, device: str) -> PoseEstimator:
    if cfg.backend == "yolo":
        return YoloPoseEstimator(cfg.seen_threshold)
    if not cfg.weights:
        raise ConfigError("pose.weights: the dag backend needs a checkpoint (--weights CKPT)")
    from posecore.estimators.topdown import TopDownEstimator

    return TopDownEstimator.from_checkpoint(cfg.weights, device=device, flip_test=cfg.flip_test,
                                            seen_threshold=cfg.seen_threshold)


def build_pair_stage(cfg: PoseConfig, estimator: PoseEstimator) -> PairStage | None:
    """The dag backend's CoupleGraph stage (``pose.pair_weights``, else the one inside ``pose.weights``), or
    None: the DAG alone, said once in the log. Weights that are missing or do not fit raise WeightsError.
    ``estimator``: the one :func:`build_estimator` made from ``cfg`` (it holds the DAG checkpoint's extra)."""
    if cfg.backend != "dag":
        if cfg.pair_weights:
            raise ConfigError("pose.pair_weights: only for the dag backend (--pose dag)")
        return None
    from posecore.pair_stage import PairStage

    if cfg.refine == "off":
        log.info("pose.refine: off: the DAG runs without its pair stage")
        return None
    stage = PairStage.for_dag(cfg.weights, estimator.checkpoint_extra, cfg.pair_weights, estimator.skeleton,
                              estimator.num_joints, estimator.feature_channels, device=estimator.device)
    if stage is None and cfg.refine == "on":
        raise ConfigError(f"pose.refine: on: {cfg.weights} holds no pair stage; give one with --pair-weights")
    if stage is None:
        log.warning("pose: %s holds no pair stage and pose.pair_weights is not set: the DAG runs alone, "
                    "without CoupleGraph", cfg.weights)
    else:
        log.info("pose: CoupleGraph on overlapping pairs (box IoU >= %.2f) from %s", stage.iou_threshold, stage.source)
    return stage


def available_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def auto_threads(workers: int, cores: int | None = None) -> int:
    """Torch threads per detection worker: the cores left after two (decode and encode threads, the
    tracker) shared by the workers, at least one. With few cores, one thread per worker: several
    frames in flight use the cores better than one frame split across threads, and degrade gently
    when other processes want the cores too."""
    cores = available_cores() if cores is None else cores
    return max(1, (cores - 2) // max(1, workers))


@dataclass
class _Decoded:
    """A frame and the seconds its decoding took in the prefetch thread."""

    frame: Frame
    seconds: float


def _timed(frames: Iterable[Frame]) -> Iterator[_Decoded]:
    it = iter(frames)
    try:
        while True:
            t0 = time.perf_counter()
            try:
                frame = next(it)
            except StopIteration:
                return
            yield _Decoded(frame, time.perf_counter() - t0)
    finally:
        close = getattr(it, "close", None)
        if close is not None:
            close()


@contextlib.contextmanager
def torch_threads(n: int):
    """Run the block with ``n`` torch threads (0: leave as is), then restore the caller's setting."""
    if n <= 0:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _with_tracks(done: list[tuple[FrameResult, list[Track]]]) -> list[FrameResult]:
    """Each result with the tracks the smoother made final for it."""
    return [r if tracks is r.tracks else replace(r, tracks=tracks) for r, tracks in done]


class PoseDetector(Protocol):
    """What the pipeline uses of a detector: :class:`posecore.detector.Detector`'s interface, which
    stand-ins (scripted scenes, tests) implement as well."""

    thread_safe: bool  # ``detect`` may run in several threads at once
    device: torch.device

    def detect(self, image: np.ndarray) -> Detections: ...


class Pipeline:
    """Runs the stages on frames. Stages are plain objects with ``detect`` / ``estimate`` /
    ``refine`` / ``update`` methods (the interfaces of :class:`PoseDetector`, :class:`PoseEstimator`
    and :class:`trackers.tracker.Tracker`), so any of them can be swapped or faked."""

    def __init__(self, detector: PoseDetector, estimator: PoseEstimator, tracker: Tracker, refiner=None,
                 prefetch: int = 4, workers: int = 0, threads: int = 0, stills: bool = False,
                 smoothing_lag: int | None = None):
        self.detector = detector
        self.estimator = estimator
        self.tracker = tracker
        self.refiner = refiner
        self.prefetch = prefetch
        self.workers = workers
        self.threads = threads
        self.stills = stills
        if smoothing_lag is None:
            smoothing_lag = tracker.config.smoothing_lag
        # Unrelated photos have nothing to smooth across.
        self.smoother: FixedLagSmoother[FrameResult] = FixedLagSmoother(0 if stills else smoothing_lag)
        # Offline stitching and gap filling after the smoother (trackers.stitching); batch runs only.
        tcfg = tracker.config
        self.stitcher: Stitcher[FrameResult] = Stitcher(
            StitchSettings(max_gap=0) if stills else stitch_settings(tcfg), forget_after(tcfg))
        # Camera-motion compensation of the track predictions (trackers.camera_motion).
        self.camera = CameraMotion("off" if stills else tcfg.camera_motion)
        self._ready: deque[FrameResult] = deque()  # final results the consumer has not taken yet
        self._section: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext

    @classmethod
    def from_config(cls, cfg: PipelineConfig | dict) -> "Pipeline":
        if isinstance(cfg, dict):
            cfg = load_pipeline_config(cfg)
        detector = Detector.from_config(cfg.detector)
        if cfg.pose.backend == "yolo" and not detector.has_pose_head:
            raise ConfigError("pose.backend: yolo needs pose weights for the detector (a *-pose.pt model)")
        estimator = build_estimator(cfg.pose, cfg.detector.device)
        if cfg.pose.backend == "yolo":
            from posecore.refine import build_default_refiner

            refiner = build_default_refiner(detector, cfg.pose.refine)
        else:
            refiner = build_pair_stage(cfg.pose, estimator)
        # -- extra inference passes for the yolo backend's keypoints: flip, scale or tiles, zoom-in (multiscale)
        if cfg.pose.backend != "yolo":
            pass  # the dag backend finds its own joints in the boxes (and has its own flip_test)
        elif cfg.passes.active and refiner is not None:
            # The refiner reads the neck maps of the one pass that found its people.
            warnings.warn("passes: the refiner is on, so the extra passes are off (--quality fast)")
        elif cfg.passes.active:
            detector = MultiPassDetector.from_config(detector, cfg.detector, cfg.passes)
        pipeline = cls(detector, estimator, Tracker.from_config(cfg.tracker), refiner=refiner,
                       prefetch=cfg.prefetch, workers=cfg.workers, threads=cfg.threads, stills=cfg.stills)
        workers, threads = pipeline.concurrency
        detector.set_concurrency(workers, threads or 1)  # OpenVINO: its streams and their threads
        return pipeline

    def reset(self) -> None:
        """Forget all tracks, as before a new video."""
        self.tracker.reset()
        self.smoother.reset()
        self.stitcher.reset()
        self.camera.reset()
        self._ready.clear()

    @contextlib.contextmanager
    def atomic_steps(self, section: Callable[[], contextlib.AbstractContextManager]) -> Iterator[None]:
        """Within this block, each step that moves results through the smoothing and stitching windows
        runs inside ``section()`` (the run loop's signal deferral), so an interrupt never catches a result
        between the windows, where :meth:`flush` would not find it."""
        before, self._section = self._section, section
        try:
            yield
        finally:
            self._section = before

    @property
    def delay(self) -> int:
        """Frames :meth:`stream` holds results back (smoothing, then stitching): the last ones written
        before an interruption are redone on resume."""
        return self.smoother.lag + self.stitcher.window

    @property
    def skeleton(self) -> str:
        return self.estimator.skeleton

    @property
    def concurrency(self) -> tuple[int, int]:
        """(detection workers, torch threads per worker) that :meth:`stream` uses; threads 0 means
        torch's setting is left alone (accelerators)."""
        workers = (self.workers or 2) if self.detector.thread_safe else 1
        on_cpu = self.detector.device.type == "cpu"
        threads = (self.threads or auto_threads(workers)) if on_cpu else self.threads
        return workers, threads

    def estimate(self, image: np.ndarray, timings: dict[str, float] | None = None) -> Poses:
        """Detect and estimate poses in one BGR frame (no tracking)."""
        timings = {} if timings is None else timings
        t0 = time.perf_counter()
        detections = self.detector.detect(image)
        timings["detect"] = time.perf_counter() - t0
        return self._poses(image, detections, timings)

    def _poses(self, image: np.ndarray, detections: Detections, timings: dict[str, float]) -> Poses:
        t1 = time.perf_counter()
        features = detections.features
        if self.refiner is not None and self.refiner.reads_joint_features:  # the dag backend's pair stage
            poses, features = self.estimator.estimate_features(image, detections)
        else:
            poses = self.estimator.estimate(image, detections)
        t2 = time.perf_counter()
        if self.refiner is not None:
            poses = self.refiner.refine(image, poses, features)
        t3 = time.perf_counter()
        timings.update(pose=t2 - t1, refine=t3 - t2)
        return poses

    def track(self, frame: Frame, poses: Poses, timings: dict[str, float] | None = None,
              stills: bool | None = None) -> FrameResult:
        """Feed one frame's poses to the tracker and package the result; ``stills`` (default: the
        pipeline's setting) treats the frame as a photo of its own."""
        return self._track(frame, poses, {} if timings is None else timings, stills, keep_step=False)

    def _track(self, frame: Frame, poses: Poses, timings: dict[str, float], stills: bool | None,
               keep_step: bool) -> FrameResult:
        t0, c0 = time.perf_counter(), time.thread_time()
        photo = self.stills if stills is None else stills
        if photo:
            self.tracker.reset()  # a new photo: nobody carries over, everyone is reported as detected
        warp = None if photo else self.camera.warp(frame.image)
        # A photo reports everyone as detected, edge slivers included (the tracker leaves them out given a width).
        tracks = self.tracker.update(poses, frame.index, keep_step=keep_step, warp=warp,
                                     width=None if photo else frame.image.shape[1])
        timings["track"] = time.perf_counter() - t0
        # CPU time of this thread: with other threads busy, the wall time above also counts the waits
        # for a core or for the GIL, while the others work.
        timings["track_cpu"] = time.thread_time() - c0
        return FrameResult(frame.index, frame.time_s, frame.image, poses, tracks, frame.name, timings)

    def replay(self, frame: Frame, poses: Poses, timings: dict[str, float] | None = None) -> Iterator[FrameResult]:
        """Track one frame with known poses (no inference), smoothed as in :meth:`stream`, whose window
        it shares, at once; returns an iterator over the results that are final now, oldest first (none
        while the window fills)."""
        timings = {} if timings is None else timings
        smoothing = self.smoother.lag > 0
        result = self._track(frame, poses, timings, None, keep_step=smoothing)
        t0, c0 = time.perf_counter(), time.thread_time()
        with self._section():
            done = self.smoother.push(result, result.tracks, self.tracker.last_step if smoothing else None)
            self._ready.extend(self._stitch(_with_tracks(done)))
        timings["track"] += time.perf_counter() - t0  # smoothing and stitching count as tracking
        timings["track_cpu"] += time.thread_time() - c0
        return self._take()

    def _stitch(self, results: list[FrameResult]) -> list[FrameResult]:
        done = []
        for r in results:
            done += self.stitcher.push(r, r.tracks, r.image)
        return _with_tracks(done)

    def _take(self) -> Iterator[FrameResult]:
        """The final results, in order. Each leaves the pipeline when the consumer comes back for the
        next one or closes the stream: one the consumer was interrupted on is still in :meth:`flush` until
        then (its index tells a consumer that had written it already)."""
        while self._ready:
            result = self._ready[0]
            try:
                yield result
            finally:
                if self._ready and self._ready[0] is result:  # not flushed meanwhile
                    self._ready.popleft()

    def _finish(self) -> None:
        with self._section():
            self._ready.extend(self._stitch(_with_tracks(self.smoother.flush())))
            self._ready.extend(_with_tracks(self.stitcher.flush()))

    def flush(self) -> list[FrameResult]:
        """Every result not taken yet, final now (the end of a video, or an early stop): those final
        already, then those held for smoothing and stitching."""
        self._finish()
        done = list(self._ready)
        self._ready.clear()
        return done

    def process(self, frame: Frame) -> FrameResult:
        """Detect, estimate and track one frame, causally (no smoothing window), as live display does."""
        timings: dict[str, float] = {}
        poses = self.estimate(frame.image, timings)
        return self.track(frame, poses, timings)

    def stream(self, frames: Iterable[Frame]) -> Iterator[FrameResult]:
        """Results for ``frames`` in order; decoding and the detection of later frames overlap the
        rest of the work.

        ``timings`` of each result: ``decode`` (seconds decoding that frame took, in the prefetch
        thread), ``detect`` (its detection, in a worker), ``pose``, ``refine``, ``track``, and ``wait``
        (seconds the consuming thread waited for the frame and its detections).
        """
        workers, threads = self.concurrency
        with Prefetcher(_timed(frames), depth=self.prefetch) as ahead, torch_threads(threads):
            if workers <= 1:
                yield from self._serial(ahead)
            else:
                yield from self._overlapped(ahead, workers)
            # Only at the end of the frames: a consumer that stops early leaves the held results to
            # flush (or to a resume, which replays them exactly).
            self._finish()
            yield from self._take()

    def _serial(self, ahead: Iterator[_Decoded]) -> Iterator[FrameResult]:
        while True:
            t0 = time.perf_counter()
            try:
                item = next(ahead)
            except StopIteration:
                return
            wait = time.perf_counter() - t0
            timings = {"decode": item.seconds, "wait": wait}
            poses = self.estimate(item.frame.image, timings)
            yield from self.replay(item.frame, poses, timings)

    def _overlapped(self, ahead: Iterator[_Decoded], workers: int) -> Iterator[FrameResult]:
        def detect(image: np.ndarray):
            t0 = time.perf_counter()
            detections = self.detector.detect(image)
            return detections, time.perf_counter() - t0

        pending: deque[tuple[_Decoded, Future]] = deque()
        exhausted = False
        with ThreadPoolExecutor(workers, thread_name_prefix="detect") as pool:
            try:
                while True:
                    t0 = time.perf_counter()
                    # One frame more than workers: the next one starts the moment a worker is free,
                    # even while this thread is busy with tracking or the consumer.
                    while not exhausted and len(pending) <= workers:
                        try:
                            item = next(ahead)
                        except StopIteration:
                            exhausted = True
                            break
                        pending.append((item, pool.submit(detect, item.frame.image)))
                    if not pending:
                        return
                    item, future = pending.popleft()
                    detections, detect_s = future.result()
                    timings = {"decode": item.seconds, "detect": detect_s, "wait": time.perf_counter() - t0}
                    poses = self._poses(item.frame.image, detections, timings)
                    yield from self.replay(item.frame, poses, timings)
            finally:
                for _, future in pending:
                    future.cancel()
