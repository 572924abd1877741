"""Matching tracks to detections: pairwise IoU, OKS and centre-distance matrices, and gated Hungarian.

Every matrix is computed for all pairs at once with broadcasting; rows are tracks (N), columns are
detections (M), K is the number of joints.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from posecore.boxes import box_iou  # noqa: F401  (part of this module's API)
from posecore.oks import joint_similarity, keypoint_similarity

from .kalman import box_size

_EPS = 1e-9
_FORBIDDEN = 1e6  # cost put on gated pairs; far above any allowed cost, which are all in [0, a few]


def pose_oks(pred_xy: np.ndarray, pred_valid: np.ndarray, det_kpts: np.ndarray, areas: np.ndarray,
             sigmas: np.ndarray, min_conf: float, min_joints: int,
             candidates: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Object keypoint similarity between predicted track poses and detected poses.

    pred_xy float[N, K, 2] and pred_valid bool[N, K] (joints the track knows); det_kpts float[M, K, 3]
    whose joints count when their confidence is at least ``min_conf``; areas float[N] the tracks' scale
    s^2 (box area); sigmas float[K] COCO-style per-joint falloffs. A pair's OKS averages
    ``exp(-d^2 / (2 s^2 (2 sigma)^2))`` over the joints valid on both sides. ``candidates`` bool[N, M]
    limits the work to the pairs that may match (in a crowd most pairs are far apart); others are
    undefined.

    Returns (oks float64[N, M], defined bool[N, M]); a pair with fewer than ``min_joints`` common joints
    is undefined and its OKS is 0.
    """
    pred_xy = np.asarray(pred_xy, np.float64)
    det_kpts = np.asarray(det_kpts, np.float64)
    n, m = len(pred_xy), len(det_kpts)
    oks = np.zeros((n, m))
    defined = np.zeros((n, m), bool)
    k = pred_xy.shape[1] if pred_xy.ndim == 3 else 0
    if n == 0 or m == 0 or k == 0:
        return oks, defined
    if candidates is None:
        ti, di = (a.ravel() for a in np.indices((n, m)))
    else:
        ti, di = np.nonzero(candidates)
    if len(ti) == 0:
        return oks, defined
    valid = np.asarray(pred_valid, bool)[ti] & (det_kpts[di, :, 2] >= min_conf)  # [P, K]
    d2 = ((pred_xy[ti] - det_kpts[di, :, :2]) ** 2).sum(-1)
    areas = np.maximum(np.asarray(areas, np.float64), 1.0)
    score, count = keypoint_similarity(d2, areas[ti], sigmas, valid)
    ok = count >= max(min_joints, 1)
    oks[ti, di] = np.where(ok, score, 0.0)
    defined[ti, di] = ok
    return oks, defined


def same_person(kpts: np.ndarray, boxes: np.ndarray, ref_kpts: np.ndarray, ref_boxes: np.ndarray,
                sigmas: np.ndarray, min_conf: float, min_joints: int, min_sim: float = 0.9) -> np.ndarray:
    """bool[M]: poses ``kpts`` float[M, K, 3] (boxes float[M, 4]) that repeat one of ``ref_kpts`` float[R, K, 3].

    A detector sometimes reports one person twice, e.g. the whole body and, with the legs squeezed into it,
    the upper half: head and shoulders then coincide to a few pixels while the OKS of the whole pose stays
    near 0.7, too low for an OKS threshold to tell from two people close together. So the test counts the
    joints, confident on both sides, whose own similarity ``exp(-d^2 / (2 s^2 (2 sigma)^2))`` (s^2: the
    smaller box's area) reaches ``min_sim``; at least ``min_joints`` such joints make a duplicate. Two
    people do not have several joints at the same pixels.
    """
    kpts, ref_kpts = np.asarray(kpts, np.float64), np.asarray(ref_kpts, np.float64)
    m, r = len(kpts), len(ref_kpts)
    if m == 0 or r == 0 or min_joints <= 0:
        return np.zeros(m, bool)
    d2 = ((kpts[:, None, :, :2] - ref_kpts[None, :, :, :2]) ** 2).sum(-1)  # [M, R, K]
    both = (kpts[:, None, :, 2] >= min_conf) & (ref_kpts[None, :, :, 2] >= min_conf)
    s2 = np.minimum(box_size(boxes)[:, None], box_size(ref_boxes)[None]) ** 2  # the smaller box's area
    close = both & (joint_similarity(d2, s2, sigmas) >= min_sim)
    return (close.sum(-1) >= min_joints).any(-1)


def pose_similarity(iou: np.ndarray, oks: np.ndarray, oks_defined: np.ndarray, iou_weight: float) -> np.ndarray:
    """float64[N, M] in [0, 1]: ``iou_weight * IoU + (1 - iou_weight) * OKS`` where OKS is defined, else IoU."""
    return np.where(oks_defined, iou_weight * iou + (1.0 - iou_weight) * oks, iou)


def centre_distance(track_boxes: np.ndarray, det_boxes: np.ndarray, track_sizes: np.ndarray) -> np.ndarray:
    """float64[N, M] distance between box centres divided by the track's size float[N] (> 0)."""
    a = np.asarray(track_boxes, np.float64).reshape(-1, 4)
    b = np.asarray(det_boxes, np.float64).reshape(-1, 4)
    ca = (a[:, :2] + a[:, 2:]) / 2
    cb = (b[:, :2] + b[:, 2:]) / 2
    d = np.sqrt(((ca[:, None, :] - cb[None, :, :]) ** 2).sum(-1))
    return d / np.maximum(np.asarray(track_sizes, np.float64), _EPS)[:, None]


def segment_distance(start: np.ndarray, end: np.ndarray, points: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """float64[N, M] distance from points float[M, 2] to the segments start..end float[N, 2], over scale float[N]."""
    a = np.asarray(start, np.float64).reshape(-1, 2)[:, None, :]
    ab = np.asarray(end, np.float64).reshape(-1, 2)[:, None, :] - a
    p = np.asarray(points, np.float64).reshape(-1, 2)[None, :, :]
    len2 = (ab ** 2).sum(-1)
    t = np.clip(((p - a) * ab).sum(-1) / np.maximum(len2, _EPS), 0.0, 1.0)
    d = np.sqrt(((p - a - t[..., None] * ab) ** 2).sum(-1))
    return d / np.maximum(np.asarray(scale, np.float64), _EPS)[:, None]


@dataclass
class Matching:
    """Result of :func:`assign`: matched (row, column) pairs int[P, 2] and the leftover rows and columns."""

    pairs: np.ndarray
    rows: np.ndarray
    cols: np.ndarray


def assign(cost: np.ndarray, allowed: np.ndarray) -> Matching:
    """Minimum-cost one-to-one matching (Hungarian method) of a float[N, M] ``cost`` over bool[N, M] ``allowed`` pairs.

    Forbidden pairs get a prohibitive cost, so the solver first matches as many allowed pairs as it can
    and then minimises their total cost; any forbidden pair it is forced into is dropped.
    """
    cost = np.asarray(cost, np.float64)
    allowed = np.asarray(allowed, bool) & np.isfinite(cost)
    n, m = cost.shape
    if n == 0 or m == 0 or not allowed.any():
        return Matching(np.zeros((0, 2), np.intp), np.arange(n), np.arange(m))
    # Only rows and columns with some allowed pair take part: keeps the problem small.
    r_idx = np.flatnonzero(allowed.any(1))
    c_idx = np.flatnonzero(allowed.any(0))
    sub = np.where(allowed[np.ix_(r_idx, c_idx)], np.minimum(cost[np.ix_(r_idx, c_idx)], _FORBIDDEN / 2), _FORBIDDEN)
    r, c = linear_sum_assignment(sub)
    ok = sub[r, c] < _FORBIDDEN
    pairs = np.stack([r_idx[r[ok]], c_idx[c[ok]]], axis=1).astype(np.intp)
    row_free = np.ones(n, bool)
    row_free[pairs[:, 0]] = False
    col_free = np.ones(m, bool)
    col_free[pairs[:, 1]] = False
    return Matching(pairs, np.flatnonzero(row_free), np.flatnonzero(col_free))
