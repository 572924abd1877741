"""``detector.imgsz: auto``: the detector's input size chosen once per source from its first frames.

YOLO11n-pose was trained at 640 px and misses people much smaller than that in its input. Measured on the
first 4 frames of ``mmtracking_demo.mp4`` (1920x1080, a crowd), taking the people a 1280 pass finds
(score >= 0.25) as the reference: a 640 pass found none of those under 60 px tall in its input, 9 % of
those at 60-80 px and all of those above 80 px. So the people a pass at the base size finds are the tall
end of the crowd, and when even their median is close to that limit, most of the crowd is below it.

A larger input helps a small source too, though it only upsamples it: on ``opencv_vtest.avi`` (480x360,
pedestrians about 70 px tall in the frame) a 640 pass found 0.21 people per frame over the first 300
frames, 960 found 2.9 and 1280 5.3 (README "Input size: auto"). So a source under ``UPSCALE`` px goes to
``UPSCALE``: there it cost 1.2x the 640 pass with the flip test that it replaces
(:meth:`posecore.multiscale.PassesConfig.for_auto_size`), where 1280 cost 2.3x.

The rule (:func:`choose_imgsz`), on the people the base size finds in the first frames (score >= 0.25):

- median height in the base's input under ``SMALL_PX`` (1.5x that 80 px limit): the larger size
  (:func:`larger_size`);
- nobody found: one pass at the larger size on the first frame decides, since people the base misses
  entirely are exactly the case to catch; if it finds nobody either, the base;
- otherwise the base.

It is deterministic given the frames and the detector; a batch run also records it, so a resume keeps it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from .types import Detections

AUTO = "auto"
BASE = 640  # the size the network was trained at; also what "auto" means where no source is known
LARGE_MAX = 1280
UPSCALE = 960  # the larger size of a source smaller than this: 1.5x the base, upsampled
SMALL_PX = 120  # median height (px in the base's input) of the people found, below which go larger
PROBE_FRAMES = 4
COUNT_SCORE = 0.25  # people counted: score at least this
STRIDE = 32


@dataclass(frozen=True)
class SizeChoice:
    """The input size chosen for one source, and why (one line, for the log and the run's record)."""

    imgsz: int
    reason: str
    people: int = 0  # people found at the base size in the probed frames
    median_height: float | None = None  # their median height in the base's input, px

    def as_record(self) -> dict:
        return {"imgsz": self.imgsz, "reason": self.reason, "people": self.people,
                "median_height": None if self.median_height is None else round(self.median_height, 1)}

    @classmethod
    def from_record(cls, record: object) -> SizeChoice | None:
        """The choice :meth:`as_record` wrote, or None for anything else (a record edited or damaged)."""
        if not isinstance(record, dict):
            return None
        size, reason, people, median = (record.get(k) for k in ("imgsz", "reason", "people", "median_height"))
        if isinstance(size, bool) or not isinstance(size, int) or not 32 <= size <= 4096:
            return None
        return cls(size, reason if isinstance(reason, str) else "recorded",
                   people if isinstance(people, int) and not isinstance(people, bool) else 0,
                   float(median) if isinstance(median, (int, float)) and not isinstance(median, bool) else None)


def base_size(imgsz: int | str) -> int:
    """The size to run where no choice per source is made: ``auto`` is the base."""
    return BASE if imgsz == AUTO else int(imgsz)


def fixed_choice(stills: bool, extra: str) -> SizeChoice | None:
    """The choice made without looking at frames, or None. Still images keep the base: unrelated photos
    share no people sizes, and on the labelled photos a larger single pass lost keypoint AP. So does a run
    with ``passes.extra`` (tiles or a second scale), which looks again at small people already."""
    if stills:
        return SizeChoice(BASE, "still images keep the base size")
    if extra != "none":
        return SizeChoice(BASE, f"passes.extra: {extra} looks at small people already")
    return None


def larger_size(height: int, width: int) -> int:
    """The size ``auto`` goes up to for a ``height`` x ``width`` source: its long side (a multiple of
    32, rounded down) between ``UPSCALE`` and ``LARGE_MAX``."""
    return min(LARGE_MAX, max(UPSCALE, max(height, width) // STRIDE * STRIDE))


def person_heights(det: Detections, scale: float) -> np.ndarray:
    """float[N]: heights of the people of ``det`` scored at least ``COUNT_SCORE``, times ``scale``."""
    keep = det.scores >= COUNT_SCORE
    return (det.boxes[keep, 3] - det.boxes[keep, 1]) * scale


def choose_imgsz(heights: np.ndarray, height: int, width: int, base: int = BASE,
                 larger_finds: Callable[[], int] | None = None) -> SizeChoice:
    """The size for a ``height`` x ``width`` source whose people found at ``base`` have ``heights``
    (float[N], px in the base's input, pooled over the probed frames). ``larger_finds`` counts the people a
    pass at the larger size finds on the first frame; it is called only when ``heights`` is empty."""
    large = larger_size(height, width)
    if len(heights) == 0:
        found = larger_finds() if larger_finds is not None else 0
        if found:
            return SizeChoice(large, f"nobody found at {base}, {found} at {large} in the first frame")
        return SizeChoice(base, f"nobody found in the first frames at {base} or {large}")
    median = float(np.median(heights))
    if median < SMALL_PX:
        return SizeChoice(large, f"people small at {base} (median {median:.0f} px tall < {SMALL_PX})",
                          len(heights), median)
    return SizeChoice(base, f"people large enough at {base} (median {median:.0f} px tall)", len(heights), median)


def probe(detector_at: Callable[[int], Callable[[np.ndarray], Detections]], frames: Sequence[np.ndarray],
          base: int = BASE) -> SizeChoice:
    """:func:`choose_imgsz` for BGR frames uint8[H, W, 3] of one source (its first ones; the first one's
    size stands for the source).
    ``detector_at(size)`` is a detect function at that input size; the larger size's only when needed."""
    if not frames:
        return SizeChoice(base, "no frames to measure")
    h, w = frames[0].shape[:2]
    large = larger_size(h, w)
    detect = detector_at(base)
    heights = np.concatenate([person_heights(detect(f), base / max(f.shape[:2])) for f in frames])

    def larger_finds() -> int:
        return int((detector_at(large)(frames[0]).scores >= COUNT_SCORE).sum())

    return choose_imgsz(heights, h, w, base, larger_finds)
