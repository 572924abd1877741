"""Property tests: any finite input, from no people to 100 with duplicates and degenerate boxes, is handled."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from posecore.types import Poses, TrackState
from trackers import Tracker
from trackers.association import assign, box_iou, pose_oks
from trackers.kalman import KeypointKalman

K = 17
finite = st.floats(-1e7, 1e7, allow_nan=False, allow_infinity=False, width=32)
unit = st.floats(0.0, 1.0, allow_nan=False, width=32)


@st.composite
def small_frames(draw) -> Poses:
    """Up to 4 people with every value drawn by hypothesis (extreme and degenerate values)."""
    n = draw(st.integers(0, 4))
    boxes = draw(hnp.arrays(np.float32, (n, 4), elements=finite))
    scores = draw(hnp.arrays(np.float32, (n,), elements=unit))
    xy = draw(hnp.arrays(np.float32, (n, K, 2), elements=finite))
    conf = draw(hnp.arrays(np.float32, (n, K, 1), elements=unit))
    return Poses(boxes, scores, np.concatenate([xy, conf], -1))


@st.composite
def crowd_frames(draw) -> Poses:
    """Up to 100 plausible people from a drawn seed, with drawn duplicates, empty boxes and blank joints."""
    n = draw(st.integers(0, 100))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    scale = draw(st.sampled_from([1.0, 100.0, 1e4]))
    xy = rng.uniform(0, 10 * scale, (n, 2))
    wh = rng.uniform(0, scale, (n, 2))
    wh[rng.random(n) < draw(st.sampled_from([0.0, 0.3, 1.0]))] = 0.0  # zero-size boxes
    boxes = np.concatenate([xy, xy + wh], 1)
    kpts = np.concatenate([xy[:, None] + rng.uniform(0, 1, (n, K, 2)) * wh[:, None], rng.uniform(0, 1, (n, K, 1))], -1)
    if draw(st.booleans()):
        kpts[..., 2] = 0.0  # no joint confident
    scores = rng.uniform(0, 1, n)
    dup = rng.random(n) < draw(st.sampled_from([0.0, 0.5]))
    if n and dup.any():  # exact copies of the first people
        src = np.arange(n)[dup] % max(1, n // 4)
        boxes[dup], kpts[dup], scores[dup] = boxes[src], kpts[src], scores[src]
    seen = rng.random((n, K)) < 0.9
    return Poses(boxes, scores, kpts, seen)


frames = st.one_of(small_frames(), crowd_frames())


def _check(tracks, num_joints: int, report_lost: int) -> None:
    ids = [t.track_id for t in tracks]
    assert len(set(ids)) == len(ids) and all(i >= 1 for i in ids)
    for t in tracks:
        assert np.all(np.isfinite(t.box)) and np.all(np.isfinite(t.keypoints)) and np.isfinite(t.score)
        assert t.keypoints.shape == (num_joints, 3) and t.seen.shape == (num_joints,) and t.seen.dtype == bool
        assert np.all((t.keypoints[:, 2] >= 0) & (t.keypoints[:, 2] <= 1))
        if t.state == TrackState.CONFIRMED:
            assert t.time_since_update == 0
        else:
            assert t.state == TrackState.LOST and 1 <= t.time_since_update <= report_lost and not t.seen.any()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(st.tuples(frames, st.integers(0, 3)), min_size=1, max_size=6), st.integers(1, 3))
def test_tracker_never_raises_or_returns_nan(sequence, min_hits):
    tracker = Tracker(min_hits=min_hits, max_lost=3, report_lost=2)
    index = 0
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        for poses, step in sequence:
            index += step  # repeated indices and jumps too
            _check(tracker.update(poses, index), K, 2)
    assert tracker.num_tracks <= tracker.config.max_tracks


@settings(max_examples=40, deadline=None)
@given(small_frames(), small_frames())
def test_association_matrices_are_bounded(tracks_poses, det_poses):
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        boxes_a = np.clip(tracks_poses.boxes.astype(np.float64), -1e6, 1e6)
        boxes_b = np.clip(det_poses.boxes.astype(np.float64), -1e6, 1e6)
        iou = box_iou(boxes_a, boxes_b)
        oks, defined = pose_oks(np.clip(tracks_poses.keypoints[..., :2], -1e6, 1e6).astype(np.float64),
                                np.ones((len(tracks_poses), K), bool),
                                np.clip(det_poses.keypoints, -1e6, 1e6).astype(np.float64),
                                np.full(len(tracks_poses), 100.0), np.full(K, 0.05), 0.3, 3)
    assert iou.shape == oks.shape == defined.shape == (len(tracks_poses), len(det_poses))
    assert np.all((iou >= 0) & (iou <= 1 + 1e-12)) and np.all((oks >= 0) & (oks <= 1 + 1e-12))
    m = assign(1.0 - iou, iou > 0.1)
    assert all(iou[r, c] > 0.1 for r, c in m.pairs)


@settings(max_examples=40, deadline=None)
@given(hnp.arrays(np.float64, (5, 8, K, 3), elements=st.floats(-1e6, 1e6)),
       hnp.arrays(np.float64, (5, 8, K), elements=st.floats(0, 1)),
       hnp.arrays(np.float64, (8,), elements=st.floats(1, 1e6)))
def test_keypoint_filter_stays_finite_with_positive_variance(meas, conf, sizes):
    kf = KeypointKalman(np.ones(K), 0.02, 0.004, 0.05, 0.05, 0.9)
    meas[..., 2] = conf
    kf.add(meas[0], sizes)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        for z in meas[1:]:
            kf.predict(1, sizes)
            kf.update(np.arange(0, 8, 2), z[::2], sizes[::2])
    for a in (kf.cv.pos, kf.cv.vel, kf.cv.p_pp, kf.cv.p_pv, kf.cv.p_vv):
        assert np.all(np.isfinite(a))
    assert np.all(kf.cv.p_pp > 0) and np.all(kf.cv.p_vv > 0)
    assert np.all(kf.cv.p_pp * kf.cv.p_vv - kf.cv.p_pv ** 2 > -1e-9 * kf.cv.p_pp * kf.cv.p_vv)  # positive semi-definite


def test_degenerate_frames_explicitly():
    tracker = Tracker()
    box = np.array([10.0, 10.0, 10.0, 10.0])  # zero size
    kpts = np.zeros((K, 3))  # every joint blank
    dup = (np.array([0.0, 0.0, 50.0, 120.0]), np.concatenate([np.full((K, 2), 25.0), np.ones((K, 1))], 1))
    sequence = [
        Poses.empty(),
        Poses(np.stack([box, dup[0], dup[0]]), [0.9, 0.9, 0.9], np.stack([kpts, dup[1], dup[1]])),
        Poses(np.stack([box, dup[0], dup[0]]), [0.9, 0.9, 0.9], np.stack([kpts, dup[1], dup[1]])),
        Poses.empty(),
        Poses(box[None], [0.9], kpts[None]),
    ]
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        for i, poses in enumerate(sequence):
            tracks = tracker.update(poses, i)
            _check(tracks, K, tracker.config.report_lost)
            if i in (1, 2):  # the exact duplicate is one person reported twice: it starts no track
                assert len([t for t in tracks if t.state == TrackState.CONFIRMED]) == 2
