"""The per-frame JSON record: what ``occlupose process`` writes as one JSONL line, and reads back.

A record holds the tracks (rounded for reading) and the raw per-person poses that went into the
tracker (exact float32 values), so an interrupted run can replay the tracker and resume exactly.
Records are strict JSON: a value that is not finite (a model can output one) is written as the string
"nan", "inf" or "-inf", which ``float()`` and NumPy read back exactly.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..types import FrameResult, Poses, Track

RECORD_VERSION = 1


def _finite_list(a: np.ndarray) -> list:
    """``a.tolist()`` with NaN and infinities as the strings "nan", "inf", "-inf": records stay strict
    JSON, and ``np.asarray(..., np.float32)`` (and ``float()``) read them back as the same values."""
    if np.isfinite(a).all():
        return a.tolist()
    out = a.astype(object)
    bad = ~np.isfinite(a)
    out[bad] = [("nan" if np.isnan(v) else "inf" if v > 0 else "-inf") for v in a[bad]]
    return out.tolist()


def _r(a: np.ndarray, nd: int = 2) -> list:
    return _finite_list(np.round(np.asarray(a, np.float64), nd))


def _num(x: float, nd: int) -> float | str:
    x = float(x)
    return round(x, nd) if math.isfinite(x) else str(x)  # "nan", "inf", "-inf", as in _finite_list


def _exact(a: np.ndarray) -> list:
    # float32 -> Python float is exact, and json writes the shortest repr that reads back the same.
    return _finite_list(np.asarray(a).astype(np.float32).astype(np.float64))


def track_record(t: Track) -> dict[str, Any]:
    return {
        "id": int(t.track_id),
        "state": t.state.value,
        "box": _r(t.box),
        "score": _num(t.score, 4),
        "keypoints": [[_num(x, 2), _num(y, 2), _num(c, 4)] for x, y, c in np.asarray(t.keypoints)],
        "seen": [int(s) for s in t.seen],
    }


def poses_record(p: Poses) -> dict[str, Any]:
    return {
        "skeleton": p.skeleton,
        "boxes": _exact(p.boxes),
        "scores": _exact(p.scores),
        "keypoints": _exact(p.keypoints),
        "seen": p.seen.astype(int).tolist(),
    }


def frame_record(result: FrameResult) -> dict[str, Any]:
    rec: dict[str, Any] = {"v": RECORD_VERSION, "frame": int(result.index), "time": _num(result.time_s, 4)}
    if result.source_name is not None:
        rec["source"] = result.source_name
    rec["tracks"] = [track_record(t) for t in result.tracks]
    rec["poses"] = poses_record(result.poses)
    return rec


def poses_from_record(rec: dict[str, Any], num_joints: int = 17) -> Poses:
    """The exact Poses stored in a frame record."""
    p = rec["poses"]
    k = np.asarray(p["keypoints"], np.float32).reshape(-1, num_joints, 3) if p["keypoints"] else \
        np.zeros((0, num_joints, 3), np.float32)
    seen = np.asarray(p["seen"], bool).reshape(k.shape[:2])
    return Poses(np.asarray(p["boxes"], np.float32).reshape(-1, 4), np.asarray(p["scores"], np.float32),
                 k, seen, p.get("skeleton", "coco17"))
