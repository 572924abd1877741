"""What --resume relies on, for any input: the per-frame record stores the tracker's input exactly (strict
JSON, bit for bit, NaN and infinities included), and the tracker is a pure function of that input, so
replaying the records rebuilds its state exactly. Zero, one, 100 people and duplicates included.

(The tracker's own properties, finiteness and bounds, are in tests/trackers/test_tracker_properties.py.)
"""

from __future__ import annotations

import json

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from posecore.io.records import frame_record, poses_from_record
from posecore.types import FrameResult, Poses
from trackers import Tracker

SETTINGS = settings(max_examples=40, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

any_f32 = st.floats(width=32, allow_nan=True, allow_infinity=True)  # every float32, -0.0 and subnormals too


@st.composite
def raw_poses(draw, finite: bool = False) -> Poses:
    """Any float32 values at all, for 0, 1, a few or 100 people, 17 or 14 joints."""
    n = draw(st.sampled_from([0, 1, 2, 5, 100]))
    k, skeleton = draw(st.sampled_from([(17, "coco17"), (14, "crowdpose14")]))
    el = st.floats(width=32, allow_nan=False, allow_infinity=False) if finite else any_f32
    boxes = draw(hnp.arrays(np.float32, (n, 4), elements=el))
    scores = draw(hnp.arrays(np.float32, (n,), elements=el))
    kpts = draw(hnp.arrays(np.float32, (n, k, 3), elements=el))
    seen = draw(hnp.arrays(bool, (n, k)))
    return Poses(boxes, scores, kpts, seen, skeleton)


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    """Bit-for-bit equal float32 arrays (NaN payloads aside)."""
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    nan = np.isnan(a)
    return a.shape == b.shape and np.array_equal(nan, np.isnan(b)) and \
        np.array_equal(a[~nan].view(np.uint32), b[~nan].view(np.uint32))


def _through_json(poses: Poses, index: int = 0) -> Poses:
    rec = frame_record(FrameResult(index, index / 25.0, None, poses, [], None))
    line = json.dumps(rec, separators=(",", ":"), allow_nan=False)  # what the JSONL writer does
    return poses_from_record(json.loads(line), poses.num_joints)


@SETTINGS
@given(raw_poses())
def test_pose_record_is_strict_json_and_bit_exact(poses):
    back = _through_json(poses)
    assert _same(back.boxes, poses.boxes) and _same(back.scores, poses.scores)
    assert _same(back.keypoints, poses.keypoints)
    assert np.array_equal(back.seen, poses.seen) and back.skeleton == poses.skeleton


@st.composite
def scenes(draw):
    """A short video: people who enter, move and leave, with duplicate detections, misses, frames with
    nobody, a frame with 100 people, and repeated or skipped frame indices."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    frames = []
    index = 0
    people = rng.uniform(0, 1000, (draw(st.integers(0, 6)), 2))
    for _ in range(draw(st.integers(1, 12))):
        kind = draw(st.sampled_from(["walk", "walk", "walk", "empty", "crowd", "dups", "raw"]))
        index += draw(st.sampled_from([0, 1, 1, 1, 2, 7]))
        if kind == "raw":
            poses = draw(raw_poses(finite=draw(st.booleans())))
            if poses.num_joints != 17:
                poses = Poses.empty()
        elif kind == "empty":
            poses = Poses.empty()
        else:
            people = people + rng.normal(0, 5, people.shape)
            if rng.random() < 0.3:
                people = np.concatenate([people, rng.uniform(0, 1000, (1, 2))])
            if len(people) and rng.random() < 0.3:
                people = people[1:]
            centres = rng.uniform(0, 2000, (100, 2)) if kind == "crowd" else people
            n = len(centres)
            h = rng.uniform(10, 300, n)
            boxes = np.concatenate([centres - h[:, None] * [0.2, 0.5], centres + h[:, None] * [0.2, 0.5]], 1)
            kpts = np.concatenate([centres[:, None] + rng.normal(0, 1, (n, 17, 2)) * h[:, None, None] * 0.2,
                                   rng.uniform(0, 1, (n, 17, 1))], -1)
            scores = rng.uniform(0, 1, n)
            if kind == "dups" and n:
                boxes, kpts, scores = (np.concatenate([a, a]) for a in (boxes, kpts, scores))
            poses = Poses(boxes, scores, kpts, kpts[..., 2] > 0.3)
        frames.append((index, poses))
    return frames


def _run(frames, through_json: bool):
    tracker = Tracker(min_hits=2, max_lost=5, report_lost=3)
    out = []
    for index, poses in frames:
        if through_json:
            poses = _through_json(poses, index)
        tracks = tracker.update(poses, index)
        out.append([(t.track_id, t.state, t.box.copy(), t.score, t.keypoints.copy(), t.seen.copy()) for t in tracks])
    return out, tracker.num_tracks


@SETTINGS
@given(scenes())
def test_replaying_records_rebuilds_the_tracker_exactly(frames):
    direct, n_direct = _run(frames, through_json=False)
    again, _ = _run(frames, through_json=False)
    replayed, n_replayed = _run(frames, through_json=True)
    assert n_direct == n_replayed
    for a, b, c in zip(direct, again, replayed):
        assert len(a) == len(b) == len(c)
        for ta, tb, tc in zip(a, b, c):
            assert ta[:2] == tb[:2] == tc[:2]
            assert _same(ta[2], tb[2]) and _same(ta[2], tc[2])
            assert ta[3] == tb[3] == tc[3] or (np.isnan(ta[3]) and np.isnan(tc[3]))
            assert _same(ta[4], tb[4]) and _same(ta[4], tc[4])
            assert np.array_equal(ta[5], tc[5])
    # and every record the batch job would write for these tracks is strict JSON
    tracker = Tracker()
    for index, poses in frames:
        tracks = tracker.update(poses, index)
        json.dumps(frame_record(FrameResult(index, 0.0, None, poses, tracks, None)), allow_nan=False)
