"""Live statistics of a session: source and processing rates, dropped frames, capture-to-display latency.

Three threads report here (capture, worker, window), so every method takes the lock; ``snapshot``
gives the window an immutable copy to show.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass


class RateMeter:
    """Events per second over the last ``window_s`` seconds."""

    def __init__(self, window_s: float = 2.0):
        self.window_s = window_s
        self._times: deque[float] = deque()

    def tick(self, t: float) -> None:
        self._times.append(t)
        while len(self._times) > 2 and t - self._times[0] > self.window_s:
            self._times.popleft()

    def rate(self, now: float) -> float:
        # Stale when nothing came for a whole window (a paused or stalled source reads 0).
        if len(self._times) < 2 or now - self._times[-1] > self.window_s:
            return 0.0
        span = self._times[-1] - self._times[0]
        return (len(self._times) - 1) / span if span > 0 else 0.0

    def clear(self) -> None:
        self._times.clear()


@dataclass(frozen=True)
class StatsSnapshot:
    source_fps: float  # frames per second the source delivers (a file's nominal rate)
    processed_fps: float
    dropped: int  # frames the worker had no time for (live sources, real-time playback)
    latency_ms: float | None  # mean capture-to-display time over the recent frames; None before the first
    latency_max_ms: float | None
    people: int  # tracks in the latest processed frame
    processed: int  # frames processed since the source was opened
    displayed: int  # frames shown


class StatsAccumulator:
    def __init__(self, clock: Callable[[], float] = time.perf_counter, latency_window: int = 30):
        self._clock = clock
        self._lock = threading.Lock()
        self._latency_window = latency_window
        self.reset()

    def reset(self, nominal_fps: float | None = None) -> None:
        """Start over for a new source; ``nominal_fps`` stands for the source rate when frames are not
        captured in real time (a file)."""
        with self._lock:
            self._nominal = nominal_fps
            self._captured = RateMeter()
            self._processed = RateMeter()
            self._latency: deque[float] = deque(maxlen=self._latency_window)
            self._dropped = 0
            self._people = 0
            self._n_processed = 0
            self._n_displayed = 0

    def on_captured(self, t: float | None = None) -> None:
        with self._lock:
            self._captured.tick(self._clock() if t is None else t)

    def on_processed(self, people: int, dropped: int = 0, t: float | None = None) -> None:
        """A frame went through the pipeline; ``dropped`` frames were skipped to reach it."""
        with self._lock:
            self._processed.tick(self._clock() if t is None else t)
            self._dropped += max(0, int(dropped))
            self._people = int(people)
            self._n_processed += 1

    def on_displayed(self, t_capture: float, t: float | None = None) -> float:
        """A frame captured at ``t_capture`` reached the screen; returns its latency in seconds."""
        with self._lock:
            latency = (self._clock() if t is None else t) - t_capture
            self._latency.append(latency)
            self._n_displayed += 1
            return latency

    def snapshot(self) -> StatsSnapshot:
        with self._lock:
            now = self._clock()
            source = self._captured.rate(now)
            if self._nominal is not None and source == 0.0:
                source = self._nominal
            lat = list(self._latency)
            return StatsSnapshot(
                source_fps=source,
                processed_fps=self._processed.rate(now),
                dropped=self._dropped,
                latency_ms=1000 * sum(lat) / len(lat) if lat else None,
                latency_max_ms=1000 * max(lat) if lat else None,
                people=self._people,
                processed=self._n_processed,
                displayed=self._n_displayed,
            )
