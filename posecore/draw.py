"""Drawing tracked skeletons on frames with OpenCV (no font downloads, ASCII labels only).

Colours are stable per track ID. Measured joints are filled discs on solid bones; joints predicted
through occlusion are hollow rings, and bones touching them are drawn thin.
"""

from __future__ import annotations

import colorsys
from collections import deque
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from .skeleton import get_skeleton
from .types import Track, TrackState


@lru_cache(maxsize=512)
def track_color(track_id: int) -> tuple[int, int, int]:
    """A BGR colour for an ID; golden-ratio hue steps keep neighbouring IDs apart."""
    h = (track_id * 0.618033988749895) % 1.0
    r, g, b = colorsys.hsv_to_rgb(h, 0.85, 1.0)
    return int(b * 255), int(g * 255), int(r * 255)


@dataclass
class DrawOptions:
    skeleton: bool = True
    boxes: bool = False
    labels: bool = True
    trails: bool = True
    predicted: bool = True  # draw joints predicted through occlusion
    kpt_threshold: float = 0.3  # joints below this confidence are not drawn, unless predicted
    trail_length: int = 30


class Trails:
    """Recent box-bottom-centre points per track, for motion trails; forgets tracks not seen for a while."""

    def __init__(self, length: int = 30, forget_after: int = 30):
        self.length = length
        self.forget_after = forget_after
        self._points: dict[int, deque] = {}
        self._last: dict[int, int] = {}

    def update(self, tracks: list[Track], frame_index: int) -> None:
        for t in tracks:
            pts = self._points.setdefault(t.track_id, deque(maxlen=self.length))
            pts.append((int((t.box[0] + t.box[2]) / 2), int(t.box[3])))
            self._last[t.track_id] = frame_index
        for tid in [i for i, f in self._last.items() if frame_index - f > self.forget_after]:
            del self._points[tid], self._last[tid]

    def points(self, track_id: int):
        return self._points.get(track_id, ())


def _limb_index(limbs: tuple[tuple[int, int], ...]) -> tuple[np.ndarray, np.ndarray]:
    """int[L] first and second joint of every limb."""
    a = np.array([x for x, _ in limbs], np.intp)
    b = np.array([y for _, y in limbs], np.intp)
    return a, b


def draw_tracks(image: np.ndarray, tracks: list[Track], skeleton: str = "coco17",
                options: DrawOptions | None = None, trails: Trails | None = None) -> np.ndarray:
    """Draw onto ``image`` (BGR uint8[H, W, 3], modified in place and returned).

    Bones, trails and measured joints go to OpenCV as one polyline call per track and style (a joint
    disc is a zero-length segment with round caps), so the cost does not grow with Python work per joint.
    """
    opt = options or DrawOptions()
    sk = get_skeleton(skeleton)
    limb_a, limb_b = _limb_index(sk.limbs)
    scale = max(1.0, max(image.shape[:2]) / 720.0)
    thick = max(1, int(round(2 * scale)))
    radius = max(2, int(round(3 * scale)))
    for t in tracks:
        color = track_color(t.track_id)
        lost = t.state == TrackState.LOST
        kp = t.keypoints
        seen = np.asarray(t.seen, bool)
        shown = kp[:, 2] >= opt.kpt_threshold
        shown = (shown | ~seen) if opt.predicted else (shown & seen)
        if opt.trails and trails is not None:
            pts = np.array(trails.points(t.track_id), np.int32).reshape(-1, 2)
            if len(pts) > 1:
                cv2.polylines(image, [pts], False, color, max(1, thick // 2), cv2.LINE_AA)
        if opt.boxes:
            x1, y1, x2, y2 = (int(round(v)) for v in t.box)
            cv2.rectangle(image, (x1, y1), (x2, y2), color, 1 if lost else thick)
        if opt.skeleton:
            xy = np.round(kp[:, :2]).astype(np.int32)
            both = shown[limb_a] & shown[limb_b]
            solid = both & seen[limb_a] & seen[limb_b] & (not lost)
            segments = np.stack([xy[limb_a], xy[limb_b]], 1)  # [L, 2, 2]
            for mask, width in ((solid, thick), (both & ~solid, 1)):
                if mask.any():
                    cv2.polylines(image, list(segments[mask]), False, color, width, cv2.LINE_AA)
            filled = shown & seen & (not lost)
            if filled.any():
                dots = np.repeat(xy[filled][:, None, :], 2, axis=1)  # zero-length segments: round discs
                cv2.polylines(image, list(dots), False, color, 2 * radius, cv2.LINE_AA)
            for j in np.flatnonzero(shown & ~filled):
                cv2.circle(image, (int(xy[j, 0]), int(xy[j, 1])), radius, color, 1, cv2.LINE_AA)
        if opt.labels:
            x1, y1 = int(t.box[0]), int(t.box[1])
            label = f"{t.track_id}" + ("?" if lost else "")
            fs = 0.5 * scale
            (w, h), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, fs, thick)
            y = max(h + 2, y1 - 2)
            cv2.rectangle(image, (x1, y - h - 2), (x1 + w + 2, y + 2), color, -1)
            cv2.putText(image, label, (x1 + 1, y), cv2.FONT_HERSHEY_SIMPLEX, fs, (0, 0, 0), thick, cv2.LINE_AA)
    return image
