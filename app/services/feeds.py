"""Where the worker gets its frames: a live feed (camera, stream) or a file feed (seekable video, images).

A live source runs in its own capture thread that keeps only the newest frame (``LatestSlot``): the
worker takes whatever is freshest when it is ready, and frames it had no time for are dropped, so
what is shown never falls behind reality. A file is read in order with a little decode-ahead; every
frame is processed unless real-time playback is chosen, which skips the frames whose time has passed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from posecore.errors import SourceError
from posecore.io.seek import SeekableVideo
from posecore.io.sources import Frame, FrameSource, ImageFolderSource, VideoFileSource, open_source
from posecore.io.threads import Prefetcher

from .latest import LatestSlot, SlotClosed

SourceOpener = Callable[[str], FrameSource]


@dataclass
class Captured:
    """A frame with the moment it was captured (``time.perf_counter`` seconds) and how many frames
    newer than it the source had already delivered when the worker took it."""

    frame: Frame
    t_capture: float
    backlog: int = 0


class EndOfFeed(Exception):
    """The source has no more frames (the end of a file, or a live source that closed)."""


class Feed:
    """What the worker reads. ``next(timeout)`` returns a Captured, or None when nothing is ready yet;
    it raises EndOfFeed at the end and SourceError when the source fails."""

    name: str = ""
    is_live: bool = False
    seekable: bool = False
    stills: bool = False  # unrelated photos (an image folder): each is tracked alone
    fps: float | None = None
    frame_count: int | None = None

    def next(self, timeout: float) -> Captured | None:
        raise NotImplementedError

    def seek(self, index: int) -> None:
        raise SourceError(f"{self.name}: cannot seek in a live source")

    def set_paused(self, paused: bool) -> None:
        pass

    def close(self) -> None:
        pass


class LiveFeed(Feed):
    """A live source read continuously by a capture thread into a slot of one."""

    is_live = True

    def __init__(self, source: FrameSource, on_captured: Callable[[float], None] | None = None,
                 slot: LatestSlot | None = None, clock: Callable[[], float] = time.perf_counter):
        self.source = source
        self.name = source.name
        self.fps = source.fps
        self._slot: LatestSlot = slot if slot is not None else LatestSlot()
        self._on_captured = on_captured
        self._clock = clock
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._capture, daemon=True, name="capture")
        self._thread.start()

    def _capture(self) -> None:
        try:
            for frame in self.source:
                if self._stop.is_set():
                    break
                t = self._clock()
                self._slot.put(Captured(frame, t))
                if self._on_captured is not None:
                    self._on_captured(t)
        except Exception as e:  # handed to the worker, which reports it
            self._error = e
        finally:
            self._slot.close()
            # The capture thread owns the source: closing it from another thread while a read is
            # blocked inside OpenCV or FFmpeg is not safe.
            try:
                self.source.close()
            except Exception:
                pass

    def next(self, timeout: float) -> Captured | None:
        try:
            taken = self._slot.get(timeout)
        except SlotClosed:
            if self._error is not None:
                err = self._error
                if isinstance(err, SourceError):
                    raise err
                raise SourceError(f"{self.name}: {type(err).__name__}: {err}") from None
            raise EndOfFeed from None
        if taken is None:
            return None
        captured: Captured = taken.item
        captured.backlog = taken.backlog
        return captured

    def close(self, timeout: float = 2.0) -> None:
        self._stop.set()
        self._thread.join(timeout)  # a stream read is bounded by its own timeout; the thread is a daemon

    @property
    def capture_alive(self) -> bool:
        return self._thread.is_alive()


class FileFeed(Feed):
    """Frames of a video file or image folder in order, decoded a few frames ahead.

    ``realtime``: play at the file's own rate, skipping frames whose time has passed (they count as
    dropped through the gap in frame indices); otherwise every frame is returned as fast as asked.
    """

    def __init__(self, source: SeekableVideo | FrameSource, realtime: bool = False, prefetch: int = 2,
                 clock: Callable[[], float] = time.perf_counter):
        self.source = source
        self.name = source.name
        self.fps = source.fps
        self.frame_count = source.frame_count
        self.seekable = isinstance(source, SeekableVideo)
        self.stills = isinstance(source, ImageFolderSource)
        self.realtime = realtime
        self._prefetch = prefetch
        self._clock = clock
        self._ahead: Prefetcher | None = None
        self._pending: Frame | None = None
        self._anchor: tuple[float, float] | None = None  # (wall time, media time) of the play clock
        self._start(0)

    def _frames(self, start: int) -> Iterator[Frame]:
        if isinstance(self.source, SeekableVideo):
            return self.source.frames(start)
        if start:
            raise SourceError(f"{self.name}: cannot seek in this source")
        return iter(self.source)

    def _start(self, index: int) -> None:
        if self._ahead is not None:
            self._ahead.close()
        self._ahead = Prefetcher(self._frames(index), depth=self._prefetch)
        self._ended = False
        self._pending = None
        self._anchor = None

    def seek(self, index: int) -> None:
        if not self.seekable:
            raise SourceError(f"{self.name}: cannot seek in this source")
        if self.frame_count:
            index = min(index, self.frame_count - 1)
        self._start(max(0, index))

    def set_realtime(self, realtime: bool) -> None:
        self.realtime = realtime
        self._anchor = None

    def set_paused(self, paused: bool) -> None:
        self._anchor = None  # the play clock restarts from the next frame

    def _read(self) -> Frame:
        if self._pending is not None:
            frame, self._pending = self._pending, None
            return frame
        if self._ended:
            raise EndOfFeed  # the prefetcher would wait forever after its end
        try:
            return next(self._ahead)
        except StopIteration:
            self._ended = True
            raise EndOfFeed from None

    def next_now(self) -> Captured:
        """The next frame at once, whatever the play clock says (a step while paused)."""
        return Captured(self._read(), self._clock())

    def next(self, timeout: float) -> Captured | None:
        frame = self._read()
        if not self.realtime:
            return Captured(frame, self._clock())
        now = self._clock()
        if self._anchor is None:
            self._anchor = (now, frame.time_s)
        period = 1.0 / (self.fps or 30.0)
        # Late by more than a frame: its successor is due already, so skip to it (the skipped
        # frames show up as dropped through the gap in indices). The last frame is kept.
        while now - self._due(frame) > period:
            try:
                frame = self._read()
            except EndOfFeed:
                break
        due = self._due(frame)
        if due - now > timeout:
            self._pending = frame
            time.sleep(timeout)
            return None
        if due > now:
            time.sleep(due - now)
            now = self._clock()
        return Captured(frame, now)

    def _due(self, frame: Frame) -> float:
        wall, media = self._anchor
        return wall + (frame.time_s - media)

    def close(self) -> None:
        if self._ahead is not None:
            self._ahead.close()
            self._ahead = None


def open_feed(spec: str, realtime: bool = False, opener: SourceOpener | None = None,
              on_captured: Callable[[float], None] | None = None) -> Feed:
    """Open ``spec`` (camera index, URL, video file, image folder) as a Feed; raises SourceError."""
    source = (opener or open_source)(spec)
    if source.is_live:
        return LiveFeed(source, on_captured)
    if isinstance(source, VideoFileSource):
        return FileFeed(SeekableVideo(source), realtime)
    return FileFeed(source, realtime)

