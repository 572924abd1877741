"""Recording a session as it goes: the annotated video, the JSONL records and the CSV rows, with the
writers of ``posecore.io`` (the same files ``occlupose process`` writes), and snapshots of one frame.

Encoding runs in its own thread (``BackgroundSink``) so it overlaps the next frame's inference.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from posecore.errors import OutputError
from posecore.io.result_writers import CsvWriter, JsonlWriter
from posecore.io.threads import BackgroundSink
from posecore.io.video_writer import VideoWriter
from posecore.types import FrameResult


def safe_stem(name: str) -> str:
    """A file-name-safe stem from a source name (URLs and odd characters included)."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(str(name)).stem if "://" not in str(name) else str(name))
    return stem.strip("._") or "session"


def session_stem(source_name: str) -> str:
    return f"{safe_stem(source_name)}_{time.strftime('%Y%m%d-%H%M%S')}"


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
    """Writes every frame given to ``write`` until ``stop``; files are valid at any moment."""

    def __init__(self, request: RecordingRequest):
        self.request = request
        folder = Path(request.folder)
        _ensure_dir(folder)
        self.info = RecordingInfo()
        self._jsonl = self._csv = None
        self._video: VideoWriter | None = None
        self._sink: BackgroundSink | None = None
        try:
            if request.jsonl:
                self.info.paths["jsonl"] = folder / f"{request.stem}.jsonl"
                self._jsonl = JsonlWriter(self.info.paths["jsonl"])
            if request.csv:
                self.info.paths["csv"] = folder / f"{request.stem}.csv"
                self._csv = CsvWriter(self.info.paths["csv"], request.skeleton)
            if request.video:
                self.info.paths["video"] = folder / f"{request.stem}.mp4"
                self._sink = BackgroundSink(self._encode, depth=8, name="record-encode")
        except BaseException:
            self._close_files()
            raise

    def _encode(self, image: np.ndarray) -> None:
        if self._video is None:  # opened on the first frame, when the size is known
            h, w = image.shape[:2]
            self._video = VideoWriter(self.info.paths["video"], self.request.fps, w, h)
        self._video.write(image)

    def write(self, annotated: np.ndarray, result: FrameResult) -> None:
        """Raises OutputError when a file cannot be written (the disk is full, the folder went away)."""
        if self._jsonl is not None:
            self._jsonl.write(result)
        if self._csv is not None:
            self._csv.write(result)
        if self._sink is not None:
            self._sink.put(annotated)
        self.info.frames += 1

    def _close_files(self) -> None:
        for f in (self._jsonl, self._csv):
            if f is not None:
                f.close()
        self._jsonl = self._csv = None

    def stop(self) -> RecordingInfo:
        """Finish every file (waits for the encoder); safe to call twice."""
        try:
            if self._sink is not None:
                sink, self._sink = self._sink, None
                sink.close()
        finally:
            if self._video is not None:
                self._video.close()
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
