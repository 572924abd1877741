"""Tracking quality without ground truth, measured the same way for every tracker: ID switches under
occlusion against the tracker's own clean run, and keypoint jitter.

Definitions (also printed with the results):

* **ID switches relative to the clean run.** In every frame that is identical in both clips, the
  tracks each tracker reports as measured in that frame are matched between its clean and its
  stressed run (Hungarian on box IoU, at least 0.5). For each clean track, the sequence of stressed
  IDs it is matched to is read in frame order; every change of that ID is one switch. Switches the
  tracker also makes on the clean clip do not count, and neither do frames inside an occlusion (where
  the occluder itself may be matched).
* **Jitter.** For each track, in every three consecutive frames in which it is measured, the second
  difference ``p(t+1) - 2 p(t) + p(t-1)`` of each joint whose confidence is at least 0.5 in all three,
  divided by the person's size ``sqrt(w * h)`` of the box at ``t``; the mean of its length. Ultralytics'
  trackers report the detector's raw keypoints, occlupose its smoothed ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from posecore.boxes import box_iou
from posecore.types import Poses, Track, TrackState

MATCH_IOU = 0.5  # clean/stressed track matching
JITTER_CONF = 0.5  # joints used for jitter


@dataclass
class FrameTracks:
    """One tracker's output for one frame, as arrays.

    ids int64[T]; boxes float32[T, 4] x1 y1 x2 y2; keypoints float32[T, K, 3]; measured bool[T]: matched to
    a detection in this frame (a track only predicted through a gap is reported by occlupose, not by
    Ultralytics, so measures compare measured tracks only).
    """

    ids: np.ndarray
    boxes: np.ndarray
    keypoints: np.ndarray
    measured: np.ndarray

    @classmethod
    def empty(cls, num_joints: int = 17) -> "FrameTracks":
        return cls(np.zeros(0, np.int64), np.zeros((0, 4), np.float32), np.zeros((0, num_joints, 3), np.float32),
                   np.zeros(0, bool))

    @classmethod
    def from_tracks(cls, tracks: list[Track], num_joints: int = 17) -> "FrameTracks":
        if not tracks:
            return cls.empty(num_joints)
        return cls(np.array([t.track_id for t in tracks], np.int64),
                   np.stack([t.box for t in tracks]).astype(np.float32),
                   np.stack([t.keypoints for t in tracks]).astype(np.float32),
                   np.array([t.state == TrackState.CONFIRMED and t.time_since_update == 0 for t in tracks]))

    def only_measured(self) -> "FrameTracks":
        m = self.measured
        return FrameTracks(self.ids[m], self.boxes[m], self.keypoints[m], self.measured[m])

    def same_as(self, other: "FrameTracks", atol: float = 1e-3) -> bool:
        a, b = self.only_measured(), other.only_measured()
        if len(a.ids) != len(b.ids):
            return False
        ia, ib = np.argsort(a.ids), np.argsort(b.ids)
        return bool((a.ids[ia] == b.ids[ib]).all() and np.allclose(a.boxes[ia], b.boxes[ib], atol=atol))


def _match(a: np.ndarray, b: np.ndarray, min_iou: float) -> list[tuple[int, int]]:
    """Index pairs of the maximum-IoU one-to-one matching of boxes a[N, 4] and b[M, 4], IoU >= min_iou."""
    if len(a) == 0 or len(b) == 0:
        return []
    iou = box_iou(a, b)
    r, c = linear_sum_assignment(-iou)
    return [(int(i), int(j)) for i, j in zip(r, c) if iou[i, j] >= min_iou]


# ---------------------------------------------------------------------------------------- ID switches

def id_switches(clean: list[FrameTracks], stressed: list[FrameTracks], compare: np.ndarray,
                min_iou: float = MATCH_IOU) -> int:
    """Switches of the stressed run relative to the clean run (see the module docstring).

    ``compare`` bool[F]: frames whose images are identical in both clips (the only ones matched).
    """
    last: dict[int, int] = {}
    switches = 0
    for f in np.flatnonzero(compare):
        c, s = clean[f].only_measured(), stressed[f].only_measured()
        for i, j in _match(c.boxes, s.boxes, min_iou):
            cid, sid = int(c.ids[i]), int(s.ids[j])
            if cid in last and last[cid] != sid:
                switches += 1
            last[cid] = sid
    return switches


# ---------------------------------------------------------------------------------------- jitter

@dataclass
class Jitter:
    """Mean length of the per-joint second difference over the person's size, and how many went in."""

    mean: float
    samples: int


def jitter(frames: list[FrameTracks], min_conf: float = JITTER_CONF) -> Jitter:
    """Mean normalised keypoint acceleration of measured tracks over consecutive frames."""
    total, count = 0.0, 0
    for f in range(1, len(frames) - 1):
        a, b, c = (frames[i].only_measured() for i in (f - 1, f, f + 1))
        common = np.intersect1d(np.intersect1d(a.ids, b.ids), c.ids)
        if len(common) == 0:
            continue
        ka, kb, kc = (fr.keypoints[_rows(fr.ids, common)] for fr in (a, b, c))
        box = b.boxes[_rows(b.ids, common)]
        size = np.sqrt(np.clip(box[:, 2] - box[:, 0], 1, None) * np.clip(box[:, 3] - box[:, 1], 1, None))
        ok = (ka[..., 2] >= min_conf) & (kb[..., 2] >= min_conf) & (kc[..., 2] >= min_conf)
        acc = np.linalg.norm(kc[..., :2] - 2 * kb[..., :2] + ka[..., :2], axis=-1) / size[:, None]
        total += float(acc[ok].sum())
        count += int(ok.sum())
    return Jitter(total / count if count else float("nan"), count)


def _rows(ids: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Row of each id of ``wanted`` in ``ids`` (all present, ids unique)."""
    order = np.argsort(ids)
    return order[np.searchsorted(ids, wanted, sorter=order)]


def raw_along(tracks: list[FrameTracks], raw: list[Poses], min_iou: float = MATCH_IOU) -> list[FrameTracks]:
    """The raw detections each measured track was matched to (box IoU), under the track's ID: jitter of
    these against jitter of ``tracks`` compares raw and smoothed keypoints on exactly the same samples."""
    out = []
    for tr, poses in zip(tracks, raw):
        t = tr.only_measured()
        pairs = _match(t.boxes, poses.boxes, min_iou)
        i = np.array([a for a, _ in pairs], np.intp)
        j = np.array([b for _, b in pairs], np.intp)
        out.append(FrameTracks(t.ids[i], poses.boxes[j].astype(np.float32), poses.keypoints[j].astype(np.float32),
                               np.ones(len(i), bool)))
    return out


def deviation(smoothed: list[FrameTracks], raw: list[Poses], min_conf: float = JITTER_CONF) -> float:
    """Mean distance, over the person's size, between each measured track's keypoints and the raw
    detection it was matched to (box IoU), for joints of confidence >= ``min_conf``: how far
    smoothing moves the points (0 for raw output)."""
    total, count = 0.0, 0
    for tr, poses in zip(smoothed, raw):
        t = tr.only_measured()
        for i, j in _match(t.boxes, poses.boxes, 0.7):
            k, d = t.keypoints[i], poses.keypoints[j]
            b = poses.boxes[j]
            size = float(np.sqrt(max(b[2] - b[0], 1) * max(b[3] - b[1], 1)))
            ok = d[:, 2] >= min_conf
            total += float(np.linalg.norm(k[ok, :2] - d[ok, :2], axis=-1).sum()) / size
            count += int(ok.sum())
    return total / count if count else float("nan")
