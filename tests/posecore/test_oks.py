"""The one OKS formula against a joint-by-joint reference (COCO's definition)."""

import math

import numpy as np
import pytest

from posecore.oks import keypoint_similarity
from posecore.skeleton import COCO17


def _reference(a, b, area, sigmas, valid):
    terms = [math.exp(-((a[k] - b[k]) ** 2).sum() / (2 * area * (2 * sigmas[k]) ** 2))
             for k in range(len(sigmas)) if valid[k]]
    return (sum(terms) / len(terms) if terms else 0.0), len(terms)


def test_matches_joint_by_joint_reference_with_and_without_a_mask():
    rng = np.random.default_rng(0)
    sig = np.asarray(COCO17.sigmas, np.float64)
    a = rng.uniform(0, 100, (4, 17, 2))
    b = a + rng.normal(0, 5, a.shape)
    areas = rng.uniform(500, 5000, 4)
    valid = rng.random((4, 17)) > 0.4
    valid[3] = False  # no joint counts: OKS 0
    d2 = ((a - b) ** 2).sum(-1)
    got, count = keypoint_similarity(d2, areas, sig, valid)
    got_all, count_all = keypoint_similarity(d2, areas, sig)
    for i in range(4):
        ref, n = _reference(a[i], b[i], areas[i], sig, valid[i])
        assert got[i] == pytest.approx(ref, rel=1e-12, abs=1e-15)
        assert count[i] == n
        ref_all, _ = _reference(a[i], b[i], areas[i], sig, np.ones(17, bool))
        assert got_all[i] == pytest.approx(ref_all, rel=1e-12) and count_all[i] == 17
    assert got[3] == 0.0 and got_all[3] > 0.0


def test_identical_poses_score_one_and_distance_lowers_it():
    sig = COCO17.sigmas_array
    same, _ = keypoint_similarity(np.zeros(17), 1000.0, sig)
    near, _ = keypoint_similarity(np.full(17, 4.0), 1000.0, sig)
    far, _ = keypoint_similarity(np.full(17, 400.0), 1000.0, sig)
    assert same == 1.0 and 1.0 > near > far > 0.0
