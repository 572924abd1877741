"""Typed records passed between the stages of the pipeline.

Shapes use N = people, K = joints of the skeleton. Coordinates are image pixels.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .yolo_features import YoloFeatures


def _as(a, dtype, shape_tail: tuple[int, ...], name: str) -> np.ndarray:
    a = np.asarray(a, dtype=dtype)
    if a.ndim != 1 + len(shape_tail) or tuple(a.shape[1:]) != shape_tail:
        raise ValueError(f"{name}: expected shape (N, {', '.join(map(str, shape_tail))}), got {a.shape}")
    return a


@dataclass
class Detections:
    """People found by the detector in one frame.

    boxes: float32[N, 4] x1 y1 x2 y2; scores: float32[N];
    keypoints: float32[N, K, 3] (x, y, confidence) when the detector has a pose head, else None;
    features: the neck maps of the detection pass that found them, when the detector was asked to keep
    them (:meth:`posecore.detector.Detector.capture_features`, for the refiner), else None.
    """

    boxes: np.ndarray
    scores: np.ndarray
    keypoints: np.ndarray | None = None
    features: YoloFeatures | None = None

    def __post_init__(self) -> None:
        self.boxes = _as(self.boxes, np.float32, (4,), "boxes")
        self.scores = np.asarray(self.scores, dtype=np.float32).reshape(-1)
        if len(self.scores) != len(self.boxes):
            raise ValueError(f"scores: {len(self.scores)} for {len(self.boxes)} boxes")
        if self.keypoints is not None:
            self.keypoints = np.asarray(self.keypoints, dtype=np.float32)
            if self.keypoints.ndim != 3 or self.keypoints.shape[0] != len(self.boxes) or self.keypoints.shape[2] != 3:
                raise ValueError(f"keypoints: expected ({len(self.boxes)}, K, 3), got {self.keypoints.shape}")

    def __len__(self) -> int:
        return len(self.boxes)

    @classmethod
    def empty(cls, num_joints: int | None = None) -> "Detections":
        kpts = None if num_joints is None else np.zeros((0, num_joints, 3), np.float32)
        return cls(np.zeros((0, 4), np.float32), np.zeros((0,), np.float32), kpts)

    def select(self, index) -> "Detections":
        kpts = None if self.keypoints is None else self.keypoints[index]
        return Detections(self.boxes[index], self.scores[index], kpts, self.features)  # maps are per frame


@dataclass
class Poses:
    """Per-person poses of one frame.

    boxes: float32[N, 4]; scores: float32[N] (person score);
    keypoints: float32[N, K, 3] (x, y, confidence);
    seen: bool[N, K], False where a joint was predicted (occluded, filled in) rather than measured.
    """

    boxes: np.ndarray
    scores: np.ndarray
    keypoints: np.ndarray
    seen: np.ndarray | None = None
    skeleton: str = "coco17"

    def __post_init__(self) -> None:
        self.boxes = _as(self.boxes, np.float32, (4,), "boxes")
        self.scores = np.asarray(self.scores, dtype=np.float32).reshape(-1)
        self.keypoints = np.asarray(self.keypoints, dtype=np.float32)
        n = len(self.boxes)
        if self.keypoints.ndim != 3 or self.keypoints.shape[0] != n or self.keypoints.shape[2] != 3:
            raise ValueError(f"keypoints: expected ({n}, K, 3), got {self.keypoints.shape}")
        if len(self.scores) != n:
            raise ValueError(f"scores: {len(self.scores)} for {n} boxes")
        if self.seen is None:
            self.seen = np.ones(self.keypoints.shape[:2], dtype=bool)
        self.seen = np.asarray(self.seen, dtype=bool)
        if self.seen.shape != self.keypoints.shape[:2]:
            raise ValueError(f"seen: expected {self.keypoints.shape[:2]}, got {self.seen.shape}")

    def __len__(self) -> int:
        return len(self.boxes)

    @property
    def num_joints(self) -> int:
        return self.keypoints.shape[1]

    @classmethod
    def empty(cls, num_joints: int = 17, skeleton: str = "coco17") -> "Poses":
        return cls(np.zeros((0, 4)), np.zeros((0,)), np.zeros((0, num_joints, 3)), skeleton=skeleton)

    def select(self, index) -> "Poses":
        return Poses(self.boxes[index], self.scores[index], self.keypoints[index], self.seen[index], self.skeleton)


class TrackState(str, enum.Enum):
    TENTATIVE = "tentative"
    CONFIRMED = "confirmed"
    LOST = "lost"
    REMOVED = "removed"


@dataclass
class Track:
    """One person followed over time, as reported for a frame.

    box: float32[4]; keypoints: float32[K, 3] (smoothed x, y, confidence);
    seen: bool[K], False for joints predicted by the filter in this frame.
    """

    track_id: int
    state: TrackState
    box: np.ndarray
    score: float
    keypoints: np.ndarray
    seen: np.ndarray
    age: int = 0  # frames since the track was born
    hits: int = 0  # frames in which it was matched to a detection
    time_since_update: int = 0  # frames since the last match (0 = matched in this frame)

    @property
    def is_matched(self) -> bool:
        return self.time_since_update == 0


@dataclass
class FrameResult:
    """Everything the pipeline knows about one frame.

    image: uint8[H, W, 3] BGR, the decoded frame (kept so consumers can draw or record);
    poses: this frame's per-person estimates before tracking; tracks: the tracker's output;
    timings: seconds spent per stage (decode, detect, pose, refine, track; track_cpu: the tracker's CPU time).
    """

    index: int
    time_s: float
    image: np.ndarray | None
    poses: Poses
    tracks: list[Track]
    source_name: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
