"""One captured frame to what the window shows: its poses (persons under the threshold removed), the
tracks, the drawn image, the rows of the track table, and the frames dropped before it."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from posecore.draw import DrawOptions
from posecore.types import TrackState

from .feeds import Captured
from .player import ProcessedFrame
from .render import Renderer, TrackTable
from .stats import StatsAccumulator


class FrameProcessor:
    """Keeps what carries from frame to frame in the window (trails, the track table, the last index)."""

    def __init__(self, draw: DrawOptions, det_threshold: float, clock: Callable[[], float], stats: StatsAccumulator):
        self.renderer = Renderer(draw)
        self.table = TrackTable()
        self.det_threshold = float(det_threshold)
        self.last_index: int | None = None
        self._clock = clock
        self._stats = stats

    def reset(self) -> None:
        """Forget the history, as after a seek or a new source."""
        self.renderer.reset()
        self.table.reset()
        self.last_index = None

    def process(self, pipeline, captured: Captured, stills: bool, source: str) -> ProcessedFrame:
        """Detect, track and draw one frame; raises OccluposeError when the pipeline fails on it."""
        frame = captured.frame
        dropped = 0
        if self.last_index is not None and frame.index > self.last_index + 1:
            dropped = frame.index - self.last_index - 1
        self.last_index = frame.index
        t_start = self._clock()
        timings: dict[str, float] = {}
        poses = pipeline.estimate(frame.image, timings)
        if self.det_threshold > 0 and len(poses):
            poses = poses.select(poses.scores >= self.det_threshold)
        result = pipeline.track(frame, poses, timings, stills=stills)
        image = self.renderer.render(result)
        rows = self.table.update(result)
        t_end = self._clock()
        self._stats.on_processed(sum(t.state != TrackState.LOST for t in result.tracks), dropped, t_end)
        return ProcessedFrame(result, image, rows, captured.t_capture, t_start, t_end, captured.backlog, dropped, source)

    def redraw(self, frame: ProcessedFrame) -> ProcessedFrame:
        """``frame`` drawn again with the current options (trails not advanced)."""
        image = self.renderer.render(frame.result, advance=False)
        return dataclasses.replace(frame, image=image, rerender=True)
