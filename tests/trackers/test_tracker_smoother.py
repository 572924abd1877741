"""Fixed-lag smoothing: the backward pass against filterpy's RTS smoother, and the smoother around the
tracker (order, what it may change, what it gains)."""

from __future__ import annotations

import numpy as np
import pytest
from filterpy.common import Q_discrete_white_noise
from filterpy.kalman import KalmanFilter

from tests.trackers.tracker_scenes import frame, person
from trackers import Tracker
from trackers.kalman import CVState
from trackers.smoother import FixedLagSmoother, rts_step


def _state(x: np.ndarray, p: np.ndarray) -> CVState:
    """A one-track, one-joint CVState from filterpy's x float[2, 1] and P float[2, 2] (both axes alike)."""
    pos = np.full((1, 1, 2), x[0, 0])
    vel = np.full((1, 1, 2), x[1, 0])
    return CVState(pos, vel, np.full((1, 1), p[0, 0]), np.full((1, 1), p[0, 1]), np.full((1, 1), p[1, 1]))


def test_backward_step_matches_filterpy_rts_smoother_with_damping_and_gaps():
    rng = np.random.default_rng(7)
    kf = KalmanFilter(dim_x=2, dim_z=1)
    kf.x = np.array([[0.0], [0.0]])
    kf.P = np.diag([4.0, 9.0])
    kf.H = np.array([[1.0, 0.0]])
    xs, ps, priors, fs, qs, steps = [kf.x.copy()], [kf.P.copy()], [None], [None], [None], [None]
    for k in range(1, 40):
        dt = 2 if k % 9 == 0 else 1
        d = 0.8 if k % 5 == 0 else 1.0  # the velocity damped before the step, as for an unmeasured joint
        f = np.array([[1.0, dt], [0.0, 1.0]]) @ np.diag([1.0, d])
        q = Q_discrete_white_noise(dim=2, dt=float(dt), var=0.3)
        kf.predict(F=f, Q=q)
        priors.append((kf.x.copy(), kf.P.copy()))
        kf.update(np.array([[2.0 * k + rng.normal(0, 2)]]), R=4.0)
        xs.append(kf.x.copy())
        ps.append(kf.P.copy())
        fs.append(f)
        qs.append(q)
        steps.append((dt, d))
    # filterpy's smoother takes F[k] and Q[k] as the step from k - 1 to k.
    ref, _, _, _ = kf.rts_smoother(np.array(xs), np.array(ps), np.array([np.eye(2)] + fs[1:]),
                                   np.array([np.zeros((2, 2))] + qs[1:]))
    x = np.full((1, 1, 2), xs[-1][0, 0])
    v = np.full((1, 1, 2), xs[-1][1, 0])
    for k in range(len(xs) - 1, 0, -1):
        dt, d = steps[k]
        x, v = rts_step(_state(xs[k - 1], ps[k - 1]), _state(*priors[k]), x, v, dt, np.array([[d]]))
        np.testing.assert_allclose(x[0, 0], ref[k - 1][0, 0], rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(v[0, 0], ref[k - 1][1, 0], rtol=1e-9, atol=1e-9)


def _walker_frames(n: int, seed: int = 0, people: int = 2):
    """People walking right with noisy joints; the second leaves after frame n // 2."""
    rng = np.random.default_rng(seed)
    out = []
    for f in range(n):
        ps = []
        for i in range(people if f <= n // 2 else 1):
            box, kpts = person(100.0 + 400.0 * i + 3.0 * f, 50.0, 200.0)
            kpts[:, :2] += rng.normal(0, 2.0, (len(kpts), 2))
            ps.append((box, kpts))
        out.append(frame(ps))
    return out


def _run(lag: int, frames):
    tracker = Tracker(smoothing_lag=lag)
    smoother = FixedLagSmoother(lag)
    out = []
    for f, poses in enumerate(frames):
        causal = tracker.update(poses, f, keep_step=True)
        done = smoother.push((f, causal), causal, tracker.last_step)
        assert len(done) == (1 if f >= lag else 0)
        out += done
    out += smoother.flush()
    return out


def _jitter(results, track_id: int) -> float:
    pts = np.array([[t.keypoints[:, :2] for t in tracks if t.track_id == track_id][0]
                    for _, tracks in results if any(t.track_id == track_id for t in tracks)])
    return float(np.linalg.norm(pts[2:] - 2 * pts[1:-1] + pts[:-2], axis=-1).mean())


def test_smoothing_keeps_people_and_boxes_and_lowers_jitter():
    frames = _walker_frames(40)
    causal = _run(0, frames)
    for lag in (1, 3):
        smoothed = _run(lag, frames)
        assert [f for (f, _), _ in smoothed] == list(range(40))  # every frame, in order
        for ((_, before), after), (_, ref) in zip(smoothed, causal):
            assert [t.track_id for t in after] == [t.track_id for t in ref]
            for a, b in zip(after, before):
                np.testing.assert_array_equal(a.box, b.box)
                np.testing.assert_array_equal(a.keypoints[:, 2], b.keypoints[:, 2])
                np.testing.assert_array_equal(a.seen, b.seen)
        assert _jitter(smoothed, 1) < 0.7 * _jitter(causal, 1), lag
        # The person who leaves mid-window is smoothed up to their last frame, then reported as lost.
        assert _jitter(smoothed, 2) < _jitter(causal, 2)
    # Lag 0 hands every result through untouched.
    t = Tracker()
    s = FixedLagSmoother(0)
    tracks = t.update(frames[0], 0)
    assert t.last_step is None  # kept only when asked for
    assert s.push("x", tracks, None) == [("x", tracks)]


def test_last_frame_is_causal_and_reset_forgets_held_frames():
    frames = _walker_frames(6)
    tracker = Tracker()
    smoother = FixedLagSmoother(2)
    causal = []
    for f, poses in enumerate(frames):
        causal.append(tracker.update(poses, f, keep_step=True))
        smoother.push(f, causal[-1], tracker.last_step)
    final = smoother.flush()
    assert [f for f, _ in final] == [4, 5]
    # Nothing after the last frame: its estimate is the filter's own.
    np.testing.assert_array_equal(final[-1][1][0].keypoints, causal[-1][0].keypoints)
    assert not np.array_equal(final[0][1][0].keypoints, causal[4][0].keypoints)
    tracker.update(frames[0], 0, keep_step=True)
    smoother.push(0, [], tracker.last_step)
    smoother.reset()
    assert smoother.flush() == []
    with pytest.raises(ValueError, match="keep_step"):
        smoother.push(1, [], None)  # nothing to smooth with
