"""Camera-motion compensation for handheld footage: the global motion between consecutive frames, applied
to the track predictions before matching (:meth:`trackers.tracker.Tracker.update`'s ``warp``).

The motion is estimated as BoT-SORT does it, with Ultralytics' own implementation (``GMC``,
``sparseOptFlow``): corners of the grey, downscaled previous frame followed by pyramidal Lucas-Kanade
optical flow, and a 4-degree-of-freedom affine transform (shift, rotation, scale) fitted by RANSAC, so
the people moving in front (a minority of the corners) do not count.

Modes (``tracker.camera_motion``): ``on`` estimates every frame; ``off`` never; ``auto`` estimates the
first ``AUTO_FRAMES`` frames and keeps going only if the camera moved in them (the median of how far
their warps move an image corner exceeds ``STILL_SHIFT_PX``; while deciding, only warps above it are
applied), so a fixed camera pays for a few frames only. A fixed camera's MP4 gives warps of about a
pixel at the corners (TUD-Stadtmitte: 0.3-1.2 px), which, applied, cost identities there. The estimate depends on the images alone, so a replay (``--resume``)
reproduces it.
"""

from __future__ import annotations

import numpy as np

AUTO_FRAMES = 10
STILL_SHIFT_PX = 1.5  # px at the image corners: below, compression noise of a fixed camera
WORK_WIDTH = 480  # frames are downscaled to about this width for the flow (an integer factor, at least 2)


class CameraMotion:
    """Global motion of each frame relative to the one before; see the module docstring."""

    def __init__(self, mode: str = "auto"):
        if mode not in ("auto", "on", "off"):
            raise ValueError(f"camera_motion: expected auto, on or off, got {mode!r}")
        self.mode = mode
        self.reset()

    def reset(self) -> None:
        self._gmc = None
        self._shape: tuple[int, ...] | None = None
        self._frames = 0
        self._shifts: list[float] = []  # corner shifts of the first AUTO_FRAMES warps

    @property
    def active(self) -> bool:
        """Whether frames are still being measured."""
        if self.mode == "off":
            return False
        return self.mode == "on" or self._frames < AUTO_FRAMES or self._moved

    @property
    def _moved(self) -> bool:
        return bool(self._shifts) and float(np.median(self._shifts)) > STILL_SHIFT_PX

    def warp(self, image: np.ndarray | None) -> np.ndarray | None:
        """float64[2, 3] affine map from the previous frame's pixels to this frame's; None when not
        measured (off, a still camera in auto mode, no image, the first frame)."""
        if image is None or not self.active:
            return None
        if self._gmc is None or image.shape != self._shape:
            # (again for a frame of another size, e.g. an image folder tracked across its images:
            # there is no motion to measure between frames of different sizes)
            from ultralytics.trackers.utils.gmc import GMC

            self._gmc = GMC("sparseOptFlow", downscale=max(2, int(round(image.shape[1] / WORK_WIDTH))))
            self._shape = image.shape
            self._gmc.apply(image)
            self._frames += 1
            return None
        m = np.asarray(self._gmc.apply(image), np.float64)
        self._frames += 1
        if m.shape != (2, 3) or not np.isfinite(m).all():
            return None
        if self.mode == "on":
            return m
        shift = corner_shift(m, image.shape[1], image.shape[0])
        if self._frames <= AUTO_FRAMES:
            self._shifts.append(shift)
            return m if shift > STILL_SHIFT_PX else None
        return m


def corner_shift(m: np.ndarray, width: int, height: int) -> float:
    """Largest distance, in pixels, that the affine map ``m`` float[2, 3] moves a corner of the image."""
    corners = np.array([[0, 0], [width, 0], [0, height], [width, height]], np.float64)
    moved = corners @ m[:, :2].T + m[:, 2]
    return float(np.linalg.norm(moved - corners, axis=1).max())


def warp_points(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Points float[..., 2] mapped by the affine ``m`` float[2, 3]."""
    return pts @ m[:, :2].T + m[:, 2]
