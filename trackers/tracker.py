"""Multi-person pose tracker: who is who over time, with smoothed and gap-filled keypoints.

Each frame, every track is predicted forward (box and joints), matched to the frame's poses in four
gated Hungarian stages, corrected by its match, and moved along its lifecycle::

    tentative --(min_hits matches)--> confirmed <--(matched again)--> lost --(max_lost frames)--> removed
        \\--(missed once)--> removed

Matching stages (ByteTrack-style; "high" poses score at least ``high_score``, "low" ones at least
``low_score``, the rest are ignored):

1. confirmed and lost tracks vs high poses, on ``1 - similarity`` where similarity mixes box IoU and the
   OKS between the track's predicted pose and the detected one; pairs below ``match_min_sim`` are gated;
2. tracks that were matched in the previous frame and are still free vs low poses (an occluded person
   often scores low), gate ``low_match_min_sim``;
3. second chance for the still-free confirmed and lost tracks vs the still-free high poses, on the
   distance in track sizes from the pose's box centre to the track's likely path: the segment from its
   damped prediction (the person stopped) to where its last velocity would have taken it (the person
   walked on); gate ``reid_max_dist``, widened by ``reid_growth`` per frame lost (people change pace
   while hidden), box sizes within a factor ``reid_max_scale``. This re-finds a person who comes back
   from behind an occluder away from where IoU could see them. A lost box keeps its size
   (``lost_size_damping``): one cut by the image edge as its person left must not shrink away;
4. tentative tracks vs the remaining high poses, as stage 1.

Remaining poses scoring at least ``new_track_score`` start tentative tracks (in the first ``min_hits``
frames after a reset, every remaining pose starts a track confirmed at once, as SORT does); after those,
a pose whose joints sit on those of a pose matched or started in the same frame starts none: the detector
reported one person twice (``birth_dup_joints``). IDs start
at 1 and are never reused until :meth:`Tracker.reset`.

Before all this, a pose whose box touches the frame's left or right edge and is narrower than
``edge_sliver`` times its height is left out (when the frame size is given): that sliver of someone
leaving or entering gives neither their place nor their size, and on the ground-truth sequences it was
mostly a false positive that kept a track alive at the edge after its person had left.

The track table is a set of parallel arrays (one row per track), filters included, so everything but
the building of the returned records runs as NumPy operations over all tracks at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from posecore.config import from_dict, option, to_dict
from posecore.errors import ConfigError
from posecore.skeleton import COCO17, get_skeleton
from posecore.types import Poses, Track, TrackState

from .association import (assign, box_iou, centre_distance, pose_oks, pose_similarity, same_person,
                          segment_distance)
from .kalman import BoxKalman, CVState, KeypointKalman, box_size

COORD_LIMIT = 1e6  # px; inputs are clipped to +-this so squares and sums stay finite
EDGE_PX = 2  # a box this close to the frame's left or right edge touches it
_NEVER = np.iinfo(np.int64).max // 4  # "frames since seen" of a joint never seen

_TENTATIVE, _CONFIRMED, _LOST = 0, 1, 2


@dataclass
class TrackerConfig:
    """Settings of :class:`Tracker`. Lengths are fractions of a person's size ``sqrt(w * h)`` of the box.

    Smoothing is set by the ratio ``kp_accel_std / kp_meas_std`` (0.2 by default): on detector jitter
    alone that leaves about a third of the raw frame-to-frame acceleration, while a constant-velocity
    model follows steady motion without lag and catches up with a sudden start within about ten frames.
    Raise ``kp_accel_std`` to follow fast motion more closely, lower it for smoother output.
    """

    # Which poses take part.
    high_score: float = option(0.65, ge=0.0, le=1.0, help="poses from this score are matched first and may start tracks")
    low_score: float = option(0.1, ge=0.0, le=1.0,
                              help="poses below are ignored; between low and high they only extend tracks "
                                   "(and start them in the first min_hits frames)")
    new_track_score: float = option(0.65, ge=0.0, le=1.0,
                                    help="after the first min_hits frames, a pose starts a track only from this score")
    # Association.
    iou_weight: float = option(0.5, ge=0.0, le=1.0,
                               help="similarity = w * IoU + (1 - w) * OKS (IoU alone where OKS is undefined)")
    match_min_sim: float = option(0.3, gt=0.0, le=1.0, help="least similarity to match a high pose")
    low_match_min_sim: float = option(0.4, gt=0.0, le=1.0, help="least similarity to match a low pose")
    oks_min_joints: int = option(3, ge=1, le=1000, help="OKS needs this many joints known on both sides")
    reid_max_dist: float = option(1.0, ge=0.0, le=10.0,
                                  help="second chance: largest distance from the track's likely path, in sizes")
    reid_growth: float = option(0.02, ge=0.0, le=1.0,
                                help="second chance: the distance allowed grows by this fraction per frame lost "
                                     "(people change speed while hidden)")
    reid_max_scale: float = option(2.0, ge=1.0, le=10.0, help="second chance: largest ratio of the two box sizes")
    # Lifecycle.
    min_hits: int = option(1, ge=1, le=1000, help="matches to confirm a track (at once in the first min_hits frames)")
    max_lost: int = option(30, ge=0, le=100000, help="frames a confirmed track is kept, predicted, without a match")
    report_lost: int = option(5, ge=0, le=100000, help="frames a lost track is still returned, predicted (0: never)")
    lost_score_decay: float = option(0.8, gt=0.0, le=1.0,
                                     help="per lost frame, factor on a reported lost track's score and confidences")
    velocity_damping: float = option(0.9, ge=0.0, le=1.0,
                                     help="per frame, factor on the velocity of lost boxes and unmeasured joints")
    lost_size_damping: float = option(0.0, ge=0.0, le=1.0,
                                      help="per frame, factor on the rate a lost box grows or shrinks (0: it keeps "
                                           "its size; a box cut by the image edge must not shrink away)")
    edge_sliver: float = option(0.1, ge=0.0, le=1.0,
                                help="a pose whose box touches the frame's left or right edge and is narrower than "
                                     "this times its height neither matches nor starts a track (0: off)")
    birth_dup_joints: int = option(5, ge=0, le=1000,
                                   help="after the first min_hits frames, a free pose starts no track when this many "
                                        "of its joints sit on those of a pose matched or started in the same frame "
                                        "(one person reported twice); 0: off")
    max_tracks: int = option(1000, ge=1, le=1000000, help="track table limit; the longest-unmatched go first")
    # Keypoint filter.
    kp_seen_conf: float = option(0.3, ge=0.0, le=1.0, help="joints from this confidence are seen and used for OKS")
    kp_min_conf: float = option(0.05, gt=0.0, le=1.0, help="joints below this confidence are predicted, not measured")
    kp_meas_std: float = option(0.02, gt=0.0, le=10.0,
                                help="joint measurement std at confidence 1 (variance grows as 1 / confidence)")
    kp_accel_std: float = option(0.004, gt=0.0, le=10.0, help="joint process noise: velocity change per frame")
    kp_init_vel_std: float = option(0.05, ge=0.0, le=10.0, help="unknown velocity of a new track's joints, per frame")
    smoothing_lag: int = option(1, ge=0, le=30,
                                help="batch runs: frames of look-ahead for smoothing the joints (trackers.smoother); "
                                     "results come out this many frames later; 0: the causal filter alone. "
                                     "Live display (the GUI) is always causal")
    # Offline stitching and gap filling (batch runs; trackers.stitching). The GUI stays causal.
    stitch_gap: int = option(10, ge=0, le=300,
                             help="batch runs: link a track that ends to one born at most this many frames later "
                                  "when they look like one person, and fill the gap; results come out this many "
                                  "frames (+1) later; 0: off")
    stitch_max_dist: float = option(1.0, ge=0.0, le=10.0,
                                    help="stitching: largest distance of the new box from the old track's path, in sizes")
    stitch_growth: float = option(0.05, ge=0.0, le=1.0,
                                  help="stitching: the largest distance grows by this fraction per frame of gap")
    stitch_max_scale: float = option(1.5, ge=1.0, le=10.0, help="stitching: largest ratio of the two box sizes")
    stitch_max_shape: float = option(0.06, gt=0.0, le=1.0,
                                     help="stitching: largest mean difference of limb lengths over their sum")
    stitch_max_colour: float = option(0.5, gt=0.0, le=1.0,
                                      help="stitching: largest Bhattacharyya distance of the torso colour histograms")
    fill_gap: int = option(10, ge=0, le=300,
                           help="batch runs: interpolate boxes and joints (seen 0) in gaps of at most this many frames "
                                "(and stitch_gap) closed by a measurement, in place of predicted (lost) boxes; 0: off")
    camera_motion: Literal["auto", "on", "off"] = option(
        "auto", help="camera-motion compensation (trackers.camera_motion): the global motion between frames "
                     "moves the track predictions; auto: measured while the camera is seen to move")
    # Box filter.
    box_meas_std: float = option(0.05, gt=0.0, le=10.0, help="box centre and side measurement std")
    box_accel_std: float = option(0.01, gt=0.0, le=10.0, help="box process noise: velocity change per frame")
    box_init_vel_std: float = option(0.05, ge=0.0, le=10.0, help="unknown velocity of a new box, per frame")

    def __post_init__(self) -> None:
        if self.low_score > self.high_score:
            raise ConfigError(f"low_score: must be <= high_score ({self.high_score}), got {self.low_score}")


@dataclass
class JointStep:
    """The joint filters' part of one :meth:`Tracker.update`, kept for smoothing with later frames.

    prior_ids int64[T0], prior: every held track's joints predicted to this frame before its
    measurements, with a step of ``dt`` frames and the factors damping float64[T0, K] on their
    velocities; ids int64[T1], post: the estimates after the update (tracks removed and born included).
    """

    prior_ids: np.ndarray
    prior: CVState
    dt: int
    damping: np.ndarray
    ids: np.ndarray
    post: CVState


@dataclass
class _Frame:
    """One frame's usable poses, cleaned.

    boxes float64[D, 4]; scores float64[D]; kpts float64[D, K, 3]; seen bool[D, K].
    """

    boxes: np.ndarray
    scores: np.ndarray
    kpts: np.ndarray
    seen: np.ndarray
    skeleton: str


def _clean(poses: Poses, low_score: float, width: int | None = None, edge_sliver: float = 0.0) -> _Frame:
    """Finite, bounded copies of the poses scoring at least ``low_score``; boxes ordered x1 <= x2, y1 <= y2.
    With the frame's ``width``, boxes touching its left or right edge narrower than ``edge_sliver`` x their
    height are left out too."""
    boxes = np.asarray(poses.boxes, np.float64).reshape(-1, 4)
    scores = np.asarray(poses.scores, np.float64).reshape(-1)
    kpts = np.asarray(poses.keypoints, np.float64)
    ok = np.isfinite(boxes).all(1) & np.isfinite(scores) & (scores >= low_score)
    boxes = np.concatenate([np.minimum(boxes[:, :2], boxes[:, 2:]), np.maximum(boxes[:, :2], boxes[:, 2:])], 1)
    if width is not None and edge_sliver > 0:
        with np.errstate(invalid="ignore"):  # non-finite boxes are out already
            at_edge = (boxes[:, 0] <= EDGE_PX) | (boxes[:, 2] >= width - EDGE_PX)
            ok &= ~(at_edge & (boxes[:, 2] - boxes[:, 0] < edge_sliver * (boxes[:, 3] - boxes[:, 1])))
    boxes = np.clip(boxes[ok], -COORD_LIMIT, COORD_LIMIT)
    kpts = kpts[ok].copy()
    seen = np.asarray(poses.seen, bool)[ok]
    finite = np.isfinite(kpts).all(-1)
    kpts[~finite] = 0.0
    kpts[..., :2] = np.clip(kpts[..., :2], -COORD_LIMIT, COORD_LIMIT)
    kpts[..., 2] = np.clip(kpts[..., 2], 0.0, 1.0)
    return _Frame(boxes, scores[ok], kpts, seen & finite, poses.skeleton)


def _joint_sigmas(skeleton: str, num_joints: int) -> np.ndarray:
    """float64[K] OKS sigmas of the skeleton; COCO's mean sigma for every joint if it is unknown or has another K."""
    try:
        sk = get_skeleton(skeleton)
    except ValueError:
        sk = None
    if sk is not None and sk.num_joints == num_joints:
        return sk.sigmas_array.astype(np.float64)
    return np.full(num_joints, float(COCO17.sigmas_array.mean()))


class Tracker:
    """Assigns stable IDs to people across frames and smooths their keypoints; see the module docstring.

    Build with keyword options named as in :class:`TrackerConfig` (``Tracker(max_lost=60)``), with a
    config (``Tracker(cfg)``) or with :meth:`from_config`. Invalid values raise ``ConfigError``.
    """

    def __init__(self, config: TrackerConfig | None = None, **options: Any) -> None:
        base = to_dict(config if config is not None else TrackerConfig())
        self.config: TrackerConfig = from_dict(TrackerConfig, {**base, **options})
        self.last_step: JointStep | None = None  # of the last update(..., keep_step=True)
        self.reset()

    @classmethod
    def from_config(cls, cfg: TrackerConfig | dict[str, Any] | None) -> "Tracker":
        """A tracker from a :class:`TrackerConfig` or a mapping of its keys (missing keys keep their defaults)."""
        if cfg is None or isinstance(cfg, TrackerConfig):
            return cls(cfg)
        return cls(from_dict(TrackerConfig, cfg))

    def reset(self) -> None:
        """Forget every track and start numbering again at 1 (for a new video)."""
        self._next_id = 1
        self._frame_count = 0
        self._last_frame: int | None = None
        self._clear_tracks(0, "coco17")

    @property
    def num_tracks(self) -> int:
        """Tracks held (tentative, confirmed and lost)."""
        return len(self._ids)

    def _clear_tracks(self, num_joints: int, skeleton: str) -> None:
        c = self.config
        self._k = num_joints
        self._skeleton = skeleton
        self._sigmas = _joint_sigmas(skeleton, num_joints)
        joint_scale = np.sqrt(self._sigmas / max(float(self._sigmas.mean()), 1e-9)) if num_joints else self._sigmas
        self._kp = KeypointKalman(joint_scale, c.kp_meas_std, c.kp_accel_std, c.kp_init_vel_std,
                                  c.kp_min_conf, c.velocity_damping)
        self._box = BoxKalman(c.box_meas_std, c.box_accel_std, c.box_init_vel_std)
        self._ids = np.zeros(0, np.int64)
        self._state = np.zeros(0, np.int8)
        self._hits = np.zeros(0, np.int64)
        self._age = np.zeros(0, np.int64)
        self._tsu = np.zeros(0, np.int64)  # frames since the last match
        self._score = np.zeros(0, np.float64)
        self._conf = np.zeros((0, num_joints), np.float64)  # last measured joint confidences
        self._seen = np.zeros((0, num_joints), bool)  # joints reported seen at the last match
        self._joint_tsu = np.zeros((0, num_joints), np.int64)  # frames since each joint was seen
        self._anchor = np.zeros((0, 4))  # box centre and its velocity at the last match: cx cy vx vy

    # ------------------------------------------------------------------ main step

    def update(self, poses: Poses, frame_index: int, keep_step: bool = False,
               warp: np.ndarray | None = None, width: int | None = None) -> list[Track]:
        """Feed one frame's poses; return this frame's tracks, sorted by ID. ``keep_step``: also keep the
        joint filters' part of this update in ``last_step``, for a smoother (trackers.smoother).
        ``warp`` float[2, 3]: the camera's motion since the previous frame (an affine map of pixels,
        trackers.camera_motion), applied to every track's prediction before matching. ``width``: the
        frame's width in pixels, for ``edge_sliver`` (None: no pose is left out for it).

        Returned:

        * every CONFIRMED track matched in this frame (``time_since_update == 0``) — including a track
          confirmed by this very match. ``box`` and ``keypoints[:, :2]`` are the filters' corrected
          estimates (for a new track, exactly the detection); ``keypoints[:, 2]`` and ``score`` are the
          detection's. ``seen[j]`` is the detection's ``seen[j]`` and ``confidence[j] >= kp_seen_conf``.
          Every joint, seen or not, is reported at the filter's estimate: the prediction corrected by
          the measurement with a weight that falls with the measurement's confidence, and not at all
          below ``kp_min_conf`` (an occluded joint is then the pure constant-velocity prediction).
        * every LOST track with ``1 <= time_since_update <= report_lost``, at its predicted box and pose,
          all ``seen`` False, with score and confidences multiplied by ``lost_score_decay`` per frame
          since the last match.

        Tentative tracks are never returned. In the first ``min_hits`` frames after a reset every
        unmatched pose scoring at least ``low_score`` starts a track that is confirmed at once, so a
        single still image returns every person given to it, exactly as detected; later only poses
        scoring ``new_track_score`` start (tentative) tracks. ``frame_index`` sets the time step: a jump
        of n frames predicts n frames ahead; a repeated or smaller index counts as one frame. Poses of
        another skeleton or number of joints than the previous frame's start the track table afresh
        (IDs keep counting). Non-finite values are ignored, coordinates are
        clipped to +-1e6 px; the tracker never raises on finite input.
        """
        c = self.config
        det = _clean(poses, c.low_score, width, c.edge_sliver)
        num_joints = det.kpts.shape[1]
        if num_joints != self._k or det.skeleton != self._skeleton:
            self._clear_tracks(num_joints, det.skeleton)

        dt = 1
        if self._last_frame is not None and int(frame_index) > self._last_frame:
            dt = min(int(frame_index) - self._last_frame, c.max_lost + 1)
        self._last_frame = int(frame_index)
        self._frame_count += 1

        self._predict(dt)
        if warp is not None:
            self._warp(np.asarray(warp, np.float64))
        if keep_step:
            prior = (self._ids.copy(), self._kp.cv.snapshot(), self._kp.last_damping.copy())
        pairs, free_dets = self._associate(det)
        self._correct(pairs, det)
        self._age_out()
        self._birth(det, free_dets)
        self.last_step = JointStep(prior[0], prior[1], dt, prior[2], self._ids.copy(),
                                   self._kp.cv.snapshot()) if keep_step else None
        return self._report()

    # ------------------------------------------------------------------ steps

    def _predict(self, dt: int) -> None:
        c = self.config
        lost = self._tsu > 0
        self._box.predict(dt, np.where(lost, c.velocity_damping ** dt, 1.0),
                          np.where(lost, c.lost_size_damping ** dt, 1.0))
        self._kp.predict(dt, self._box.sizes())
        self._age += dt
        self._tsu += dt
        self._joint_tsu = np.minimum(self._joint_tsu + dt, _NEVER)

    def _warp(self, m: np.ndarray) -> None:
        """Move every track's predicted box, joints, velocities and anchor by the camera's affine map
        ``m`` float[2, 3] (positions get all of it, velocities its linear part, sizes its scale)."""
        if self.num_tracks == 0 or m.shape != (2, 3) or not np.isfinite(m).all():
            return
        a, t = m[:, :2], m[:, 2]
        scale = float(np.sqrt(abs(np.linalg.det(a))))
        box = self._box.cv
        box.pos[:, 0] = box.pos[:, 0] @ a.T + t
        box.vel[:, 0] = box.vel[:, 0] @ a.T
        box.pos[:, 1] *= scale
        box.vel[:, 1] *= scale
        kp = self._kp.cv
        if kp.num_parts:
            kp.pos[:] = kp.pos @ a.T + t
            kp.vel[:] = kp.vel @ a.T
        self._anchor[:, :2] = self._anchor[:, :2] @ a.T + t
        self._anchor[:, 2:] = self._anchor[:, 2:] @ a.T

    def _associate(self, det: _Frame) -> tuple[np.ndarray, np.ndarray]:
        """Match tracks to poses; returns (pairs int[P, 2] of (track row, pose index), bool[M] poses left free)."""
        c = self.config
        n, m = self.num_tracks, len(det.boxes)
        high = det.scores >= c.high_score
        if n == 0 or m == 0:
            return np.zeros((0, 2), np.intp), np.ones(m, bool)

        boxes = self._box.boxes()
        sizes = box_size(boxes)
        iou = box_iou(boxes, det.boxes)
        dist = centre_distance(boxes, det.boxes, sizes)
        known = self._joint_tsu <= max(c.max_lost, 1)
        det_kpts = det.kpts.copy()
        det_kpts[..., 2] = np.where(det.seen, det_kpts[..., 2], 0.0)  # only seen joints count for OKS
        # OKS only where boxes touch or centres are within a person size: elsewhere it is ~0 anyway.
        oks, defined = pose_oks(self._kp.pos, known, det_kpts, sizes ** 2, self._sigmas, c.kp_seen_conf,
                                c.oks_min_joints, candidates=(iou > 0) | (dist <= 1.0))
        sim = pose_similarity(iou, oks, defined, c.iou_weight)
        cost = 1.0 - sim

        # State is still last frame's: CONFIRMED means matched last frame, LOST means missed.
        state = self._state
        track_free = np.ones(n, bool)
        det_free = np.ones(m, bool)
        pairs: list[np.ndarray] = []

        def stage(rows_mask: np.ndarray, cols_mask: np.ndarray, stage_cost: np.ndarray, allowed: np.ndarray) -> None:
            rows = np.flatnonzero(rows_mask & track_free)
            cols = np.flatnonzero(cols_mask & det_free)
            if len(rows) == 0 or len(cols) == 0:
                return
            sub = np.ix_(rows, cols)
            mt = assign(stage_cost[sub], allowed[sub])
            if len(mt.pairs):
                p = np.stack([rows[mt.pairs[:, 0]], cols[mt.pairs[:, 1]]], 1)
                track_free[p[:, 0]] = False
                det_free[p[:, 1]] = False
                pairs.append(p)

        active = (state == _CONFIRMED) | (state == _LOST)
        stage(active, high, cost, sim >= c.match_min_sim)
        stage(state == _CONFIRMED, ~high, cost, sim >= c.low_match_min_sim)
        if (active & track_free).any() and (high & det_free).any():
            # The person is somewhere between the damped prediction (stopped) and where the last
            # velocity would have taken them (walked on): measure the distance to that path.
            centres = (boxes[:, :2] + boxes[:, 2:]) / 2
            walked_on = self._anchor[:, :2] + self._anchor[:, 2:] * self._tsu[:, None]
            gap = segment_distance(centres, walked_on, (det.boxes[:, :2] + det.boxes[:, 2:]) / 2, sizes)
            ratio = box_size(det.boxes)[None, :] / sizes[:, None]
            reach = c.reid_max_dist * (1.0 + c.reid_growth * np.maximum(self._tsu - 1, 0))[:, None]
            near = (gap <= reach) & (ratio <= c.reid_max_scale) & (ratio >= 1.0 / c.reid_max_scale)
            stage(active, high, gap, near)
        stage(state == _TENTATIVE, high, cost, sim >= c.match_min_sim)

        all_pairs = np.concatenate(pairs) if pairs else np.zeros((0, 2), np.intp)
        return all_pairs.astype(np.intp), det_free

    def _correct(self, pairs: np.ndarray, det: _Frame) -> None:
        c = self.config
        matched = np.zeros(self.num_tracks, bool)
        if len(pairs):
            rows, cols = pairs[:, 0], pairs[:, 1]
            matched[rows] = True
            self._box.update(rows, det.boxes[cols])
            self._anchor[rows] = self._box.state()[rows][:, [0, 1, 4, 5]]
            self._kp.update(rows, det.kpts[cols], box_size(det.boxes[cols]))
            self._hits[rows] += 1
            self._tsu[rows] = 0
            self._score[rows] = det.scores[cols]
            self._conf[rows] = det.kpts[cols, :, 2]
            seen = det.seen[cols] & (det.kpts[cols, :, 2] >= c.kp_seen_conf)
            self._seen[rows] = seen
            self._joint_tsu[rows] = np.where(seen, 0, self._joint_tsu[rows])
        warmup = self._frame_count <= c.min_hits
        promote = matched & ((self._state != _TENTATIVE) | (self._hits >= c.min_hits) | warmup)
        self._state[promote] = _CONFIRMED
        self._state[~matched & (self._state == _CONFIRMED)] = _LOST

    def _age_out(self) -> None:
        c = self.config
        keep = ~((self._state == _TENTATIVE) & (self._tsu > 0)) & ~((self._state == _LOST) & (self._tsu > c.max_lost))
        if not keep.all():
            self._keep(keep)

    def _not_duplicates(self, det: _Frame, free: np.ndarray, new: np.ndarray) -> np.ndarray:
        """The poses of ``new`` that repeat no pose already matched, nor a higher-scoring one of ``new``."""
        c = self.config
        if c.birth_dup_joints <= 0 or len(new) == 0:
            return new
        keep = list(np.flatnonzero(~free))
        out = []
        for i in new[np.argsort(-det.scores[new], kind="stable")]:
            ref = np.asarray(keep, np.int64)
            if not same_person(det.kpts[i:i + 1], det.boxes[i:i + 1], det.kpts[ref], det.boxes[ref], self._sigmas,
                               c.kp_seen_conf, c.birth_dup_joints)[0]:
                keep.append(i)
                out.append(i)
        return np.sort(np.asarray(out, np.int64))

    def _birth(self, det: _Frame, free: np.ndarray) -> None:
        c = self.config
        warmup = self._frame_count <= c.min_hits
        # While warming up every usable pose counts (a still image keeps all its people); later only
        # confident ones, so that flickering false detections do not start tracks.
        new = np.flatnonzero(free & (det.scores >= (c.low_score if warmup else c.new_track_score)))
        if not warmup:  # a still image keeps every pose as detected
            new = self._not_duplicates(det, free, new)
        if len(new):
            n = len(new)
            self._box.add(det.boxes[new])
            self._kp.add(det.kpts[new], box_size(det.boxes[new]))
            self._ids = np.concatenate([self._ids, np.arange(self._next_id, self._next_id + n)])
            self._next_id += n
            state = _CONFIRMED if (c.min_hits <= 1 or warmup) else _TENTATIVE
            self._state = np.concatenate([self._state, np.full(n, state, np.int8)])
            self._hits = np.concatenate([self._hits, np.ones(n, np.int64)])
            self._age = np.concatenate([self._age, np.zeros(n, np.int64)])
            self._tsu = np.concatenate([self._tsu, np.zeros(n, np.int64)])
            self._score = np.concatenate([self._score, det.scores[new]])
            self._conf = np.concatenate([self._conf, det.kpts[new, :, 2]])
            seen = det.seen[new] & (det.kpts[new, :, 2] >= c.kp_seen_conf)
            self._seen = np.concatenate([self._seen, seen])
            self._joint_tsu = np.concatenate([self._joint_tsu, np.where(seen, 0, _NEVER)])
            centres = (det.boxes[new, :2] + det.boxes[new, 2:]) / 2
            self._anchor = np.concatenate([self._anchor, np.concatenate([centres, np.zeros_like(centres)], 1)])
        excess = self.num_tracks - c.max_tracks
        if excess > 0:
            # Drop the tracks unmatched for longest; among equals, the newest.
            order = np.lexsort((-self._ids, -self._tsu))
            keep = np.ones(self.num_tracks, bool)
            keep[order[:excess]] = False
            self._keep(keep)

    def _keep(self, keep: np.ndarray) -> None:
        self._box.keep(keep)
        self._kp.keep(keep)
        for name in ("_ids", "_state", "_hits", "_age", "_tsu", "_score", "_conf", "_seen", "_joint_tsu",
                     "_anchor"):
            setattr(self, name, getattr(self, name)[keep])

    def _report(self) -> list[Track]:
        c = self.config
        live = (self._state == _CONFIRMED) & (self._tsu == 0)
        lost = (self._state == _LOST) & (self._tsu >= 1) & (self._tsu <= c.report_lost)
        rows = np.flatnonzero(live | lost)
        if len(rows) == 0:
            return []
        decay = np.where(lost[rows], c.lost_score_decay ** np.minimum(self._tsu[rows], 1000).astype(np.float64), 1.0)
        conf = self._conf[rows] * decay[:, None]
        kpts = np.concatenate([self._kp.pos[rows], conf[..., None]], -1).astype(np.float32)
        seen = self._seen[rows] & live[rows][:, None]
        boxes = self._box.boxes()[rows].astype(np.float32)
        scores = self._score[rows] * decay
        out = []
        for i, r in enumerate(rows):
            out.append(Track(
                track_id=int(self._ids[r]),
                state=TrackState.CONFIRMED if live[r] else TrackState.LOST,
                box=boxes[i],
                score=float(scores[i]),
                keypoints=kpts[i],
                seen=seen[i],
                age=int(self._age[r]),
                hits=int(self._hits[r]),
                time_since_update=int(self._tsu[r]),
            ))
        return out

