"""Kalman filters for people's boxes and joints, batched over all tracks.

Both use a constant-velocity model with piecewise white acceleration noise (filterpy's
``Q_discrete_white_noise``), and both scale their noise by the person's size (``sqrt(w * h)`` of the
box, at least 1 px) so they behave the same at any image resolution or distance from the camera.

Every coordinate of both is an independent 2-state filter (position, velocity): the models are
block-diagonal and the measurement noise diagonal, so nothing couples x with y or one joint with
another. :class:`ConstantVelocity` runs those equations as NumPy array operations over all tracks at
once, with no per-track Python loop; tests check its numbers against filterpy's ``KalmanFilter`` (an
8-state box filter and a 2-state joint filter). On it:

* :class:`BoxKalman` filters ``(cx, cy)`` and ``(w, h)`` of each track, measurement std a fraction of
  the box size.
* :class:`KeypointKalman` filters every joint. The measurement variance of a joint is
  ``(meas_std * joint_scale * size)^2 / confidence``: a doubtful joint moves the estimate less, and a
  joint below ``min_conf`` is not measured at all, so it is predicted from its velocity instead of being
  frozen or dropped. (The tracker sets ``joint_scale`` to ``sqrt(sigma / mean sigma)`` of the skeleton's
  OKS sigmas: hips are located less precisely than eyes, though not in full proportion to their
  annotation spread.) While a joint (or a whole lost track) goes unmeasured its velocity is damped by
  ``damping`` per frame, so a long gap coasts to a stop instead of flying off.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from filterpy.common import Q_discrete_white_noise

MIN_SIZE = 1.0  # px; floor for the noise scale so zero-size boxes keep a finite, positive noise


def box_to_z(box: np.ndarray) -> np.ndarray:
    """float[..., 4] x1 y1 x2 y2 -> float64[..., 4] cx cy w h."""
    box = np.asarray(box, np.float64)
    wh = box[..., 2:] - box[..., :2]
    return np.concatenate([box[..., :2] + wh / 2, wh], axis=-1)


def z_to_box(z: np.ndarray) -> np.ndarray:
    """float[..., 4] cx cy w h -> float64[..., 4] x1 y1 x2 y2."""
    z = np.asarray(z, np.float64)
    half = z[..., 2:] / 2
    return np.concatenate([z[..., :2] - half, z[..., :2] + half], axis=-1)


def _z_size(z: np.ndarray) -> np.ndarray:
    """float64[...] sqrt(w * h), at least MIN_SIZE, of float[..., 4] cx cy w h."""
    return np.maximum(np.sqrt(np.maximum(z[..., 2], 0.0) * np.maximum(z[..., 3], 0.0)), MIN_SIZE)


def box_size(box: np.ndarray) -> np.ndarray:
    """float[..., 4] x1 y1 x2 y2 -> float64[...] sqrt(w * h), at least MIN_SIZE."""
    box = np.asarray(box, np.float64)
    w = np.maximum(box[..., 2] - box[..., 0], 0.0)
    h = np.maximum(box[..., 3] - box[..., 1], 0.0)
    return np.maximum(np.sqrt(w * h), MIN_SIZE)


@dataclass
class CVState:
    """Estimates of :class:`ConstantVelocity` rows at one instant: position and velocity float64[T, P, 2],
    covariance entries float64[T, P]."""

    pos: np.ndarray
    vel: np.ndarray
    p_pp: np.ndarray
    p_pv: np.ndarray
    p_vv: np.ndarray

    def rows(self, index: np.ndarray) -> "CVState":
        return CVState(self.pos[index], self.vel[index], self.p_pp[index], self.p_pv[index], self.p_vv[index])


class ConstantVelocity:
    """Constant-velocity filters for P parts (2-D points) of each of T tracks (rows are tracks).

    State: position float64[T, P, 2], velocity float64[T, P, 2] and a 2x2 covariance (``p_pp``, ``p_pv``,
    ``p_vv`` float64[T, P]) shared by x and y, since both axes always get the same noise.
    """

    def __init__(self, num_parts: int) -> None:
        self.num_parts = num_parts
        self.pos = np.zeros((0, num_parts, 2))
        self.vel = np.zeros((0, num_parts, 2))
        self.p_pp = np.zeros((0, num_parts))
        self.p_pv = np.zeros((0, num_parts))
        self.p_vv = np.zeros((0, num_parts))
        self._q: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.pos)

    def add(self, pos: np.ndarray, pos_var: np.ndarray, vel_var: np.ndarray) -> None:
        """Append rows at rest at float[N, P, 2] ``pos`` with variances float[N, P] of position and velocity."""
        n = len(pos)
        self.pos = np.concatenate([self.pos, np.asarray(pos, np.float64).reshape(n, self.num_parts, 2)])
        self.vel = np.concatenate([self.vel, np.zeros((n, self.num_parts, 2))])
        self.p_pp = np.concatenate([self.p_pp, np.broadcast_to(pos_var, (n, self.num_parts))])
        self.p_pv = np.concatenate([self.p_pv, np.zeros((n, self.num_parts))])
        self.p_vv = np.concatenate([self.p_vv, np.broadcast_to(vel_var, (n, self.num_parts))])

    def keep(self, mask: np.ndarray) -> None:
        """Keep only rows where bool[T] ``mask`` is True (order preserved)."""
        for name in ("pos", "vel", "p_pp", "p_pv", "p_vv"):
            setattr(self, name, getattr(self, name)[mask])

    def snapshot(self) -> "CVState":
        """A copy of the current estimates of every row."""
        return CVState(self.pos.copy(), self.vel.copy(), self.p_pp.copy(), self.p_pv.copy(), self.p_vv.copy())

    def predict(self, dt: int, accel_var: np.ndarray, damping: np.ndarray | None = None) -> None:
        """Advance all rows by ``dt`` frames.

        accel_var float[T] or float[T, P]: variance of the velocity change per frame; damping float[T, P]:
        factor on the velocity before the step (a linear map of the state, so P <- D P D).
        """
        if damping is not None:
            self.vel *= damping[..., None]
            self.p_pv *= damping
            self.p_vv *= damping * damping
        if dt not in self._q:
            self._q[dt] = Q_discrete_white_noise(dim=2, dt=float(dt), var=1.0)
        q = self._q[dt]
        var = np.asarray(accel_var, np.float64)
        var = var[:, None] if var.ndim == 1 else var
        self.pos += dt * self.vel
        self.p_pp += 2 * dt * self.p_pv + dt * dt * self.p_vv + q[0, 0] * var
        self.p_pv += dt * self.p_vv + q[0, 1] * var
        self.p_vv += q[1, 1] * var

    def update(self, rows: np.ndarray, z: np.ndarray, r: np.ndarray, use: np.ndarray | None = None) -> None:
        """Correct rows int[M] with measured positions float[M, P, 2] of variance float[M, P]; parts where
        bool[M, P] ``use`` is False keep their prediction."""
        pp, pv, vv = self.p_pp[rows], self.p_pv[rows], self.p_vv[rows]
        s = pp + r
        k0, k1 = pp / s, pv / s
        if use is not None:
            k0, k1 = np.where(use, k0, 0.0), np.where(use, k1, 0.0)
        innov = z - self.pos[rows]
        self.pos[rows] += k0[..., None] * innov
        self.vel[rows] += k1[..., None] * innov
        # Joseph form, as filterpy does: (I - KH) P (I - KH)' + K R K'.
        a = 1.0 - k0
        self.p_pp[rows] = a * a * pp + k0 * k0 * r
        self.p_pv[rows] = a * (pv - k1 * pp) + k0 * k1 * r
        self.p_vv[rows] = k1 * k1 * pp - 2 * k1 * pv + vv + k1 * k1 * r


class BoxKalman:
    """Constant-velocity box filters of T tracks (rows) over (cx, cy, w, h) and their velocities.

    Standard deviations are fractions of the box size: ``meas_std`` of a measured coordinate,
    ``accel_std`` of the change of velocity per frame, ``init_vel_std`` of the unknown velocity at birth.
    """

    def __init__(self, meas_std: float, accel_std: float, init_vel_std: float) -> None:
        self.meas_std = meas_std
        self.accel_std = accel_std
        self.init_vel_std = init_vel_std
        self.cv = ConstantVelocity(2)  # part 0: centre (cx, cy); part 1: size (w, h)

    def __len__(self) -> int:
        return len(self.cv)

    def add(self, boxes: np.ndarray) -> None:
        """Start filters at boxes float[N, 4] (x1 y1 x2 y2), at rest."""
        zs = box_to_z(np.asarray(boxes, np.float64).reshape(-1, 4))
        sizes = _z_size(zs)[:, None]
        self.cv.add(zs.reshape(-1, 2, 2), (self.meas_std * sizes) ** 2, (self.init_vel_std * sizes) ** 2)

    def keep(self, mask: np.ndarray) -> None:
        """Keep only rows where bool[T] ``mask`` is True (order preserved)."""
        self.cv.keep(mask)

    def state(self) -> np.ndarray:
        """float64[T, 8] current cx cy w h and their velocities (per frame) of every row."""
        n = len(self.cv)
        return np.concatenate([self.cv.pos.reshape(n, 4), self.cv.vel.reshape(n, 4)], 1)

    def covariance(self, row: int) -> np.ndarray:
        """float64[8, 8] state covariance of one row, in the order of :meth:`state` (as filterpy holds it)."""
        p = np.zeros((8, 8))
        for part in range(2):
            for axis in range(2):
                i, j = 2 * part + axis, 4 + 2 * part + axis
                p[i, i], p[i, j], p[j, i] = self.cv.p_pp[row, part], self.cv.p_pv[row, part], self.cv.p_pv[row, part]
                p[j, j] = self.cv.p_vv[row, part]
        return p

    def z(self) -> np.ndarray:
        """float64[T, 4] current cx cy w h of every row."""
        return self.cv.pos.reshape(-1, 4)

    def boxes(self) -> np.ndarray:
        """float64[T, 4] current x1 y1 x2 y2 of every row."""
        return z_to_box(self.z())

    def sizes(self) -> np.ndarray:
        """float64[T] current size sqrt(w * h) of every row, at least MIN_SIZE."""
        return _z_size(self.z())

    def predict(self, dt: int, damping: np.ndarray, size_damping: np.ndarray | None = None) -> None:
        """Advance every row by ``dt`` frames.

        damping float[T]: factor on each row's velocity before the step (1 = none); size_damping
        float[T]: the factor for the velocity of width and height instead (default: ``damping``).
        """
        damping = np.asarray(damping, np.float64)
        size_damping = damping if size_damping is None else np.asarray(size_damping, np.float64)
        self.cv.predict(dt, (self.accel_std * self.sizes()) ** 2, np.stack([damping, size_damping], 1))
        # A shrinking box must not turn inside out: stop a side at zero.
        size, rate = self.cv.pos[:, 1], self.cv.vel[:, 1]
        shrunk = size < 0.0
        if shrunk.any():
            rate[shrunk] = np.maximum(rate[shrunk], 0.0)
            size[shrunk] = 0.0

    def update(self, rows: np.ndarray, boxes: np.ndarray) -> None:
        """Correct rows int[M] with measured boxes float[M, 4]."""
        rows = np.asarray(rows, np.intp)
        zs = box_to_z(np.asarray(boxes, np.float64).reshape(-1, 4))
        r = (self.meas_std * _z_size(zs)) ** 2
        self.cv.update(rows, zs.reshape(-1, 2, 2), np.repeat(r[:, None], 2, 1))


class KeypointKalman:
    """Constant-velocity filters for K joints of each of T tracks (rows are tracks); the state is in
    ``cv`` (:class:`ConstantVelocity` with one part per joint). ``joint_scale`` float[K] multiplies the
    measurement noise per joint (e.g. from OKS sigmas: hips are located less precisely than eyes).
    """

    def __init__(self, joint_scale: np.ndarray, meas_std: float, accel_std: float, init_vel_std: float,
                 min_conf: float, damping: float) -> None:
        self.joint_scale = np.asarray(joint_scale, np.float64).reshape(-1)
        self.meas_std = meas_std
        self.accel_std = accel_std
        self.init_vel_std = init_vel_std
        self.min_conf = min_conf
        self.damping = damping
        self.cv = ConstantVelocity(len(self.joint_scale))
        self.measured = np.zeros((0, self.num_joints), bool)  # measured in the last update; the rest get damped
        self.last_damping = np.ones((0, self.num_joints))  # factor on each row's velocity in the last predict

    def __len__(self) -> int:
        return len(self.cv)

    @property
    def num_joints(self) -> int:
        return len(self.joint_scale)

    @property
    def pos(self) -> np.ndarray:
        """float64[T, K, 2] current joint positions."""
        return self.cv.pos

    def meas_var(self, conf: np.ndarray, size: np.ndarray) -> np.ndarray:
        """float64[N, K] measurement variance for confidences float[N, K] of people of size float[N]."""
        base = (self.meas_std * self.joint_scale[None, :] * np.asarray(size, np.float64)[:, None]) ** 2
        return base / np.maximum(conf, self.min_conf)

    def add(self, kpts: np.ndarray, size: np.ndarray) -> None:
        """Start filters at keypoints float[N, K, 3] (x, y, conf) of people of size float[N].

        The state starts at the measurement itself, so a new track reports exactly what was detected.
        """
        kpts = np.asarray(kpts, np.float64)
        size = np.asarray(size, np.float64)
        self.cv.add(kpts[..., :2], self.meas_var(kpts[..., 2], size), ((self.init_vel_std * size) ** 2)[:, None])
        self.measured = np.concatenate([self.measured, kpts[..., 2] >= self.min_conf])

    def keep(self, mask: np.ndarray) -> None:
        """Keep only rows where bool[T] ``mask`` is True (order preserved)."""
        self.cv.keep(mask)
        self.measured = self.measured[mask]

    def predict(self, dt: int, size: np.ndarray) -> None:
        """Advance all rows by ``dt`` frames; ``size`` float[T] scales the process noise per track."""
        damping = np.where(self.measured, 1.0, self.damping ** dt) if self.damping != 1.0 else None
        self.cv.predict(dt, (self.accel_std * np.asarray(size, np.float64)) ** 2, damping)
        self.measured[:] = False
        self.last_damping = np.ones(self.cv.p_pp.shape) if damping is None else damping

    def update(self, rows: np.ndarray, kpts: np.ndarray, size: np.ndarray) -> None:
        """Correct rows int[M] with keypoints float[M, K, 3] of detections of size float[M].

        Joints with confidence below ``min_conf`` are left at their prediction.
        """
        rows = np.asarray(rows, np.intp)
        if len(rows) == 0:
            return
        kpts = np.asarray(kpts, np.float64)
        use = kpts[..., 2] >= self.min_conf
        self.cv.update(rows, kpts[..., :2], self.meas_var(kpts[..., 2], size), use)
        self.measured[rows] = use
