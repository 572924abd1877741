"""Offline identity stitching for batch runs: a tracklet that ends is linked to one that starts a little
later when they look like the same person, and the gap between them is filled.

The causal tracker gives a person a new ID when it cannot re-find them after an occlusion (they came
back too far from where it looked, or after it dropped the track). :class:`Stitcher` holds the results
back ``window`` frames; when a track ID is born, it is compared with every tracklet that ended (was last
measured) at most ``max_gap`` frames before, on

* motion: the distance, in the old person's sizes ``sqrt(w * h)``, from the new box centre to the old
  track's path (its last centre moved on at its last velocity, which slows a tenth per frame), allowed
  to grow per frame of the gap (people change pace while hidden);
* size: the ratio of the two box sizes;
* pose shape: limb lengths over their sum (joints seen at both ends), mean absolute difference;
* appearance: a hue-saturation histogram of the torso (between shoulders and hips, or the middle of the
  box), Bhattacharyya distance; only when images are given.

Pairs within every gate are matched by Hungarian on a sum of the normalised distances; a linked birth
takes the old ID from then on, and the frames of the gap (still held) get the interpolated person
(:func:`trackers.gaps.interpolate`, every joint ``seen`` False). Gaps the causal tracker closed itself
(it re-found the person under the same ID) are filled the same way, in place of its predicted "lost"
boxes. Everything it keeps is bounded by the window and the gap, so memory stays flat; it is a pure
function of the results pushed, so a replay (``--resume``) reproduces it exactly.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, replace
from typing import Generic, TypeVar

import numpy as np
from scipy.optimize import linear_sum_assignment

from posecore.skeleton import COCO17
from posecore.types import Track, TrackState

from .gaps import interpolate

T = TypeVar("T")

_HIST_BINS = (16, 8)  # hue, saturation
_EMA = 0.3  # weight of the newest frame in a tracklet's running appearance, shape and velocity
_SPEED_DAMPING = 0.9  # per frame of the gap, factor on the assumed speed
_SHOULDERS, _HIPS = (5, 6), (11, 12)  # COCO-17


@dataclass
class StitchSettings:
    """Gates of :class:`Stitcher` (TrackerConfig's ``stitch_*`` keys)."""

    max_gap: int = 30
    max_dist: float = 1.0
    growth: float = 0.05
    max_scale: float = 1.5
    max_shape: float = 0.06
    max_colour: float = 0.5
    fill: int = 30  # longest gap filled, frames (0: none)


@dataclass
class _Tracklet:
    """What is known of one output ID at its last measurement (frame ``last``)."""

    track: Track
    last: int
    velocity: np.ndarray  # float64[2] px/frame of the box centre
    shape: np.ndarray | None  # float64[L] limb lengths over their sum, NaN where unknown
    colour: np.ndarray | None  # float32[bins] normalised histogram


@dataclass
class _Held(Generic[T]):
    item: T
    frame: int
    tracks: dict[int, Track]  # by output ID


def _centre(box: np.ndarray) -> np.ndarray:
    return (np.asarray(box[:2], np.float64) + np.asarray(box[2:], np.float64)) / 2


def _size(box: np.ndarray) -> float:
    return float(np.sqrt(max(box[2] - box[0], 1.0) * max(box[3] - box[1], 1.0)))


def limb_shape(kpts: np.ndarray, seen: np.ndarray) -> np.ndarray | None:
    """float64[L] COCO-17 limb lengths over the sum of the known ones, NaN where a joint is unseen;
    None for another skeleton or fewer than four limbs known."""
    if len(kpts) != COCO17.num_joints:
        return None
    a, b = np.array(COCO17.limbs).T
    ok = np.asarray(seen, bool)[a] & np.asarray(seen, bool)[b]
    if ok.sum() < 4:
        return None
    length = np.linalg.norm(np.asarray(kpts, np.float64)[a, :2] - np.asarray(kpts, np.float64)[b, :2], axis=1)
    total = length[ok].sum()
    return np.where(ok, length / total, np.nan) if total > 0 else None


def torso_colour(image: np.ndarray, box: np.ndarray, kpts: np.ndarray, seen: np.ndarray) -> np.ndarray | None:
    """float32[16 * 8] normalised hue-saturation histogram of the torso: the box around the seen
    shoulders and hips when all four are seen, else the middle of the person's box."""
    import cv2

    h, w = image.shape[:2]
    torso = list(_SHOULDERS + _HIPS)
    if len(kpts) == COCO17.num_joints and np.asarray(seen, bool)[torso].all():
        pts = np.asarray(kpts, np.float64)[torso, :2]
        x1, y1 = pts.min(0)
        x2, y2 = pts.max(0)
    else:
        bx1, by1, bx2, by2 = np.asarray(box, np.float64)
        x1, x2 = bx1 + 0.25 * (bx2 - bx1), bx2 - 0.25 * (bx2 - bx1)
        y1, y2 = by1 + 0.2 * (by2 - by1), by1 + 0.55 * (by2 - by1)
    x1, y1 = int(max(0, np.floor(x1))), int(max(0, np.floor(y1)))
    x2, y2 = int(min(w, np.ceil(x2))), int(min(h, np.ceil(y2)))
    if x2 - x1 < 2 or y2 - y1 < 2:
        return None
    hsv = cv2.cvtColor(np.ascontiguousarray(image[y1:y2, x1:x2]), cv2.COLOR_BGR2HSV)
    hist = cv2.calcHist([hsv], [0, 1], None, list(_HIST_BINS), [0, 180, 0, 256]).reshape(-1)
    total = float(hist.sum())
    return (hist / total).astype(np.float32) if total > 0 else None


def _blend(old: np.ndarray | None, new: np.ndarray | None) -> np.ndarray | None:
    if old is None or new is None:
        return new if old is None else old
    out = (1 - _EMA) * old + _EMA * new
    return np.where(np.isnan(old), new, np.where(np.isnan(new), old, out)) if out.dtype.kind == "f" else out


def _bhattacharyya(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(max(0.0, 1.0 - float(np.sum(np.sqrt(a * b))))))


def stitch_settings(config) -> StitchSettings:
    """The stitching settings of a :class:`trackers.tracker.TrackerConfig`."""
    c = config
    return StitchSettings(c.stitch_gap, c.stitch_max_dist, c.stitch_growth, c.stitch_max_scale, c.stitch_max_shape,
                          c.stitch_max_colour, c.fill_gap)


def forget_after(config) -> int:
    """Frames after which a raw ID the tracker stopped reporting cannot come back (it dropped the track)."""
    return config.max_lost + config.report_lost + 1


class Stitcher(Generic[T]):
    """Holds results back ``settings.max_gap + 1`` frames and stitches and fills identities over them
    (see the module docstring). ``push(item, tracks, image)`` returns the (item, tracks) pairs now
    final, oldest first; :meth:`flush` the rest at the end of a video."""

    def __init__(self, settings: StitchSettings, forget: int = 100):
        self.settings = settings
        self.window = settings.max_gap + 1 if settings.max_gap > 0 else 0
        self.forget = max(forget, self.window) + 1  # frames after which a quiet raw ID is gone for good
        self.reset()

    def reset(self) -> None:
        self._held: deque[_Held[T]] = deque()
        self._frame = 0
        self._tracklets: dict[int, _Tracklet] = {}  # by output ID
        self._to_out: dict[int, int] = {}  # raw ID -> output ID, for stitched births
        self._raw_last: dict[int, int] = {}  # raw ID -> frame last reported

    def push(self, item: T, tracks: list[Track], image: np.ndarray | None = None) -> list[tuple[T, list[Track]]]:
        if self.window == 0:
            return [(item, tracks)]
        t = self._frame
        self._frame += 1
        measured = [tr for tr in tracks if tr.state == TrackState.CONFIRMED and tr.time_since_update == 0]
        born = [tr for tr in measured if tr.track_id not in self._raw_last]
        raw_measured = {tr.track_id for tr in measured}
        for r in [r for r, o in self._to_out.items() if o in raw_measured]:
            # The tracker re-found the old ID itself: its stitched successor goes back to its own ID.
            del self._to_out[r]
        for tr in tracks:
            self._raw_last[tr.track_id] = t
        self._link(born, measured, t, image)
        out: dict[int, Track] = {}
        for tr in sorted(tracks, key=lambda x: (x.time_since_update, x.track_id)):  # measured first
            oid = self._to_out.get(tr.track_id, tr.track_id)
            if oid in out:
                if tr.time_since_update > 0:
                    continue  # a predicted duplicate of a person measured under this ID
                oid = tr.track_id  # (two measured under one ID cannot be linked; kept apart)
            out[oid] = tr if oid == tr.track_id else replace(tr, track_id=oid)
        for oid, tr in out.items():
            if tr.state == TrackState.CONFIRMED and tr.time_since_update == 0:
                self._measured(oid, tr, t, image)
        self._held.append(_Held(item, t, out))
        self._prune(t)
        done = []
        while len(self._held) > self.window:
            done.append(self._release())
        return done

    def flush(self) -> list[tuple[T, list[Track]]]:
        done = [self._release() for _ in range(len(self._held))]
        return done

    # ------------------------------------------------------------------ steps

    def _release(self) -> tuple[T, list[Track]]:
        h = self._held.popleft()
        return h.item, [h.tracks[k] for k in sorted(h.tracks)]

    def _link(self, born: list[Track], measured: list[Track], t: int, image: np.ndarray | None) -> None:
        s = self.settings
        if not born:
            return
        new = {tr.track_id for tr in born}
        alive = {self._to_out.get(tr.track_id, tr.track_id) for tr in measured if tr.track_id not in new}
        cands = [(oid, tl) for oid, tl in self._tracklets.items()
                 if oid not in alive and 1 <= t - tl.last - 1 <= s.max_gap]
        if not cands:
            return
        cost = np.full((len(born), len(cands)), np.inf)
        for i, b in enumerate(born):
            shape = limb_shape(b.keypoints, b.seen)
            colour = torso_colour(image, b.box, b.keypoints, b.seen) if image is not None else None
            for j, (_, tl) in enumerate(cands):
                cost[i, j] = self._cost(tl, b, t, shape, colour)
        ok = np.isfinite(cost)
        if not ok.any():
            return
        rows, cols = linear_sum_assignment(np.where(ok, cost, 1e6))
        for i, j in zip(rows, cols):
            if ok[i, j]:
                self._to_out[born[i].track_id] = cands[j][0]

    def _cost(self, tl: _Tracklet, b: Track, t: int, shape: np.ndarray | None, colour: np.ndarray | None) -> float:
        s = self.settings
        gap = t - tl.last
        size = _size(tl.track.box)
        ratio = _size(b.box) / size
        if not 1 / s.max_scale <= ratio <= s.max_scale:
            return np.inf
        travel = sum(_SPEED_DAMPING ** k for k in range(gap))
        start = _centre(tl.track.box)
        end = start + tl.velocity * travel
        p = _centre(b.box)
        seg = end - start
        u = float(np.clip(np.dot(p - start, seg) / max(float(np.dot(seg, seg)), 1e-9), 0.0, 1.0))
        dist = float(np.linalg.norm(p - (start + u * seg))) / size
        reach = s.max_dist * (1.0 + s.growth * (gap - 1))
        if dist > reach:
            return np.inf
        cost = dist / reach + abs(np.log(ratio)) / np.log(s.max_scale)
        if shape is not None and tl.shape is not None:
            both = ~np.isnan(shape) & ~np.isnan(tl.shape)
            if both.sum() >= 4:
                diff = float(np.mean(np.abs(shape[both] - tl.shape[both])))
                if diff > s.max_shape:
                    return np.inf
                cost += diff / s.max_shape
        if colour is not None and tl.colour is not None:
            d = _bhattacharyya(colour, tl.colour)
            if d > s.max_colour:
                return np.inf
            cost += d / s.max_colour
        return cost

    def _measured(self, oid: int, tr: Track, t: int, image: np.ndarray | None) -> None:
        tl = self._tracklets.get(oid)
        shape = limb_shape(tr.keypoints, tr.seen)
        colour = torso_colour(image, tr.box, tr.keypoints, tr.seen) if image is not None else None
        if tl is None:
            self._tracklets[oid] = _Tracklet(tr, t, np.zeros(2), shape, colour)
            return
        gap = t - tl.last
        if 1 <= gap - 1 <= min(self.settings.fill, self.settings.max_gap):
            self._fill(oid, tl.track, tr, tl.last, t)
        v = (_centre(tr.box) - _centre(tl.track.box)) / gap
        velocity = v if gap > 1 or not tl.velocity.any() else (1 - _EMA) * tl.velocity + _EMA * v
        self._tracklets[oid] = _Tracklet(tr, t, velocity, _blend(tl.shape, shape), _blend(tl.colour, colour))

    def _fill(self, oid: int, before: Track, after: Track, t0: int, t1: int) -> None:
        held = {h.frame: h for h in self._held}
        if t0 + 1 not in held:
            return  # part of the gap is already out
        for k, tr in enumerate(interpolate(before, after, t1 - t0 - 1, oid), start=t0 + 1):
            held[k].tracks[oid] = tr

    def _prune(self, t: int) -> None:
        gone = [oid for oid, tl in self._tracklets.items() if t - tl.last > self.window + 1]
        for oid in gone:
            del self._tracklets[oid]
        quiet = [r for r, last in self._raw_last.items() if t - last > self.forget]
        for r in quiet:
            del self._raw_last[r]
            self._to_out.pop(r, None)
