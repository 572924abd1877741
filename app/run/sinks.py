"""Where results go: a :class:`Sink` per output, written frame by frame in order.

The batch command, the GUI's recording and the benchmark all write through these classes; the
draw + encode stage (:class:`AnnotatedSink`) is the one place frames are drawn and encoded.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from posecore.draw import DrawOptions, Trails, draw_tracks
from posecore.errors import OutputError
from posecore.io.result_writers import CsvWriter, JsonlWriter, write_coco_results
from posecore.io.threads import BackgroundSink
from posecore.io.video_writer import VideoWriter
from posecore.types import FrameResult

QUEUE_BYTES = 256 * 2**20  # frames waiting to be drawn and encoded hold at most about this much
QUEUE_DEPTH = 8


class Sink(Protocol):
    """One output of a run."""

    def reserve(self, result: FrameResult) -> None:
        """Wait until ``result`` fits (a sink with a queue); after it, ``write`` does not wait."""

    def write(self, result: FrameResult) -> None:
        """Add one frame's results; raises OutputError when the file cannot be written."""

    def close(self, complete: bool = True) -> None:
        """Finish the file; ``complete``: the run's results are whole (the COCO file needs that)."""


class _RecordSink:
    """A sink over a result writer that appends from ``start_frame`` on (earlier lines are kept, for resume)."""

    def __init__(self, writer, start_frame: int):
        self.start_frame = start_frame
        self.writer = writer

    def reserve(self, result: FrameResult) -> None:
        pass

    def write(self, result: FrameResult) -> None:
        if result.index >= self.start_frame:
            self.writer.write(result)

    def close(self, complete: bool = True) -> None:
        self.writer.close()


class JsonlSink(_RecordSink):
    """``STEM.jsonl``: a record per frame, from ``start_frame`` on (earlier records are kept, for resume)."""

    def __init__(self, path: Path, start_frame: int = 0):
        super().__init__(JsonlWriter(path, start_frame=start_frame), start_frame)


class CsvSink(_RecordSink):
    """``STEM.csv``: a row per tracked joint, from ``start_frame`` on."""

    def __init__(self, path: Path, skeleton: str, start_frame: int = 0):
        super().__init__(CsvWriter(path, skeleton, start_frame=start_frame), start_frame)


class CocoSink:
    """``STEM.coco.json``: COCO keypoint results, made from the JSONL when the run closes complete, so
    the file is whole or absent (an older one is removed at the start)."""

    def __init__(self, jsonl: Path, path: Path):
        self.jsonl, self.path = Path(jsonl), Path(path)
        try:
            self.path.unlink(missing_ok=True)
        except OSError as e:
            raise OutputError(f"cannot write {self.path}: {e.strerror or e}") from None

    def reserve(self, result: FrameResult) -> None:
        pass

    def write(self, result: FrameResult) -> None:
        pass  # read back from the JSONL at the end: a resumed run's file covers the frames before, too

    def close(self, complete: bool = True) -> None:
        if complete:
            write_coco_results(self.jsonl, self.path)


class _VideoFile:
    """Frames into one video, opened on the first frame, when the size is known."""

    def __init__(self, path: Path, fps: float | None):
        self.path, self.fps = Path(path), fps
        self.writer: VideoWriter | None = None

    def write(self, image: np.ndarray, result: FrameResult) -> None:
        if self.writer is None:
            h, w = image.shape[:2]
            self.writer = VideoWriter(self.path, self.fps, w, h)
        self.writer.write(image)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


class _ImageFolder:
    """A JPEG per frame, named after the source image (or the frame number)."""

    def __init__(self, folder: Path):
        self.path = Path(folder)
        try:
            self.path.mkdir(exist_ok=True)
        except OSError as e:
            raise OutputError(f"cannot write {self.path}: {e.strerror or e}") from None

    def write(self, image: np.ndarray, result: FrameResult) -> None:
        name = Path(result.source_name or f"{result.index:06d}.jpg")
        if not cv2.imwrite(str(self.path / f"{name.stem}.jpg"), image):
            raise OutputError(f"cannot write {self.path / name.name}")

    def close(self) -> None:
        pass


class _Flush:
    def __init__(self):
        self.done = threading.Event()


class AnnotatedSink:
    """The draw + encode stage: draws each result's tracks (skeleton, labels, trails) on a copy of its
    frame and encodes it, in a background thread, so both overlap the inference of the next frames.

    ``draw=None``: the frames come drawn already (the GUI records what it shows) and are only encoded.
    ``seconds`` adds up the time spent drawing and encoding (the benchmark reports it). The queue's
    depth is set on the first frame, bounded in bytes, so memory stays flat for any frame size.
    """

    def __init__(self, out, skeleton: str = "coco17", draw: DrawOptions | None = None, name: str = "encode"):
        self._out = out
        self.path: Path = out.path
        self.skeleton = skeleton
        self.draw = draw
        self.trails = Trails(draw.trail_length) if draw is not None else None
        self.name = name
        self.seconds = {"draw": 0.0, "encode": 0.0}
        self._queue: BackgroundSink | None = None

    @classmethod
    def video(cls, path: Path, fps: float | None, skeleton: str = "coco17", draw: DrawOptions | None = None,
              name: str = "encode") -> "AnnotatedSink":
        """An MP4 at ``fps`` (see :class:`posecore.io.video_writer.VideoWriter`)."""
        return cls(_VideoFile(path, fps), skeleton, draw, name)

    @classmethod
    def images(cls, folder: Path, skeleton: str = "coco17", draw: DrawOptions | None = None) -> "AnnotatedSink":
        """A folder of annotated JPEGs, one per source image (for image-folder sources)."""
        return cls(_ImageFolder(folder), skeleton, draw)

    def _draw_and_write(self, item) -> None:
        if item is None:
            return  # a probe from flush(): nothing to do, the next put re-raises a failure
        if isinstance(item, _Flush):
            item.done.set()
            return
        t0 = time.perf_counter()
        image = item.image
        if self.draw is not None:
            self.trails.update(item.tracks, item.index)
            image = draw_tracks(image.copy(), item.tracks, self.skeleton, self.draw, self.trails)
        t1 = time.perf_counter()
        self._out.write(image, item)
        self.seconds["draw"] += t1 - t0
        self.seconds["encode"] += time.perf_counter() - t1

    def reserve(self, result: FrameResult) -> None:
        if self._queue is None:
            depth = max(2, min(QUEUE_DEPTH, QUEUE_BYTES // max(1, result.image.nbytes)))
            self._queue = BackgroundSink(self._draw_and_write, depth=depth, name=self.name)
        self._queue.reserve()  # may wait for the encoder; re-raises its failure

    def write(self, result: FrameResult) -> None:
        """Never raises after ``reserve``: a drawing or encoding error shows at the next call."""
        if self._queue is None:
            self.reserve(result)
        self._queue.put(result)

    def flush(self) -> None:
        """Wait until every frame handed over is written; re-raises a failure of the encoder."""
        if self._queue is None:
            return
        marker = _Flush()
        self._queue.put(marker)
        while not marker.done.wait(0.2):
            self._queue.put(None)  # re-raises the encoder's error, if it failed (it then skips the marker)

    def close(self, complete: bool = True) -> None:
        """Draw and encode the frames still queued, then finish the file."""
        try:
            if self._queue is not None:
                queue, self._queue = self._queue, None
                queue.close()
        finally:
            self._out.close()
