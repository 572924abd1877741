import numpy as np
import pytest

from posecore.pose_score import pose_results, pose_scores


def _kpts(confidences):
    k = np.zeros((len(confidences), len(confidences[0]), 3))
    k[..., 2] = confidences
    return k


def test_box_score_times_the_mean_of_the_joints_above_the_threshold():
    s = pose_scores(np.array([0.8, 0.8, 0.5]), _kpts([[0.9, 0.5, 0.1], [0.1, 0.15, 0.2], [1.0, 1.0, 1.0]]))
    np.testing.assert_allclose(s, [0.8 * 0.7, 0.0, 0.5])  # joints at or below 0.2 do not count; none: 0
    assert pose_scores(np.array([0.8]), _kpts([[0.9, 0.5, 0.1]]), thr=0.6)[0] == pytest.approx(0.8 * 0.9)


def test_pose_results_rank_by_the_pose_score_and_keep_the_keypoints():
    k = _kpts([[0.3, 0.3], [0.9, 0.9]])
    k[1, :, :2] = [[10, 20], [30, 40]]
    res = pose_results(7, np.array([0.9, 0.6]), k)
    assert [r["image_id"] for r in res] == [7, 7] and res[1]["keypoints"] == [10, 20, 0.9, 30, 40, 0.9]
    assert res[1]["score"] > res[0]["score"]
    assert pose_results(7, np.zeros(0), np.zeros((0, 17, 3))) == [] and len(pose_scores([], [])) == 0
