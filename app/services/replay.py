"""A video file replayed as if it were a camera: frames arrive at a fixed rate whether or not anyone
is ready for them. For trying the live path (and measuring it) without a camera."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

from posecore.errors import SourceError
from posecore.io.sources import Frame, FrameSource, VideoFileSource


class ReplayLiveSource(FrameSource):
    """Yields ``images`` (or the frames of a video file) at ``fps``, looping, as a live source.

    ``max_frames`` ends the stream after that many frames; ``fail_after`` raises SourceError after that
    many (an unplugged camera). ``capture_times`` records when each frame was delivered.
    """

    is_live = True

    def __init__(self, images: Sequence[np.ndarray] | str | Path, fps: float = 30.0, loop: bool = True,
                 max_frames: int | None = None, fail_after: int | None = None, name: str = "replay",
                 clock: Callable[[], float] = time.perf_counter):
        if isinstance(images, (str, Path)):
            images = [f.image for f in VideoFileSource(images)]
        if not len(images):
            raise SourceError("replay: no frames to replay")
        if fps <= 0:
            raise SourceError(f"replay: fps must be positive, got {fps}")
        self.images = list(images)
        self.fps = float(fps)
        self.loop = loop
        self.max_frames = max_frames
        self.fail_after = fail_after
        self.name = name
        self._clock = clock
        self._closed = threading.Event()
        self.capture_times: list[float] = []

    def _frames(self) -> Iterator[Frame]:
        period = 1.0 / self.fps
        start = self._clock()
        index = 0
        while not self._closed.is_set():
            if self.max_frames is not None and index >= self.max_frames:
                return
            if not self.loop and index >= len(self.images):
                return
            if self.fail_after is not None and index >= self.fail_after:
                raise SourceError(f"{self.name} stopped delivering frames")
            due = start + index * period
            wait = due - self._clock()
            if wait > 0:
                time.sleep(wait)  # the source's own rate; it never waits for the consumer
            self.capture_times.append(self._clock())
            yield Frame(index, index * period, self.images[index % len(self.images)])
            index += 1

    def close(self) -> None:
        self._closed.set()
