"""Gap filling: a person's boxes and joints in the frames between two of their measurements.

Linear interpolation in time between the last measurement before the gap and the first after it. The
gaps this fills are short (at most ``stitch_gap`` frames, about a second) and bounded by measurements
at both ends, where a constant-velocity RTS pass over the gap gives the same straight path up to the
velocity terms; the straight line needs no filter state kept for every held frame.
"""

from __future__ import annotations

import numpy as np

from posecore.types import Track, TrackState


def interpolate(before: Track, after: Track, steps: int, track_id: int) -> list[Track]:
    """The ``steps`` tracks strictly between ``before`` (frame t0) and ``after`` (frame t0 + steps + 1).

    Boxes and keypoint positions move in a straight line; each joint's confidence is the smaller of the
    two ends; every joint is ``seen`` False (interpolated, not measured); state CONFIRMED with
    ``time_since_update`` the frames since ``before``. Joints counts differ (another skeleton): none.
    """
    if steps <= 0 or np.shape(before.keypoints) != np.shape(after.keypoints):
        return []
    b0, b1 = np.asarray(before.box, np.float64), np.asarray(after.box, np.float64)
    k0, k1 = np.asarray(before.keypoints, np.float64), np.asarray(after.keypoints, np.float64)
    conf = np.minimum(k0[:, 2], k1[:, 2])
    score = float(min(before.score, after.score))
    out = []
    for i in range(1, steps + 1):
        w = i / (steps + 1)
        kp = np.empty_like(k0)
        kp[:, :2] = (1 - w) * k0[:, :2] + w * k1[:, :2]
        kp[:, 2] = conf
        out.append(Track(track_id=track_id, state=TrackState.CONFIRMED, box=((1 - w) * b0 + w * b1).astype(np.float32),
                         score=score, keypoints=kp.astype(np.float32), seen=np.zeros(len(kp), bool),
                         age=before.age + i, hits=before.hits, time_since_update=i))
    return out
