"""Throughput of occlupose and of Ultralytics ``YOLO.track``, measured side by side in one process.

Every contender decodes the same file with the same decoder (so they see identical frames, and
decoding counts for all), processes frame 0 untimed (model setup, graph tracing), then the rest in
turns of ``chunk`` frames, round robin with the order rotating every round: a busy machine slows all
contenders alike. A turn ends only when the contender's work for its frames is complete (occlupose's
detection workers idle, its encoder drained), so no contender works during another's turn.

* Ultralytics: ``model.track(frame, persist=True, tracker=...)`` per frame, in the calling thread, with
  the torch thread count Ultralytics itself sets (its default), or ``ultralytics_threads``.
* occlupose: :meth:`Pipeline.stream` (decode thread, detection workers, pose, tracking and keypoint
  smoothing), each result drawn and encoded to H.264 in a background thread, as ``occlupose process``
  does.
* occlupose's network alone (``--ceiling``): the pipeline's own detector on the same frames with the same
  workers and threads, and nothing after it: the frames/s the pipeline could reach if everything but the
  network were free.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import logging
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from app.run.pipeline import Pipeline, torch_threads
from app.run.sinks import AnnotatedSink
from posecore.draw import DrawOptions
from posecore.io.sources import Frame, open_source
from posecore.types import Poses

from .metrics import FrameTracks
from .tracker_adapters import from_ultralytics_result

STAGES = ("decode", "detect", "pose", "refine", "track", "draw", "encode")


@dataclass
class RunStats:
    """One contender's run. ``outputs`` holds its tracks for every frame (frame 0 included); the
    speed figures cover the timed frames only."""

    name: str
    label: str
    includes: str
    frames: int = 0  # timed frames
    seconds: float = 0.0  # wall clock of the timed frames
    outputs: list[FrameTracks] = field(default_factory=list)
    stages: dict[str, float] = field(default_factory=dict)  # summed seconds per stage over timed frames
    threads: str = ""

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def stage_ms(self) -> dict[str, float]:
        """Mean milliseconds per timed frame of each stage."""
        return {k: v / self.frames * 1e3 for k, v in self.stages.items()} if self.frames else {}


class Contender(Protocol):
    stats: RunStats

    def warm_up(self) -> bool:
        """Process the first frame, untimed; False when there is none."""
        ...

    def run(self, n: int) -> int:
        """Process up to ``n`` more frames, timed; returns how many there were."""
        ...

    def close(self) -> None:
        ...


def limited(path: str, max_frames: int | None) -> Iterator[Frame]:
    """The decoded frames of ``path``, at most ``max_frames``."""
    for frame in open_source(path):
        if max_frames is not None and frame.index >= max_frames:
            return
        yield frame


@contextlib.contextmanager
def _quiet_ultralytics():
    """No info lines from Ultralytics (its logger writes to the stdout it found at import) nor prints."""
    log = logging.getLogger("ultralytics")
    level = log.level
    log.setLevel(logging.WARNING)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        log.setLevel(level)


class UltralyticsContender:
    """``YOLO.track`` on each decoded frame, as a user of Ultralytics would run it."""

    def __init__(self, name: str, label: str, tracker: str, model, video: str, max_frames: int | None,
                 predict_args: dict, threads: int | None, runtime: str = "torch"):
        self.model = model
        self.runtime = runtime
        self.tracker = tracker
        self.args = predict_args
        self.frames = limited(video, max_frames)
        self.threads = threads
        self.stats = RunStats(name, label, "decode + YOLO.track (letterbox, network, NMS, tracker)")

    def _track(self, frame: Frame) -> FrameTracks:
        result = self.model.track(frame.image, persist=True, tracker=self.tracker, **self.args)[0]
        return from_ultralytics_result(result)

    def warm_up(self) -> bool:
        import torch

        frame = next(self.frames, None)
        if frame is None:
            return False
        with _quiet_ultralytics():  # it announces the model it sets up
            self.stats.outputs.append(self._track(frame))
        if self.threads is None:
            self.threads = torch.get_num_threads()  # what Ultralytics chose when it set up its predictor
        self.stats.threads = f"{self.threads} torch thread{'s' * (self.threads > 1)}"
        if self.runtime == "openvino":  # the network runs on OpenVINO's own threads, as Ultralytics configures them
            self.stats.threads = "OpenVINO's threads (Ultralytics' LATENCY hint); " + self.stats.threads + " for the rest"
        return True

    def run(self, n: int) -> int:
        with torch_threads(self.threads):  # restored afterwards: the caller's setting is not ours to change
            return self._run(n)

    def _run(self, n: int) -> int:
        done = 0
        stats = self.stats
        while done < n:
            t0 = time.perf_counter()
            frame = next(self.frames, None)
            if frame is None:
                break
            t1 = time.perf_counter()
            result = self.model.track(frame.image, persist=True, tracker=self.tracker, **self.args)[0]
            t2 = time.perf_counter()
            stats.seconds += t2 - t0
            stats.stages["decode"] = stats.stages.get("decode", 0.0) + t1 - t0
            stats.stages["track_call"] = stats.stages.get("track_call", 0.0) + t2 - t1
            stats.outputs.append(from_ultralytics_result(result))
            done += 1
        stats.frames += done
        return done

    def close(self) -> None:
        pass


class OccluposeContender:
    """The product path: Pipeline.stream, then drawing and H.264 encoding in a background thread (the
    run layer's :class:`AnnotatedSink`, as ``occlupose process`` does)."""

    def __init__(self, pipeline: Pipeline, video: str, max_frames: int | None, out_video: Path,
                 draw: DrawOptions | None = None):
        self.pipeline = pipeline
        self.frames = limited(video, max_frames)
        self.fps = open_source(video).fps
        self.out_video = Path(out_video)
        self.draw = draw or DrawOptions()
        self.poses: list[Poses] = []  # the tracker's input per frame: the clean detections
        self.size: tuple[int, int] | None = None  # frame width, height
        workers, threads = pipeline.concurrency
        self.stats = RunStats("occlupose", "occlupose", "decode + detect + pose + track + smoothing + draw + encode")
        self.stats.threads = f"{workers} detection worker{'s' * (workers > 1)} x {threads or 'default'} torch thread" \
                             f"{'s' * (threads != 1)}"
        self._timed = False
        self._sink = AnnotatedSink.video(self.out_video, self.fps, pipeline.skeleton, self.draw)

    def _add(self, stage: str, seconds: float) -> None:
        self.stats.stages[stage] = self.stats.stages.get(stage, 0.0) + seconds

    def _flush(self) -> None:
        """Wait until every frame handed to the encoder is written; count its drawing and encoding."""
        self._sink.flush()
        if self._timed:
            for stage, seconds in self._sink.seconds.items():
                self._add(stage, seconds)
        self._sink.seconds = dict.fromkeys(self._sink.seconds, 0.0)

    def _consume(self, frames) -> int:
        n = 0
        for result in self.pipeline.stream(frames):
            if self.size is None:
                self.size = (result.image.shape[1], result.image.shape[0])
            self.stats.outputs.append(FrameTracks.from_tracks(result.tracks, result.poses.num_joints))
            self.poses.append(result.poses)
            if self._timed:
                for k in ("decode", "detect", "pose", "refine", "track", "track_cpu", "wait"):
                    self._add(k, result.timings.get(k, 0.0))
            self._sink.write(result)
            n += 1
        return n

    def warm_up(self) -> bool:
        first = next(self.frames, None)
        if first is None:
            return False
        self.pipeline.reset()
        done = self._consume([first])
        self._flush()
        self._timed = True
        return done == 1

    def run(self, n: int) -> int:
        t0 = time.perf_counter()
        done = self._consume(itertools.islice(self.frames, n))
        self._flush()
        self.stats.seconds += time.perf_counter() - t0
        self.stats.frames += done
        return done

    def close(self) -> None:
        self._sink.close()


class NetworkContender:
    """The pipeline's detector alone (letterbox, network, NMS) on the decoded frames, ``workers`` frames in
    flight as :meth:`Pipeline.stream` keeps them: occlupose's frames/s if everything after the network cost
    nothing (a ceiling up to the machine's noise: where the rest hides behind the network, the two measure
    alike)."""

    def __init__(self, pipeline: Pipeline, video: str, max_frames: int | None):
        self.detector = pipeline.detector
        self.workers, self.threads = pipeline.concurrency
        self.frames = limited(video, max_frames)
        self.stats = RunStats("network_alone", "occlupose's network alone",
                              "decode + letterbox + network + NMS, nothing after (the ceiling)",
                              threads=f"{self.workers} detection worker{'s' * (self.workers > 1)}, as occlupose")
        self.detections: list[int] = []  # people found per frame (frame 0 included)
        # one pool for the whole race, as `occlupose process` keeps its workers for the whole video
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="network")

    def _detect(self, frames) -> int:
        pending: deque = deque()
        done = 0
        with torch_threads(self.threads):
            for frame in frames:
                if len(pending) > self.workers:
                    self.detections.append(len(pending.popleft().result()))
                    done += 1
                pending.append(self._pool.submit(self.detector.detect, frame.image))
            for future in pending:
                self.detections.append(len(future.result()))
                done += 1
        return done

    def warm_up(self) -> bool:
        first = next(self.frames, None)
        return first is not None and self._detect([first]) == 1

    def run(self, n: int) -> int:
        t0 = time.perf_counter()
        done = self._detect(itertools.islice(self.frames, n))
        self.stats.seconds += time.perf_counter() - t0
        self.stats.frames += done
        return done

    def close(self) -> None:
        self._pool.shutdown(cancel_futures=True)


def race(contenders: list[Contender], chunk: int, progress=None) -> None:
    """Run every contender over all its frames in turns of ``chunk`` frames (see the module docstring)."""
    active = [c for c in contenders if c.warm_up()]
    turn = 0
    while active:
        shift = turn % len(active)
        finished = []
        for c in active[shift:] + active[:shift]:
            done = c.run(chunk)
            if progress is not None:
                progress(done)
            if done < chunk:
                finished.append(c)
        active = [c for c in active if c not in finished]
        turn += 1


def peak_rss_mb() -> float:
    """Peak resident memory of this process (and of finished children), MB."""
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024.0  # kB on Linux


def stage_summary(stats: RunStats) -> dict[str, float]:
    """Mean ms per frame for each occlupose stage, in pipeline order."""
    ms = stats.stage_ms()
    return {k: ms.get(k, 0.0) for k in (*STAGES, "track_cpu", "wait")}


def frame_ms(stats: RunStats) -> float:
    return 1e3 / stats.fps if stats.fps > 0 else float("nan")


def _share(part_ms: float, total_ms: float) -> float:
    return part_ms / total_ms if total_ms > 0 and np.isfinite(total_ms) else float("nan")


def tracking_share(stats: RunStats, wall: bool = False) -> float:
    """Tracking and smoothing (Tracker.update) as a fraction of occlupose's time per frame: its CPU time,
    or with ``wall`` its wall-clock time, which also counts waiting for a core or the GIL while the
    detection, decoding and encoding threads run."""
    return _share(stats.stage_ms().get("track" if wall else "track_cpu", 0.0), frame_ms(stats))
