"""``occlupose soak``: a long synthetic run that shows memory stays flat and the track table bounded.

A looping source (a few pre-rendered frames, shown again and again with increasing indices) feeds the
real batch job (``app.process``: pipeline, tracker, JSONL, CSV, COCO and annotated video). A scripted
detector stands in for YOLO: people walk in from either side, cross and leave, with jitter, missed
detections and occluded joints. The report gives the resident memory (RSS) at the start, middle and end
and the largest track table seen, against the bound the scene allows.

    occlupose soak --frames 20000          # the full run (a few minutes on a laptop CPU)
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from app.run.pipeline import Pipeline, PipelineConfig
from posecore.estimators.yolo import YoloPoseEstimator
from posecore.io.sources import Frame, FrameSource
from posecore.types import Detections, Poses, Track
from trackers.tracker import Tracker, TrackerConfig

# A standing person, COCO-17 joints as (x, y) in units of body height from the feet centre.
_BODY = np.array([
    (0.0, -0.93), (-0.03, -0.95), (0.03, -0.95), (-0.06, -0.93), (0.06, -0.93),  # nose, eyes, ears
    (-0.12, -0.80), (0.12, -0.80), (-0.16, -0.62), (0.16, -0.62), (-0.18, -0.46), (0.18, -0.46),  # arms
    (-0.08, -0.50), (0.08, -0.50), (-0.09, -0.26), (0.09, -0.26), (-0.09, -0.02), (0.09, -0.02),  # legs
], np.float64)


@dataclass
class SoakConfig:
    frames: int = 20000
    width: int = 320
    height: int = 240
    fps: float = 30.0
    max_people: int = 6  # people in view at most
    spawn_rate: float = 0.04  # chance per frame that someone walks in (when fewer than max_people)
    miss_rate: float = 0.05  # chance a visible person is not detected in a frame
    seed: int = 0
    video: bool = True
    samples: int = 20  # RSS samples over the run


@dataclass
class SoakReport:
    frames: int
    seconds: float
    rss_mb: list[tuple[int, float]]  # (frame, RSS in MiB) samples
    max_tracks: int  # largest track table seen (tentative + confirmed + lost)
    track_bound: int  # the most the scene can justify: people in view or lost for at most max_lost frames
    people: int  # people who walked through
    track_ids: int  # IDs the tracker gave out
    gc_objects: list[tuple[int, int]] = field(default_factory=list)  # (frame, live Python objects), start and end

    def rss_at(self, where: str) -> float:
        """RSS in MiB at the 'start' (after a tenth of the run, once buffers are warm), 'middle' or 'end'
        (the last sample taken while frames were still flowing)."""
        i = {"start": len(self.rss_mb) // 10, "middle": len(self.rss_mb) // 2, "end": -1}[where]
        return self.rss_mb[i][1]

    def lines(self) -> list[str]:
        return [
            f"soak: {self.frames} frames in {self.seconds:.1f} s ({self.frames / max(self.seconds, 1e-9):.0f} frames/s)",
            f"RSS start {self.rss_at('start'):.1f} MiB, middle {self.rss_at('middle'):.1f} MiB, "
            f"end {self.rss_at('end'):.1f} MiB (growth {self.rss_at('end') - self.rss_at('start'):+.1f} MiB)",
            f"track table at most {self.max_tracks} (scene bound {self.track_bound}); "
            f"{self.people} people walked through, {self.track_ids} track IDs given",
        ]


def rss_mb() -> float:
    """Resident memory of this process in MiB (Linux /proc; elsewhere the peak, which only grows)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 2**20 if sys.platform == "darwin" else peak / 1024


class LoopingSource(FrameSource):
    """``frames`` frames cycling through a few pre-rendered images (so decoding costs nothing)."""

    def __init__(self, frames: int, width: int, height: int, fps: float, loop: int = 16, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.name = "soak"
        self.fps = fps
        self.frame_count = frames
        base = np.linspace(40, 90, width, dtype=np.float32)[None, :, None].repeat(height, 0).repeat(3, 2)
        self._images = [np.clip(base + rng.normal(0, 4, base.shape), 0, 255).astype(np.uint8) for _ in range(loop)]

    def _frames(self) -> Iterator[Frame]:
        for i in range(self.frame_count):
            # a copy, as a decoder hands out a fresh frame each time
            yield Frame(i, i / self.fps, self._images[i % len(self._images)].copy())


@dataclass
class _Walker:
    x: float
    speed: float  # px per frame, signed
    feet_y: float
    height: float


class SceneDetector:
    """A scripted stand-in for the YOLO pose detector: people cross the frame from either side.

    ``detect`` is called once per frame, in order; it returns boxes and COCO-17 keypoints with noise,
    misses and occluded (low-confidence) joints. ``bound`` tracks the largest track table the scene
    justifies for a tracker that keeps lost tracks ``max_lost`` frames.
    """

    thread_safe = False  # one scene, advanced in call order
    device = torch.device("cpu")

    def __init__(self, cfg: SoakConfig, max_lost: int):
        self.cfg = cfg
        self.max_lost = max_lost
        self._rng = np.random.default_rng(cfg.seed)
        self._walkers: list[_Walker] = []
        self._left: list[int] = []  # frames at which people left, for the bound
        self.frame = -1
        self.people = 0
        self.bound = 0

    def _step(self) -> None:
        c, rng = self.cfg, self._rng
        self.frame += 1
        for w in self._walkers:
            w.x += w.speed
        gone = [w for w in self._walkers if not (-w.height < w.x < c.width + w.height)]
        self._walkers = [w for w in self._walkers if w not in gone]
        self._left += [self.frame] * len(gone)
        self._left = [f for f in self._left if self.frame - f <= self.max_lost + 1]
        if len(self._walkers) < c.max_people and rng.random() < c.spawn_rate:
            h = rng.uniform(0.35, 0.8) * c.height
            side = rng.choice([-1.0, 1.0])
            self._walkers.append(_Walker(x=c.width / 2 - side * (c.width / 2 + h / 3), speed=side * rng.uniform(0.6, 2.5),
                                         feet_y=rng.uniform(0.7, 1.0) * c.height, height=h))
            self.people += 1
        # Every track in the table is a person in view or one who left at most max_lost frames ago
        # (plus, at worst, one tentative track per person for a missed-then-found detection).
        self.bound = max(self.bound, 2 * (len(self._walkers) + len(self._left)))

    def detect(self, image: np.ndarray) -> Detections:
        self._step()
        rng = self._rng
        shown = [w for w in self._walkers if rng.random() >= self.cfg.miss_rate]
        n = len(shown)
        if n == 0:
            return Detections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 17, 3), np.float32))
        kpts = np.zeros((n, 17, 3), np.float32)
        for i, w in enumerate(shown):
            xy = _BODY * w.height + (w.x, w.feet_y) + rng.normal(0, 0.01 * w.height, (17, 2))
            conf = rng.uniform(0.6, 0.99, 17)
            conf[rng.random(17) < 0.15] = rng.uniform(0.0, 0.3)  # occluded joints
            kpts[i, :, :2], kpts[i, :, 2] = xy, conf
        boxes = np.concatenate([kpts[:, :, :2].min(1), kpts[:, :, :2].max(1)], 1)
        scores = rng.uniform(0.55, 0.95, n).astype(np.float32)
        return Detections(boxes, scores, kpts)


class _ProbedTracker:
    """The real tracker, with the table size and memory sampled as the run goes."""

    def __init__(self, tracker: Tracker, frames: int, samples: int):
        self.tracker = tracker
        self.max_tracks = 0
        self.every = max(1, frames // max(1, samples))
        self.samples = samples
        self.rss: list[tuple[int, float]] = []
        self.objects: list[tuple[int, int]] = []
        self.ids: set[int] = set()

    @property
    def config(self) -> TrackerConfig:
        return self.tracker.config

    @property
    def last_step(self):
        return self.tracker.last_step

    def reset(self) -> None:
        self.tracker.reset()

    def update(self, poses: Poses, frame_index: int, keep_step: bool = False,
               warp: np.ndarray | None = None, width: int | None = None) -> list[Track]:
        tracks = self.tracker.update(poses, frame_index, keep_step=keep_step, warp=warp, width=width)
        self.max_tracks = max(self.max_tracks, self.tracker.num_tracks)
        self.ids.update(t.track_id for t in tracks)
        if frame_index % self.every == 0:
            self.rss.append((frame_index, rss_mb()))
            if len(self.rss) - 1 in (self.samples // 10, self.samples - 1):  # a full gc is slow: two counts
                gc.collect()
                self.objects.append((frame_index, len(gc.get_objects())))
        return tracks


def run_soak(cfg: SoakConfig, outdir: str | Path | None = None) -> SoakReport:
    """Run the batch job over the synthetic scene; outputs go to ``outdir`` (default: a temporary folder)."""
    from app.process import ProcessOptions, run_process

    pipeline_cfg = PipelineConfig()
    tracker = _ProbedTracker(Tracker.from_config(pipeline_cfg.tracker), cfg.frames, cfg.samples)
    detector = SceneDetector(cfg, pipeline_cfg.tracker.max_lost)
    # Causal, as the soak was measured (README): it watches memory, not smoothing.
    pipeline = Pipeline(detector, YoloPoseEstimator(pipeline_cfg.pose.seen_threshold), tracker,  # type: ignore[arg-type]
                        smoothing_lag=0)
    source = LoopingSource(cfg.frames, cfg.width, cfg.height, cfg.fps, seed=cfg.seed)
    with tempfile.TemporaryDirectory(prefix="occlupose-soak-") as tmp:
        opts = ProcessOptions("soak", Path(outdir or tmp), pipeline_cfg, video=cfg.video, progress=False)
        t0 = time.perf_counter()
        summary = run_process(opts, pipeline, source)
        seconds = time.perf_counter() - t0
    return SoakReport(summary.frames, seconds, tracker.rss, tracker.max_tracks, detector.bound, detector.people,
                      len(tracker.ids), tracker.objects)


def cmd_soak(args: argparse.Namespace) -> int:
    cfg = SoakConfig(frames=args.frames, seed=args.seed, video=not args.no_video)
    report = run_soak(cfg, args.output)
    for line in report.lines():
        print(line)
    return 0


def register(sub) -> None:
    from app.cli import positive_int

    p = sub.add_parser("soak", help="long synthetic run: memory and track table over time")
    p.add_argument("--frames", type=positive_int, default=SoakConfig.frames, help="frames to run (default 20000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-video", action="store_true", help="skip the annotated video")
    p.add_argument("-o", "--output", help="keep the outputs in this folder (default: a temporary one, removed)")
    p.set_defaults(func=cmd_soak)
