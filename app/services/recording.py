"""Recording a session as it goes: the annotated video, the JSONL records and the CSV rows, with the
writers of ``posecore.io`` (the same files ``occlupose process`` writes), and snapshots of one frame.

Encoding runs in its own thread (``app.run.sinks.AnnotatedSink``) so it overlaps the next frame's inference.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np

from app.run.loop import close_all
from app.run.names import source_stem
from app.run.sinks import AnnotatedSink, CsvSink, JsonlSink, Sink
from posecore.errors import OutputError
from posecore.types import FrameResult


def session_stem(source_name: str) -> str:
    return f"{source_stem(source_name, 'session')}_{time.strftime('%Y%m%d-%H%M%S')}"


def _ensure_dir(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"cannot create output folder {folder}: {e.strerror or e}") from None


@dataclass(frozen=True)
class RecordingRequest:
    folder: Path
    stem: str
    fps: float | None  # video frame rate; None: 30
    skeleton: str = "coco17"
    video: bool = True
    jsonl: bool = True
    csv: bool = True


@dataclass
class RecordingInfo:
    paths: dict[str, Path] = field(default_factory=dict)
    frames: int = 0


class Recorder:
    """Writes every frame given to ``write`` until ``stop``; files are valid at any moment. The video
    records the frames as shown (drawn by the GUI), through the run layer's encode stage."""

    def __init__(self, request: RecordingRequest):
        self.request = request
        folder = Path(request.folder)
        _ensure_dir(folder)
        self.info = RecordingInfo()
        self._files: list[Sink] = []
        self._video: AnnotatedSink | None = None
        try:
            if request.jsonl:
                self.info.paths["jsonl"] = folder / f"{request.stem}.jsonl"
                self._files.append(JsonlSink(self.info.paths["jsonl"]))
            if request.csv:
                self.info.paths["csv"] = folder / f"{request.stem}.csv"
                self._files.append(CsvSink(self.info.paths["csv"], request.skeleton))
            if request.video:
                self.info.paths["video"] = folder / f"{request.stem}.mp4"
                self._video = AnnotatedSink.video(self.info.paths["video"], request.fps, request.skeleton,
                                                  draw=None, name="record-encode")
        except BaseException:
            self._close_files(quiet=True)
            raise

    def write(self, annotated: np.ndarray, result: FrameResult) -> None:
        """Raises OutputError when a file cannot be written (the disk is full, the folder went away)."""
        for f in self._files:
            f.write(result)
        if self._video is not None:
            self._video.write(replace(result, image=annotated))
        self.info.frames += 1

    def _close_files(self, quiet: bool = False) -> None:
        files, self._files = self._files, []
        close_all([f.close for f in files], quiet=quiet)

    def stop(self) -> RecordingInfo:
        """Finish every file (waits for the encoder); safe to call twice."""
        try:
            if self._video is not None:
                video, self._video = self._video, None
                video.close()
        finally:
            self._close_files()
        return self.info


def save_snapshot(image: np.ndarray, folder: Path, stem: str, frame_index: int) -> Path:
    """Write a BGR frame as PNG; returns its path. Raises OutputError."""
    folder = Path(folder)
    _ensure_dir(folder)
    path = folder / f"{stem}_frame{frame_index:06d}.png"
    n = 1
    while path.exists():  # never overwrite an earlier snapshot of the same frame
        path = folder / f"{stem}_frame{frame_index:06d}_{n}.png"
        n += 1
    if not cv2.imwrite(str(path), image):
        raise OutputError(f"cannot write snapshot {path}")
    return path
