"""The player as the window sees it: its states, the frames it shows, and the events the worker sends."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import numpy as np

from posecore.types import FrameResult

from .recording import RecordingInfo
from .render import TrackRow


class Status(str, enum.Enum):
    IDLE = "idle"  # no source
    OPENING = "opening"
    LOADING = "loading"  # building the pipeline
    PLAYING = "playing"
    PAUSED = "paused"
    ENDED = "ended"  # a file reached its end


@dataclass(frozen=True)
class PlayerState:
    status: Status = Status.IDLE
    source: str | None = None  # the source's display name
    spec: str | None = None  # what was opened (path, URL, camera index)
    is_live: bool = False
    seekable: bool = False
    frame_count: int | None = None
    fps: float | None = None
    realtime: bool = False
    model: str | None = None  # the pipeline in use, once one is loaded
    recording: Path | None = None  # the stem path of the files being recorded


@dataclass
class ProcessedFrame:
    """One frame as the window gets it.

    image: the annotated BGR frame; t_capture / t_start / t_end: when the frame was captured, and when
    its processing started and ended (``time.perf_counter`` seconds); backlog: frames newer than this
    one that the source had delivered when processing started (a live feed keeps this at 0);
    dropped: frames skipped just before this one; rerender: a redraw of an earlier frame after an
    option changed (not a new frame: no latency to measure).
    """

    result: FrameResult
    image: np.ndarray
    tracks: list[TrackRow]
    t_capture: float
    t_start: float
    t_end: float
    backlog: int = 0
    dropped: int = 0
    source: str = ""
    rerender: bool = False
    display_backlog: int = 0  # results newer than this one when the window took it (0: it shows the newest)

    @property
    def index(self) -> int:
        return self.result.index


ErrorKind = Literal["source", "model", "output", "internal"]


class WorkerEvents(Protocol):
    """Called from the worker thread."""

    def state_changed(self, state: PlayerState) -> None: ...

    def frame_ready(self, frame: ProcessedFrame) -> None: ...

    def error(self, kind: ErrorKind, message: str) -> None: ...

    def message(self, text: str) -> None: ...

    def recording_finished(self, info: RecordingInfo) -> None: ...
