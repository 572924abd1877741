"""Identity over time: crossings, occlusion gaps, two-stage matching and the track lifecycle."""

from __future__ import annotations

import numpy as np
import pytest

from posecore.types import Poses, TrackState
from tests.trackers.tracker_scenes import frame, ids_by_x, person
from trackers import Tracker


def _confirmed(tracks):
    return [t for t in tracks if t.state == TrackState.CONFIRMED]


@pytest.mark.parametrize("arms_up, dy, noise, hidden", [
    (True, 10.0, 0.0, 0),   # different poses, boxes overlapping up to IoU ~0.9
    (False, 4.0, 2.0, 0),   # same pose, almost the same box, noisy joints
    (True, 10.0, 2.0, 4),   # the back person is fully covered for 4 frames while they cross
])
def test_crossing_people_keep_their_ids(arms_up, dy, noise, hidden):
    rng = np.random.default_rng(5)
    tracker = Tracker()
    speed, frames, cross = 5.0, 81, 40
    seen_order = []
    for f in range(frames):
        a = person(100.0 + speed * f, 50.0, 200.0)
        b = person(500.0 - speed * f, 50.0 + dy, 200.0, arms_up=arms_up)
        for _, k in (a, b):
            k[:, :2] += rng.normal(0, noise, (17, 2))
        people = [a] if abs(f - cross) * 2 < hidden else [a, b]
        tracks = _confirmed(tracker.update(frame(people), f))
        assert len(tracks) == len(people)
        if len(people) == 2 and abs(f - cross) > 6:
            seen_order.append((f < cross, tuple(ids_by_x(tracks))))
    before = {o for early, o in seen_order if early}
    after = {o for early, o in seen_order if not early}
    assert len(before) == 1 and len(after) == 1
    (left, right), = before
    assert after == {(right, left)}  # they swapped places, not labels


def _hide_and_return(tracker: Tracker, hidden: int, speed: float = 6.0, start: int = 20):
    """A person walks right, vanishes for ``hidden`` frames, walks on; returns each frame's tracks."""
    history = []
    for f in range(start + hidden + 10):
        people = [] if start <= f < start + hidden else [person(100.0 + speed * f, 50.0, 150.0)]
        history.append(tracker.update(frame(people), f))
    return history


def test_person_hidden_for_k_frames_returns_with_same_id():
    start, hidden = 20, 15
    history = _hide_and_return(Tracker(max_lost=30), hidden, start=start)
    before = {t.track_id for t in _confirmed(history[start - 1])}
    after = {t.track_id for t in _confirmed(history[start + hidden + 1])}
    assert before == after == {1}
    # Without the second-chance stage the same return gets a new identity: the scene really needs it.
    history = _hide_and_return(Tracker(max_lost=30, reid_max_dist=0.0), hidden, start=start)
    assert {t.track_id for t in history[-1]} != {1}


@pytest.mark.parametrize("stops", [False, True])
def test_long_occlusion_walking_on_or_stopping_keeps_id(stops):
    """Covered for 30 frames: the person either walks on at full speed or stops behind the occluder."""
    tracker = Tracker(max_lost=40, report_lost=40)
    start, hidden, speed = 20, 30, 6.0
    x, history = 100.0, []
    for f in range(start + hidden + 5):
        if f > 0 and not (stops and f >= start + 2):
            x += speed
        people = [] if start <= f < start + hidden else [person(x, 50.0, 150.0)]
        history.append(tracker.update(frame(people), f))
    assert [t.track_id for t in history[-1]] == [1] and history[-1][0].state == TrackState.CONFIRMED
    if not stops:
        # The damped prediction alone is far behind: only the path to full speed reaches the person.
        predicted = history[start + hidden - 1][0].box
        back = person(x - 4 * speed, 50.0, 150.0)[0]
        size = np.sqrt((back[2] - back[0]) * (back[3] - back[1]))
        assert abs((predicted[0] + predicted[2]) / 2 - (back[0] + back[2]) / 2) > 1.0 * size


def test_lost_track_is_reported_predicted_for_report_lost_frames():
    start, hidden, report = 20, 12, 4
    history = _hide_and_return(Tracker(report_lost=report), hidden, start=start)
    last = history[start - 1][0]
    for i in range(hidden):
        tracks = history[start + i]
        if i < report:
            (t,) = tracks
            assert t.state == TrackState.LOST and t.time_since_update == i + 1 and t.track_id == last.track_id
            assert not t.seen.any() and t.score < last.score
            assert t.box[0] > last.box[0]  # still moving with its velocity
        else:
            assert tracks == []
    assert all(not h or h[0].state != TrackState.LOST for h in _hide_and_return(Tracker(report_lost=0), hidden))


def test_lost_box_velocity_is_damped():
    history = _hide_and_return(Tracker(report_lost=30, max_lost=30), hidden=30, speed=6.0, start=20)
    steps = np.diff([h[0].box[0] for h in history[20:50]])
    assert steps[0] > 4.0 and 0 <= steps[-1] < 0.5 and np.all(np.diff(steps) <= 1e-6)


def test_id_is_not_reused_after_max_lost():
    max_lost = 5
    history = _hide_and_return(Tracker(max_lost=max_lost), hidden=max_lost + 1, start=20)
    old = history[19][0].track_id
    returned = _confirmed(history[-1])
    assert len(returned) == 1 and returned[0].track_id > old
    assert all(t.track_id != old for h in history[20 + max_lost + 1:] for t in h)


def test_low_score_detections_extend_tracks_in_second_stage():
    def run(tracker):
        out = []
        for f in range(40):
            score = 0.3 if 15 <= f < 30 else 0.9  # partly occluded: the detector is unsure
            out.append(_confirmed(tracker.update(frame([person(100.0 + 3 * f, 50.0, 180.0)], [score]), f)))
        return out

    with_low = run(Tracker())
    assert all(len(ts) == 1 and ts[0].track_id == 1 and ts[0].time_since_update == 0 for ts in with_low)
    without_low = run(Tracker(low_score=0.5))
    assert all(ts == [] for ts in without_low[15:30])


def test_tentative_tracks_wait_for_min_hits_after_the_first_frames():
    tracker = Tracker(min_hits=3)
    a = lambda f: person(100.0 + 2 * f, 50.0, 150.0)  # noqa: E731
    b = lambda f: person(600.0, 80.0, 150.0)  # noqa: E731
    assert [t.track_id for t in tracker.update(frame([a(0)]), 0)] == [1]  # first frames: at once
    for f in range(1, 10):
        tracker.update(frame([a(f)]), f)
    tracker.update(frame([a(10), b(10)]), 10)
    tracker.update(frame([a(11)]), 11)  # b flickers once: dropped
    assert tracker.num_tracks == 1
    reported = [[t.track_id for t in tracker.update(frame([a(f), b(f)]), f)] for f in range(12, 16)]
    assert reported[0] == [1] and reported[1] == [1] and reported[2] == [1, 3] and reported[3] == [1, 3]
    tracker.reset()
    assert [t.track_id for t in tracker.update(frame([b(0)]), 0)] == [1]


def test_frame_index_gap_predicts_over_skipped_frames():
    tracker = Tracker()
    for f in list(range(0, 20)) + list(range(26, 30)):
        tracks = tracker.update(frame([person(100.0 + 5 * f, 50.0, 150.0)]), f)
        assert [t.track_id for t in _confirmed(tracks)] == [1]
        truth = person(100.0 + 5 * f, 50.0, 150.0)[0]
        np.testing.assert_allclose(tracks[0].box, truth, atol=3.0)


def test_track_table_stays_bounded():
    rng = np.random.default_rng(0)
    tracker = Tracker(max_lost=10, max_tracks=50)
    for f in range(60):
        n = 20
        people = [person(float(x), float(y), 100.0) for x, y in rng.uniform(0, 2000, (n, 2))]
        tracker.update(frame(people), f)
        assert tracker.num_tracks <= 50
    tracker.update(Poses.empty(), 60)
    for f in range(61, 73):
        tracker.update(Poses.empty(), f)
    assert tracker.num_tracks == 0


def test_changing_skeleton_starts_afresh_without_reusing_ids():
    tracker = Tracker()
    box, kpts = person(100.0, 50.0, 150.0)
    (t1,) = tracker.update(frame([(box, kpts)]), 0)
    crowd = Poses(box[None], [0.9], kpts[None, :14], skeleton="crowdpose14")
    (t2,) = tracker.update(crowd, 1)
    assert t2.keypoints.shape == (14, 3) and t2.track_id > t1.track_id


def _half_body_copy(box: np.ndarray, kpts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The same person reported again as an upper-half box: head and shoulders in place, the rest squeezed in."""
    top, bottom = box[1], box[1] + 0.55 * (box[3] - box[1])
    k = kpts.copy()
    k[7:, 1] = top + (k[7:, 1] - top) * 0.55
    return np.array([box[0], top, box[2], bottom]), k


@pytest.mark.parametrize("dup_joints, expected_ids", [(5, 1), (0, 2)])
def test_a_person_reported_twice_gets_one_id(dup_joints, expected_ids):
    # A detector sometimes adds a second, upper-half box on one person for a few frames (seen on a
    # back-flip); its head and shoulders sit on the first pose's. Only the duplicate rule keeps one ID.
    tracker = Tracker(birth_dup_joints=dup_joints)
    ids = set()
    for f in range(30):
        whole = person(100.0 + 4 * f, 50.0, 300.0)
        people = [whole, _half_body_copy(*whole)] if 10 <= f < 20 else [whole]
        ids |= {t.track_id for t in _confirmed(tracker.update(frame(people, [0.9, 0.8][:len(people)]), f))}
    assert len(ids) == expected_ids


def test_a_person_arriving_next_to_another_still_gets_a_track():
    # Two people close together (boxes overlapping, heads a third of a box width apart) are not duplicates.
    tracker = Tracker()
    for f in range(20):
        people = [person(300.0, 50.0, 300.0)] + ([person(350.0, 60.0, 290.0, arms_up=True)] if f >= 5 else [])
        tracks = _confirmed(tracker.update(frame(people), f))
    assert len({t.track_id for t in tracks}) == 2


def _sliver(x1: float, x2: float) -> tuple[np.ndarray, np.ndarray]:
    """A tall, narrow pose from x1 to x2: what the detector leaves of someone cut by the frame's edge."""
    box, kpts = person((x1 + x2) / 2, 50.0, 200.0)
    kpts[:, 0] = np.clip(kpts[:, 0], x1, x2)
    return np.array([x1, box[1], x2, box[3]]), kpts


def test_a_sliver_at_the_frame_edge_neither_starts_nor_extends_a_track():
    at_edge, inside, wide = _sliver(625.0, 640.0), _sliver(300.0, 315.0), _sliver(590.0, 640.0)
    tracks = Tracker().update(frame([at_edge, inside, wide]), 0, width=640)
    assert sorted(round(t.box[0]) for t in tracks) == [300, 590]  # 15 px of 200 at the edge: left out
    assert len(Tracker().update(frame([at_edge, inside, wide]), 0)) == 3  # no frame size: no rule
    assert len(Tracker(edge_sliver=0.0).update(frame([at_edge]), 0, width=640)) == 1

    # A person who walked out at the right edge: the sliver left behind does not keep their track matched.
    tracker = Tracker()
    for f in range(10):
        tracker.update(frame([_sliver(560.0 + 5 * f, 640.0)]), f, width=640)
    states = [t.state for f in range(10, 15) for t in tracker.update(frame([at_edge]), f, width=640)]
    assert states and all(s == TrackState.LOST for s in states)
