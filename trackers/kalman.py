"""Kalman filters for one person's box and for all tracked joints.

Both use a constant-velocity model with piecewise white acceleration noise, and both scale their noise
by the person's size (``sqrt(w * h)`` of the box, at least 1 px) so they behave the same at any image
resolution or distance from the camera.

* :class:`BoxKalman` is one ``filterpy.kalman.KalmanFilter`` per track over ``(cx, cy, w, h)`` and their
  velocities: eight states, four measurements, a handful of tracks per frame.
* :class:`KeypointKalman` filters every joint of every track at once. Its x and y axes and its joints
  are independent 2-state filters (position, velocity) that share one model, so instead of ``T * K``
  filterpy objects the same equations run as NumPy array operations over ``[T, K]``; a test checks the
  numbers against filterpy's ``KalmanFilter`` for one joint. The measurement variance of a joint is
  ``(meas_std * joint_scale * size)^2 / confidence``: a doubtful joint moves the estimate less, and a
  joint below ``min_conf`` is not measured at all, so it is predicted from its velocity instead of being
  frozen or dropped. (The tracker sets ``joint_scale`` to ``sqrt(sigma / mean sigma)`` of the skeleton's
  OKS sigmas: hips are located less precisely than eyes, though not in full proportion to their
  annotation spread.) While a joint (or a whole lost track) goes unmeasured its velocity is damped by
  ``damping`` per frame, so a long gap coasts to a stop instead of flying off.
"""

from __future__ import annotations

import numpy as np
from filterpy.common import Q_discrete_white_noise
from filterpy.kalman import KalmanFilter

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


class BoxMotion:
    """Transition and unit process noise of the box filter for a step of ``dt`` frames (cached per dt)."""

    def __init__(self) -> None:
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def __call__(self, dt: int) -> tuple[np.ndarray, np.ndarray]:
        """(F float64[8, 8], Q for unit acceleration variance float64[8, 8]); state order cx cy w h, then velocities."""
        if dt not in self._cache:
            f = np.eye(8)
            f[:4, 4:] = np.eye(4) * dt
            q = Q_discrete_white_noise(dim=2, dt=float(dt), var=1.0, block_size=4, order_by_dim=False)
            self._cache[dt] = (f, q)
        return self._cache[dt]


def _inv_diagonal(s: np.ndarray) -> np.ndarray:
    """Inverse of a diagonal matrix. The box filter's innovation covariance is diagonal: its four
    coordinates never mix (diagonal R, block-diagonal F, Q and initial P), so this replaces a general
    4x4 inverse in filterpy's update."""
    return np.diag(1.0 / s.diagonal())


class BoxKalman:
    """Constant-velocity box filters of T tracks (rows): one ``filterpy`` ``KalmanFilter`` per track
    over (cx, cy, w, h) and their velocities.

    Standard deviations are fractions of the box size: ``meas_std`` of a measured coordinate,
    ``accel_std`` of the change of velocity per frame, ``init_vel_std`` of the unknown velocity at birth.
    The methods take and return arrays over all rows so callers need no per-track code.
    """

    def __init__(self, meas_std: float, accel_std: float, init_vel_std: float) -> None:
        self.meas_std = meas_std
        self.accel_std = accel_std
        self.init_vel_std = init_vel_std
        self.filters: list[KalmanFilter] = []
        self._h = np.eye(4, 8)

    def __len__(self) -> int:
        return len(self.filters)

    def add(self, boxes: np.ndarray) -> None:
        """Start filters at boxes float[N, 4] (x1 y1 x2 y2), at rest."""
        zs = box_to_z(np.asarray(boxes, np.float64).reshape(-1, 4))
        sizes = _z_size(zs)
        for z, s in zip(zs, sizes):
            kf = KalmanFilter(dim_x=8, dim_z=4)
            kf.H = self._h
            kf.inv = _inv_diagonal
            kf.x[:4, 0] = z
            kf.P = np.diag([(self.meas_std * s) ** 2] * 4 + [(self.init_vel_std * s) ** 2] * 4)
            self.filters.append(kf)

    def keep(self, mask: np.ndarray) -> None:
        """Keep only rows where bool[T] ``mask`` is True (order preserved)."""
        self.filters = [f for f, k in zip(self.filters, mask) if k]

    def state(self) -> np.ndarray:
        """float64[T, 8] current cx cy w h and their velocities (per frame) of every row."""
        if not self.filters:
            return np.zeros((0, 8))
        return np.array([f.x[:, 0] for f in self.filters])

    def z(self) -> np.ndarray:
        """float64[T, 4] current cx cy w h of every row."""
        return self.state()[:, :4]

    def boxes(self) -> np.ndarray:
        """float64[T, 4] current x1 y1 x2 y2 of every row."""
        return z_to_box(self.z())

    def sizes(self) -> np.ndarray:
        """float64[T] current size sqrt(w * h) of every row, at least MIN_SIZE."""
        return _z_size(self.z())

    def predict(self, motion: tuple[np.ndarray, np.ndarray], damping: np.ndarray,
                size_damping: np.ndarray | None = None) -> None:
        """Advance every row by one step of ``motion`` (from :class:`BoxMotion`).

        damping float[T]: factor on each row's velocity before the step (1 = none); size_damping
        float[T]: the factor for the velocity of width and height instead (default: ``damping``).
        """
        f, q_unit = motion
        q_var = (self.accel_std * self.sizes()) ** 2
        if size_damping is None:
            size_damping = damping
        for kf, d, ds, q in zip(self.filters, damping, size_damping, q_var):
            if d != 1.0 or ds != 1.0:
                dv = np.array([d, d, ds, ds])[:, None]
                kf.x[4:] *= dv
                kf.P[4:] *= dv  # the damped velocity is a linear map of the old one: P <- D P D
                kf.P[:, 4:] *= dv.T
            kf.predict(F=f, Q=q_unit * q)
        # A shrinking box must not turn inside out: stop a side at zero.
        z = self.z()
        for i in np.flatnonzero((z[:, 2:] < 0).any(1)):
            x = self.filters[i].x
            for j in (2, 3):
                if x[j, 0] < 0.0:
                    x[j, 0] = 0.0
                    x[j + 4, 0] = max(x[j + 4, 0], 0.0)

    def update(self, rows: np.ndarray, boxes: np.ndarray) -> None:
        """Correct rows int[M] with measured boxes float[M, 4]."""
        zs = box_to_z(np.asarray(boxes, np.float64).reshape(-1, 4))
        r_var = (self.meas_std * _z_size(zs)) ** 2
        eye = np.eye(4)
        for row, z, r in zip(rows, zs, r_var):
            self.filters[row].update(z[:, None], R=eye * r)


class KeypointKalman:
    """Batched constant-velocity filters for K joints of each of T tracks (rows are tracks).

    State per row and joint: position float64[T, K, 2], velocity float64[T, K, 2] and a 2x2 covariance
    (``p_pp``, ``p_pv``, ``p_vv`` float64[T, K]) shared by x and y, since both axes get the same noise.
    ``joint_scale`` float[K] multiplies the measurement noise per joint (e.g. from OKS sigmas: hips are
    located less precisely than eyes).
    """

    def __init__(self, joint_scale: np.ndarray, meas_std: float, accel_std: float, init_vel_std: float,
                 min_conf: float, damping: float) -> None:
        self.joint_scale = np.asarray(joint_scale, np.float64).reshape(-1)
        self.meas_std = meas_std
        self.accel_std = accel_std
        self.init_vel_std = init_vel_std
        self.min_conf = min_conf
        self.damping = damping
        k = len(self.joint_scale)
        self.pos = np.zeros((0, k, 2))
        self.vel = np.zeros((0, k, 2))
        self.p_pp = np.zeros((0, k))
        self.p_pv = np.zeros((0, k))
        self.p_vv = np.zeros((0, k))
        self.measured = np.zeros((0, k), bool)  # measured in the last update; unmeasured joints get damped

    def __len__(self) -> int:
        return len(self.pos)

    @property
    def num_joints(self) -> int:
        return len(self.joint_scale)

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
        n = len(kpts)
        var = self.meas_var(kpts[..., 2], size)
        self.pos = np.concatenate([self.pos, kpts[..., :2]])
        self.vel = np.concatenate([self.vel, np.zeros((n, self.num_joints, 2))])
        self.p_pp = np.concatenate([self.p_pp, var])
        self.p_pv = np.concatenate([self.p_pv, np.zeros((n, self.num_joints))])
        vel_var = np.broadcast_to(((self.init_vel_std * size) ** 2)[:, None], (n, self.num_joints))
        self.p_vv = np.concatenate([self.p_vv, vel_var])
        self.measured = np.concatenate([self.measured, kpts[..., 2] >= self.min_conf])

    def keep(self, mask: np.ndarray) -> None:
        """Keep only rows where bool[T] ``mask`` is True (order preserved)."""
        for name in ("pos", "vel", "p_pp", "p_pv", "p_vv", "measured"):
            setattr(self, name, getattr(self, name)[mask])

    def predict(self, dt: int, size: np.ndarray) -> None:
        """Advance all rows by ``dt`` frames; ``size`` float[T] scales the process noise per track."""
        if self.damping != 1.0:
            d = np.where(self.measured, 1.0, self.damping ** dt)
            self.vel *= d[..., None]
            self.p_pv *= d
            self.p_vv *= d * d
        q = ((self.accel_std * np.asarray(size, np.float64)) ** 2)[:, None]
        self.pos += dt * self.vel
        self.p_pp += 2 * dt * self.p_pv + dt * dt * self.p_vv + q * (dt ** 4 / 4)
        self.p_pv += dt * self.p_vv + q * (dt ** 3 / 2)
        self.p_vv += q * (dt * dt)
        self.measured[:] = False

    def update(self, rows: np.ndarray, kpts: np.ndarray, size: np.ndarray) -> None:
        """Correct rows int[M] with keypoints float[M, K, 3] of detections of size float[M].

        Joints with confidence below ``min_conf`` are left at their prediction.
        """
        rows = np.asarray(rows, np.intp)
        if len(rows) == 0:
            return
        kpts = np.asarray(kpts, np.float64)
        use = kpts[..., 2] >= self.min_conf
        r = self.meas_var(kpts[..., 2], size)
        pp, pv, vv = self.p_pp[rows], self.p_pv[rows], self.p_vv[rows]
        s = pp + r
        k0 = np.where(use, pp / s, 0.0)
        k1 = np.where(use, pv / s, 0.0)
        innov = kpts[..., :2] - self.pos[rows]
        self.pos[rows] += k0[..., None] * innov
        self.vel[rows] += k1[..., None] * innov
        # Joseph form, as filterpy does: (I - KH) P (I - KH)' + K R K'.
        a = 1.0 - k0
        self.p_pp[rows] = a * a * pp + k0 * k0 * r
        self.p_pv[rows] = a * (pv - k1 * pp) + k0 * k1 * r
        self.p_vv[rows] = k1 * k1 * pp - 2 * k1 * pv + vv + k1 * k1 * r
        self.measured[rows] = use
