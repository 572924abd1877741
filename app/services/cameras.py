"""Finding the cameras that actually open and deliver a frame (not just the device nodes that exist)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from posecore.errors import SourceError
from posecore.io.sources import CameraSource, FrameSource


@dataclass(frozen=True)
class CameraInfo:
    index: int
    width: int
    height: int

    @property
    def label(self) -> str:
        return f"Camera {self.index} ({self.width}x{self.height})"


def probe_cameras(max_index: int = 8, opener: Callable[[int], FrameSource] = CameraSource) -> list[CameraInfo]:
    """Cameras 0..max_index-1 that open and deliver one frame. Slow-ish (opens each device): run it
    off the GUI thread."""
    found = []
    for index in range(max_index):
        try:
            source = opener(index)
        except SourceError:
            continue
        try:
            frame = next(iter(source), None)
        except SourceError:
            frame = None
        finally:
            source.close()
        if frame is not None:
            h, w = frame.image.shape[:2]
            found.append(CameraInfo(index, w, h))
    return found
