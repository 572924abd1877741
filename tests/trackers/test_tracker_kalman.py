"""Box and keypoint Kalman filters: agreement with filterpy, confidence weighting, prediction through gaps."""

from __future__ import annotations

import numpy as np
import pytest
from filterpy.common import Q_discrete_white_noise
from filterpy.kalman import KalmanFilter

from posecore.types import Poses
from tests.trackers.tracker_scenes import frame, person
from trackers import Tracker
from trackers.kalman import BoxKalman, KeypointKalman, box_to_z, z_to_box


def _kp_filter(damping: float = 1.0, min_conf: float = 0.05) -> KeypointKalman:
    return KeypointKalman(np.array([1.0]), meas_std=0.02, accel_std=0.004, init_vel_std=0.05,
                          min_conf=min_conf, damping=damping)


def test_batched_joint_filter_matches_filterpy_for_one_joint():
    rng = np.random.default_rng(3)
    size = 120.0
    ours = _kp_filter(damping=0.9)
    z0 = np.array([[[50.0, 80.0, 0.8]]])
    ours.add(z0, np.array([size]))

    # filterpy reference for the x axis: same initial state, covariance, noise and transition.
    ref = KalmanFilter(dim_x=2, dim_z=1)
    ref.x = np.array([[50.0], [0.0]])
    ref.P = np.diag([ours.cv.p_pp[0, 0], ours.cv.p_vv[0, 0]])
    ref.H = np.array([[1.0, 0.0]])
    q_var = (0.004 * size) ** 2
    measured = True
    for step in range(60):
        dt = 1 if step % 7 else 2
        # A joint not measured last step has its velocity damped before the move: F = F_cv @ diag(1, d).
        d = 1.0 if measured else 0.9 ** dt
        f = np.array([[1.0, dt], [0.0, 1.0]]) @ np.diag([1.0, d])
        ref.predict(F=f, Q=Q_discrete_white_noise(dim=2, dt=float(dt), var=q_var))
        ours.predict(dt, np.array([size]))
        conf = float(rng.choice([0.0, 0.02, 0.3, 0.6, 1.0]))
        zx, zy = 50.0 + 3.0 * step + rng.normal(0, 4), 80.0 + rng.normal(0, 4)
        measured = conf >= 0.05
        if measured:
            r = (0.02 * size) ** 2 / conf
            ref.update(np.array([[zx]]), R=r)
        ours.update(np.array([0]), np.array([[[zx, zy, conf]]]), np.array([size]))
        np.testing.assert_allclose(ours.pos[0, 0, 0], ref.x[0, 0], rtol=1e-10, atol=1e-8)
        np.testing.assert_allclose(ours.cv.vel[0, 0, 0], ref.x[1, 0], rtol=1e-10, atol=1e-8)
        np.testing.assert_allclose([ours.cv.p_pp[0, 0], ours.cv.p_pv[0, 0], ours.cv.p_vv[0, 0]],
                                   [ref.P[0, 0], ref.P[0, 1], ref.P[1, 1]], rtol=1e-10)


def test_low_confidence_moves_estimate_less():
    finals = {}
    for conf in (0.95, 0.35, 0.1):
        kf = _kp_filter()
        kf.add(np.array([[[100.0, 100.0, 0.9]]]), np.array([100.0]))
        for _ in range(10):  # settle at rest
            kf.predict(1, np.array([100.0]))
            kf.update(np.array([0]), np.array([[[100.0, 100.0, 0.9]]]), np.array([100.0]))
        kf.predict(1, np.array([100.0]))
        kf.update(np.array([0]), np.array([[[120.0, 100.0, conf]]]), np.array([100.0]))
        finals[conf] = kf.pos[0, 0, 0] - 100.0
    assert 0.0 < finals[0.1] < finals[0.35] < finals[0.95] < 20.0


def test_joint_below_min_conf_is_not_measured():
    kf = _kp_filter()
    kf.add(np.array([[[10.0, 10.0, 1.0]]]), np.array([50.0]))
    kf.predict(1, np.array([50.0]))
    before = kf.pos.copy()
    kf.update(np.array([0]), np.array([[[500.0, 500.0, 0.01]]]), np.array([50.0]))
    np.testing.assert_array_equal(kf.pos, before)


def test_box_filter_roundtrip_and_constant_velocity():
    box = np.array([10.0, 20.0, 70.0, 170.0])
    np.testing.assert_allclose(z_to_box(box_to_z(box)), box)
    kf = BoxKalman(meas_std=0.05, accel_std=0.01, init_vel_std=0.05)
    kf.add(np.stack([box, box + 100]))
    np.testing.assert_allclose(kf.boxes(), [box, box + 100])
    for t in range(1, 40):
        kf.predict(1, np.ones(2))
        kf.update(np.array([1]), (box + [4.0 * t, 0, 4.0 * t, 0])[None])  # only row 1 is seen
    kf.predict(1, np.ones(2))
    np.testing.assert_allclose(kf.boxes()[1], box + [160.0, 0, 160.0, 0], atol=0.5)
    np.testing.assert_allclose(kf.boxes()[0], box, atol=1e-9)  # never measured: stays at rest


def test_box_filter_matches_plain_filterpy():
    rng = np.random.default_rng(4)
    box = np.array([10.0, 20.0, 70.0, 170.0])
    ours = BoxKalman(0.05, 0.01, 0.05)
    ours.add(box[None])
    ref = KalmanFilter(dim_x=8, dim_z=4)  # filterpy with its default general inverse
    ref.H = np.eye(4, 8)
    ref.x[:4, 0] = box_to_z(box)
    ref.P = ours.covariance(0)
    np.testing.assert_allclose(ref.P, np.eye(8) * (0.05 * np.sqrt(60.0 * 150.0)) ** 2)  # meas and init_vel std 0.05
    for t in range(30):
        d = 0.9 if t % 5 == 4 else 1.0
        dt = 2 if t % 7 == 6 else 1
        size = float(ours.sizes()[0])
        f = np.eye(8)
        f[:4, 4:] = np.eye(4) * dt
        q = Q_discrete_white_noise(dim=2, dt=float(dt), var=1.0, block_size=4, order_by_dim=False)
        dm = np.diag([1.0] * 4 + [d] * 4)
        ref.predict(F=f @ dm, Q=q * (0.01 * size) ** 2)
        ours.predict(dt, np.array([d]))
        z = box + rng.normal(0, 3, 4) + 2.0 * t
        zz = box_to_z(z)
        ref.update(zz, R=np.eye(4) * (0.05 * np.sqrt(zz[2] * zz[3])) ** 2)
        ours.update(np.array([0]), z[None])
        np.testing.assert_allclose(ours.state()[0], ref.x[:, 0], rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(ours.covariance(0), ref.P, rtol=1e-9, atol=1e-12)


def test_box_filter_damped_coasting_stays_bounded():
    kf = BoxKalman(0.05, 0.01, 0.05)
    kf.add(np.array([[0.0, 0.0, 50.0, 100.0]]))
    for t in range(1, 30):
        kf.predict(1, np.ones(1))
        kf.update(np.array([0]), np.array([[5.0 * t, 0.0, 50.0 + 5.0 * t, 100.0]]))
    start = kf.boxes()[0, 0]
    for _ in range(200):
        kf.predict(1, np.array([0.9]))
    travelled = kf.boxes()[0, 0] - start
    # Undamped it would travel 1000 px; damped it stops after about v / (1 - d) = 50 px.
    assert 30.0 < travelled < 60.0
    assert np.all(np.isfinite(kf.boxes()))


def test_shrinking_box_stops_at_zero_size():
    kf = BoxKalman(0.05, 0.01, 0.05)
    kf.add(np.array([[0.0, 0.0, 100.0, 100.0]]))
    for t in range(1, 15):
        kf.predict(1, np.ones(1))
        kf.update(np.array([0]), np.array([[3.0 * t, 3.0 * t, 100.0 - 3.0 * t, 100.0 - 3.0 * t]]))
    for _ in range(50):
        kf.predict(1, np.ones(1))
        z = kf.z()[0]
        assert z[2] >= 0.0 and z[3] >= 0.0


def _walk(tracker: Tracker, frames: int, speed: float, hide_joint: int | None = None, hide_from: int = 10**9):
    """A person walking right at ``speed`` px/frame; from ``hide_from`` on, ``hide_joint`` has confidence 0."""
    out = []
    for f in range(frames):
        box, kpts = person(100.0 + speed * f, 50.0, 200.0)
        truth = kpts.copy()
        if hide_joint is not None and f >= hide_from:
            kpts[hide_joint] = [0.0, 0.0, 0.0]  # a hidden joint: garbage position, no confidence
        (track,) = tracker.update(frame([(box, kpts)]), f)
        out.append((track, truth))
    return out


def test_occluded_joint_is_predicted_through_a_gap_and_flagged_unseen():
    speed, warm, gap, wrist = 4.0, 30, 6, 9
    for damping, tol in ((1.0, 0.05), (0.9, 0.35)):
        steps = _walk(Tracker(velocity_damping=damping), warm + gap, speed, hide_joint=wrist, hide_from=warm)
        track, truth = steps[-1]
        last_seen = steps[warm - 1][1][wrist, :2]
        frozen_err = np.linalg.norm(truth[wrist, :2] - last_seen)
        err = np.linalg.norm(track.keypoints[wrist, :2] - truth[wrist, :2])
        assert frozen_err == speed * gap
        assert err < tol * frozen_err, (damping, err)
        assert not track.seen[wrist] and track.seen[np.arange(17) != wrist].all()
        for t, _ in steps[warm:]:
            assert not t.seen[wrist]


def test_first_update_returns_the_measurement_itself():
    rng = np.random.default_rng(0)
    boxes = rng.uniform(0, 500, (5, 4)).astype(np.float32)
    boxes[:, 2:] = boxes[:, :2] + rng.uniform(10, 200, (5, 2)).astype(np.float32)
    kpts = rng.uniform(0, 600, (5, 17, 3)).astype(np.float32)
    kpts[..., 2] = rng.uniform(0, 1, (5, 17))
    scores = np.array([0.95, 0.7, 0.55, 0.3, 0.12])  # every score above low_score counts on a still image
    poses = Poses(boxes, scores, kpts)
    tracks = Tracker().update(poses, 0)
    assert len(tracks) == 5 and [t.score for t in tracks] == pytest.approx(scores)
    for i, t in enumerate(tracks):
        np.testing.assert_array_equal(t.keypoints, kpts[i])
        np.testing.assert_allclose(t.box, boxes[i], rtol=1e-6)
        np.testing.assert_array_equal(t.seen, kpts[i, :, 2] >= 0.3)


def test_smoothing_halves_jitter_and_follows_constant_velocity():
    rng = np.random.default_rng(7)
    size_px = 200.0 * np.sqrt(0.5)  # person() boxes are 0.5 h wide
    tracker = Tracker()
    raw, smooth, truth = [], [], []
    for f in range(150):
        box, kpts = person(100.0 + 3.0 * f, 60.0 + 20 * np.sin(f / 15), 200.0)
        truth.append(kpts[:, :2].copy())
        kpts[:, :2] += rng.normal(0, 0.02 * size_px, (17, 2))
        kpts[:, 2] = rng.uniform(0.5, 1.0, 17)
        (t,) = tracker.update(frame([(box, kpts)]), f)
        raw.append(kpts[:, :2])
        smooth.append(t.keypoints[:, :2])
    raw, smooth, truth = (np.array(a)[10:] for a in (raw, smooth, truth))

    def accel(x):
        return np.linalg.norm(x[2:] - 2 * x[1:-1] + x[:-2], axis=-1).mean() / size_px

    def err(x):
        return np.linalg.norm(x - truth, axis=-1).mean()

    print(f"\nmean acceleration smoothed/raw: {accel(smooth) / accel(raw):.2f}; "
          f"error smoothed/raw {err(smooth) / err(raw):.2f}")
    assert accel(smooth) <= 0.5 * accel(raw)
    assert err(smooth) < err(raw)  # smoother and closer to the truth, not lagging behind it


def test_sudden_start_is_followed_without_lasting_lag():
    tracker, x, lag = Tracker(), 100.0, []
    for f in range(50):
        speed = 0.0 if f < 20 else 8.0  # stands, then starts running
        x += speed
        box, kpts = person(x, 50.0, 200.0)
        (t,) = tracker.update(frame([(box, kpts)]), f)
        lag.append(np.abs(t.keypoints[:, 0] - kpts[:, 0]).mean())
    assert max(lag) < 8.0  # never more than one frame of motion behind
    assert max(lag[32:]) < 0.5  # and caught up within a dozen frames
