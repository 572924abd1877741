import numpy as np
import pytest

from posecore.types import Detections, Poses


def test_poses_default_seen_and_select():
    p = Poses(np.zeros((2, 4)), [0.9, 0.5], np.zeros((2, 17, 3)))
    assert p.seen.shape == (2, 17) and p.seen.all()
    q = p.select([1])
    assert len(q) == 1 and q.scores[0] == pytest.approx(0.5)
    assert p.keypoints.dtype == np.float32


@pytest.mark.parametrize("kwargs, msg", [
    (dict(boxes=np.zeros((2, 3)), scores=[1, 1], keypoints=np.zeros((2, 17, 3))), "boxes"),
    (dict(boxes=np.zeros((2, 4)), scores=[1], keypoints=np.zeros((2, 17, 3))), "scores"),
    (dict(boxes=np.zeros((2, 4)), scores=[1, 1], keypoints=np.zeros((1, 17, 3))), "keypoints"),
    (dict(boxes=np.zeros((2, 4)), scores=[1, 1], keypoints=np.zeros((2, 17, 3)), seen=np.ones((2, 5))), "seen"),
])
def test_poses_reject_bad_shapes(kwargs, msg):
    with pytest.raises(ValueError, match=msg):
        Poses(**kwargs)


def test_detections_empty_and_select():
    d = Detections.empty(17)
    assert len(d) == 0 and d.keypoints.shape == (0, 17, 3)
    d = Detections(np.arange(8).reshape(2, 4), [0.2, 0.8], np.zeros((2, 17, 3)))
    assert d.select(np.array([1, 0])).scores.tolist() == pytest.approx([0.8, 0.2])
