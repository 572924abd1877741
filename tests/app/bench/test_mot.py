"""The ground-truth benchmark's parts: sequence discovery, the pose cache, and scoring every tracker on
the same poses (here the ground-truth boxes themselves, so no detector runs)."""

from __future__ import annotations

import numpy as np
import pytest

from app.bench.mot import Sequence, as_mot, find_sequence, load_poses, save_poses, score_sequence
from app.bench.metrics import FrameTracks
from app.cli import main
from posecore.errors import OccluposeError
from posecore.types import Poses
from tests.conftest import shared_path
from trackers.tracker import TrackerConfig


def _poses_from_gt(seq: Sequence) -> list[Poses]:
    out = []
    for f in range(1, seq.frames + 1):
        b = seq.gt.boxes[seq.gt.frames == f].astype(np.float32)
        out.append(Poses(b, np.full(len(b), 0.9, np.float32), np.zeros((len(b), 17, 3), np.float32),
                         np.zeros((len(b), 17), bool)))
    return out


def test_pose_cache_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    poses = [Poses(rng.random((n, 4), dtype=np.float32), rng.random(n, dtype=np.float32),
                   rng.random((n, 17, 3), dtype=np.float32), rng.random((n, 17)) > 0.5) for n in (2, 0, 3)]
    save_poses(tmp_path / "c.npz", poses, 12.5)
    back, ms = load_poses(tmp_path / "c.npz")
    assert ms == 12.5 and [len(p) for p in back] == [2, 0, 3]
    for a, b in zip(poses, back):
        assert np.array_equal(a.boxes, b.boxes) and np.array_equal(a.keypoints, b.keypoints)
        assert np.array_equal(a.seen, b.seen)


def test_pose_cache_key_follows_the_passes(tmp_path):
    # Poses made with the flip test are not the single pass's: a cache shared by both must keep them apart.
    from app.bench.mot import _cache_key
    from app.run.pipeline import PipelineConfig

    video = tmp_path / "v.mp4"
    video.write_bytes(b"x")
    fast, flip = PipelineConfig(), PipelineConfig()
    fast.passes.flip = False
    assert _cache_key(fast, video) != _cache_key(flip, video)
    assert _cache_key(flip, video) == _cache_key(PipelineConfig(), video)


def test_as_mot_keeps_or_drops_predicted_tracks():
    ft = FrameTracks(np.array([1, 2]), np.zeros((2, 4), np.float32) + [0, 0, 5, 5], np.zeros((2, 17, 3)),
                     np.array([True, False]))
    assert list(as_mot([ft, ft], True).ids) == [1, 1]
    assert list(as_mot([ft, ft], False).frames) == [1, 1, 2, 2]


def test_every_tracker_scores_well_on_ground_truth_boxes():
    seq = find_sequence(shared_path("mot", "TUD-Campus"))
    rows = score_sequence(seq, _poses_from_gt(seq), {"occlupose": TrackerConfig()})
    assert set(rows) == {"bytetrack", "botsort", "occlupose:confirmed", "occlupose:all"}
    occ = rows["occlupose:confirmed"]["scores"]
    # Perfect boxes: only the first frames before a track is confirmed may be missed.
    assert occ.fp == 0 and occ.mota > 0.9 and occ.idf1 > 0.9
    assert occ.gt_ids == 8


def test_bad_sequence_folder(tmp_path, capsys):
    with pytest.raises(OccluposeError):
        find_sequence(tmp_path)
    assert main(["bench", "--mot", str(tmp_path / "missing")]) == 1
    assert capsys.readouterr().err.count("\n") == 1
