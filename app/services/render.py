"""Turning results into what the window shows: the annotated frame and the table of current tracks.

Both keep a little history (motion trails; when each track was first seen and its confidences), so
they live with the worker, which sees every processed frame, not with the window, which may skip
frames it had no time to paint.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from posecore.draw import DrawOptions, Trails, draw_tracks
from posecore.types import FrameResult, TrackState


class Renderer:
    """Draws tracks with the current options; ``render(..., advance=False)`` redraws a frame already
    seen (after a toggle) without moving the trails on."""

    def __init__(self, options: DrawOptions | None = None, skeleton: str = "coco17"):
        self.options = options or DrawOptions()
        self.skeleton = skeleton
        self.trails = Trails(self.options.trail_length)

    def set_options(self, options: DrawOptions) -> None:
        if options.trail_length != self.options.trail_length:
            self.trails = Trails(options.trail_length)
        self.options = dataclasses.replace(options)

    def reset(self) -> None:
        self.trails = Trails(self.options.trail_length)

    def render(self, result: FrameResult, advance: bool = True) -> np.ndarray:
        if advance:
            self.trails.update(result.tracks, result.index)
        if result.image is None:
            raise ValueError("the frame result carries no image to draw on")
        return draw_tracks(result.image.copy(), result.tracks, self.skeleton, self.options, self.trails)


@dataclass(frozen=True)
class TrackRow:
    """One line of the track list."""

    track_id: int
    seen_s: float  # time since the track was first seen (media time of the source)
    frames: int  # frames in which it was matched
    mean_conf: float  # mean keypoint confidence over the frames it was matched
    lost: bool


class TrackTable:
    """Per-track history: first appearance and a running mean of keypoint confidence."""

    def __init__(self, forget_after: int = 300):
        self.forget_after = forget_after  # frames; a track can come back after the tracker stops reporting it
        self._first: dict[int, float] = {}
        self._last: dict[int, int] = {}
        self._sum: dict[int, float] = {}
        self._n: dict[int, int] = {}

    def reset(self) -> None:
        for d in (self._first, self._last, self._sum, self._n):
            d.clear()

    def update(self, result: FrameResult) -> list[TrackRow]:
        rows = []
        for t in result.tracks:
            tid = int(t.track_id)
            self._first.setdefault(tid, result.time_s)
            self._last[tid] = result.index
            if t.is_matched:
                self._sum[tid] = self._sum.get(tid, 0.0) + float(np.mean(t.keypoints[:, 2]))
                self._n[tid] = self._n.get(tid, 0) + 1
            n = self._n.get(tid, 0)
            rows.append(TrackRow(tid, max(0.0, result.time_s - self._first[tid]), n,
                                 self._sum.get(tid, 0.0) / n if n else 0.0, t.state == TrackState.LOST))
        for tid in [i for i, f in self._last.items() if result.index - f > self.forget_after]:
            for d in (self._first, self._last, self._sum, self._n):
                d.pop(tid, None)
        return sorted(rows, key=lambda r: r.track_id)
