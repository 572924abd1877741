"""Cost matrices and gated Hungarian matching against slow per-pair references."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from posecore.skeleton import COCO17
from trackers.association import assign, box_iou, centre_distance, pose_oks, pose_similarity, segment_distance


def _random_boxes(rng, n):
    xy = rng.uniform(0, 100, (n, 2))
    wh = rng.uniform(0, 60, (n, 2))
    wh[rng.random(n) < 0.2] = 0.0  # some empty boxes
    return np.concatenate([xy, xy + wh], 1)


def test_box_iou_matches_pairwise_reference():
    rng = np.random.default_rng(0)
    a, b = _random_boxes(rng, 7), _random_boxes(rng, 5)
    b[0] = a[0]  # a duplicate

    def iou(p, q):
        iw = max(0.0, min(p[2], q[2]) - max(p[0], q[0]))
        ih = max(0.0, min(p[3], q[3]) - max(p[1], q[1]))
        inter = iw * ih
        union = (p[2] - p[0]) * (p[3] - p[1]) + (q[2] - q[0]) * (q[3] - q[1]) - inter
        return inter / union if union > 0 else 0.0

    ref = np.array([[iou(p, q) for q in b] for p in a])
    np.testing.assert_allclose(box_iou(a, b), ref, atol=1e-12)
    assert box_iou(a, b)[0, 0] == (1.0 if ref[0, 0] > 0 else 0.0)
    assert box_iou(a[:0], b).shape == (0, 5)


def test_pose_oks_matches_pairwise_reference():
    rng = np.random.default_rng(1)
    n, m, k = 4, 6, 17
    pred = rng.uniform(0, 100, (n, k, 2))
    valid = rng.random((n, k)) < 0.8
    det = np.concatenate([rng.uniform(0, 100, (m, k, 2)), rng.uniform(0, 1, (m, k, 1))], -1)
    det[1, :, :2] = pred[2] + rng.normal(0, 2, (k, 2))  # one close pair
    areas = rng.uniform(500, 5000, n)
    sig = COCO17.sigmas_array
    oks, defined = pose_oks(pred, valid, det, areas, sig, min_conf=0.3, min_joints=3)
    for i in range(n):
        for j in range(m):
            use = [q for q in range(k) if valid[i, q] and det[j, q, 2] >= 0.3]
            e = [np.exp(-np.sum((pred[i, q] - det[j, q, :2]) ** 2) / (2 * areas[i] * (2 * sig[q]) ** 2)) for q in use]
            assert defined[i, j] == (len(use) >= 3)
            assert oks[i, j] == pytest.approx(np.mean(e) if len(use) >= 3 else 0.0, rel=1e-6, abs=1e-12)
    assert oks[2, 1] > 0.8 and oks[2, 1] == oks[2].max()


def test_similarity_falls_back_to_iou_where_oks_is_undefined():
    iou = np.array([[0.2, 0.8]])
    oks = np.array([[1.0, 0.0]])
    sim = pose_similarity(iou, oks, np.array([[True, False]]), iou_weight=0.25)
    np.testing.assert_allclose(sim, [[0.25 * 0.2 + 0.75, 0.8]])


def test_centre_distance_is_in_track_sizes():
    t = np.array([[0.0, 0.0, 10.0, 10.0]])
    d = np.array([[30.0, 40.0, 40.0, 50.0], [0.0, 0.0, 10.0, 10.0]])
    np.testing.assert_allclose(centre_distance(t, d, np.array([10.0])), [[5.0, 0.0]])


def test_assign_is_optimal_over_allowed_pairs():
    rng = np.random.default_rng(2)
    for _ in range(30):
        n, m = rng.integers(1, 5, 2)
        cost = rng.uniform(0, 1, (n, m))
        allowed = rng.random((n, m)) < 0.6
        got = assign(cost, allowed)
        assert all(allowed[r, c] for r, c in got.pairs)
        assert len(set(got.pairs[:, 0])) == len(got.pairs) == len(set(got.pairs[:, 1]))
        assert sorted(np.concatenate([got.pairs[:, 0], got.rows])) == list(range(n))
        assert sorted(np.concatenate([got.pairs[:, 1], got.cols])) == list(range(m))
        # Brute force: most allowed matches first, then least total cost.
        best = (0, 0.0)
        for perm in itertools.permutations(range(max(n, m))):
            pairs = [(r, perm[r]) for r in range(n) if perm[r] < m and allowed[r, perm[r]]]
            key = (len(pairs), -sum(cost[r, c] for r, c in pairs))
            best = max(best, key)
        assert len(got.pairs) == best[0]
        assert -cost[got.pairs[:, 0], got.pairs[:, 1]].sum() == pytest.approx(best[1])


def test_assign_rejects_everything_gated():
    got = assign(np.zeros((3, 2)), np.zeros((3, 2), bool))
    assert len(got.pairs) == 0 and list(got.rows) == [0, 1, 2] and list(got.cols) == [0, 1]


def test_pose_oks_candidates_limit_the_pairs():
    rng = np.random.default_rng(3)
    pred = rng.uniform(0, 100, (3, 17, 2))
    det = np.concatenate([rng.uniform(0, 100, (4, 17, 2)), np.ones((4, 17, 1))], -1)
    args = (np.ones((3, 17), bool), det, np.full(3, 900.0), COCO17.sigmas_array, 0.3, 3)
    full, full_def = pose_oks(pred, *args)
    cand = rng.random((3, 4)) < 0.5
    part, part_def = pose_oks(pred, *args, candidates=cand)
    np.testing.assert_array_equal(part[cand], full[cand])
    assert not part_def[~cand].any() and np.all(part[~cand] == 0)


def test_segment_distance_matches_reference():
    rng = np.random.default_rng(4)
    a, b, p = rng.uniform(0, 10, (3, 2)), rng.uniform(0, 10, (3, 2)), rng.uniform(-5, 15, (5, 2))
    b[0] = a[0]  # a point-like segment
    scale = np.array([1.0, 2.0, 0.5])
    ts = np.linspace(0, 1, 20001)
    ref = np.array([[np.min(np.linalg.norm(a[i] + ts[:, None] * (b[i] - a[i]) - q, axis=1)) / scale[i] for q in p]
                    for i in range(3)])
    np.testing.assert_allclose(segment_distance(a, b, p, scale), ref, atol=1e-3)
