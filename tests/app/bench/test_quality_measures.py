"""The benchmark's quality measures on synthetic tracks, where the right answer is known."""

import numpy as np

from app.bench.events import person_chains, plan_events
from app.bench.metrics import FrameTracks, id_switches, jitter
from app.bench.occluders import render
from app.bench.tracker_adapters import OccluposeTracker
from posecore.types import Poses


def _ft(ids, xs, measured=None, kp=None):
    ids = np.asarray(ids, np.int64)
    boxes = np.array([[x, 10, x + 20, 60] for x in xs], np.float32).reshape(-1, 4)
    if kp is None:
        kp = np.zeros((len(ids), 17, 3), np.float32)
        kp[..., 0] = np.asarray(xs, np.float32)[:, None] + np.linspace(0, 20, 17)
        kp[..., 1] = np.linspace(10, 60, 17)
        kp[..., 2] = 0.9
    m = np.ones(len(ids), bool) if measured is None else np.asarray(measured, bool)
    return FrameTracks(ids, boxes, kp, m)


def test_id_switches_count_changes_against_the_clean_run():
    clean = [_ft([1, 2], [0 + f, 100 + f]) for f in range(20)]
    same = [_ft([7, 8], [0 + f, 100 + f]) for f in range(20)]  # other numbers, same identities
    compare = np.ones(20, bool)
    assert id_switches(clean, same, compare) == 0
    # person 1 gets a new ID after frame 10; persons swap at frame 15
    stressed = [_ft([7, 8], [f, 100 + f]) if f < 10 else _ft([9, 8], [f, 100 + f]) if f < 15
                else _ft([8, 9], [f, 100 + f]) for f in range(20)]
    assert id_switches(clean, stressed, compare) == 3
    # frames not compared (inside an occlusion) do not count
    covered = np.ones(20, bool)
    covered[10:] = False
    assert id_switches(clean, stressed, covered) == 0


def test_switches_made_on_the_clean_clip_too_do_not_count():
    clean = [_ft([1], [f]) if f < 10 else _ft([2], [f]) for f in range(20)]
    stressed = [_ft([5], [f]) if f < 10 else _ft([6], [f]) for f in range(20)]
    assert id_switches(clean, stressed, np.ones(20, bool)) == 0


def test_unmeasured_tracks_are_ignored():
    clean = [_ft([1], [f]) for f in range(10)]
    stressed = [_ft([1, 3], [f, f], measured=[f < 5, f >= 5]) for f in range(10)]
    assert id_switches(clean, stressed, np.ones(10, bool)) == 1  # 1 -> 3 once; the predicted copy is ignored


def test_jitter_is_zero_for_steady_motion_and_grows_with_noise():
    steady = [_ft([1], [3.0 * f]) for f in range(30)]
    assert jitter(steady).mean < 1e-6 and jitter(steady).samples == 28 * 17
    rng = np.random.default_rng(0)
    noisy = []
    for f in range(30):
        t = _ft([1], [3.0 * f])
        t.keypoints[..., :2] += rng.normal(0, 1.0, t.keypoints[..., :2].shape)
        noisy.append(t)
    j = jitter(noisy)
    # second difference of unit noise: std sqrt(6) per axis, in a box of size sqrt(20 * 50)
    assert 0.05 < j.mean < 0.2


def _walker(frames=80, x0=20.0, speed=2.0, other=True):
    poses = []
    for f in range(frames):
        x = x0 + speed * f
        boxes = [[x, 40, x + 30, 120]]
        if other:
            boxes.append([300, 40, 330, 120])
        kp = np.zeros((len(boxes), 17, 3), np.float32)
        for i, b in enumerate(boxes):
            kp[i, :, 0] = np.linspace(b[0], b[2], 17)
            kp[i, :, 1] = np.linspace(b[1], b[3], 17)
            kp[i, :, 2] = 0.9
        poses.append(Poses(np.array(boxes), np.full(len(boxes), 0.9), kp))
    return poses


def test_person_chains_follow_each_person():
    chains = person_chains(_walker())
    assert sorted(len(c) for c in chains) == [80, 80]


def test_events_do_not_overlap_and_leave_quiet_frames():
    poses = _walker()
    for kind in ("block", "person"):
        plan = plan_events(poses, kind, 6, max_events=10, before=5, after=10)
        assert plan.events
        windows = sorted((e.window.start, e.window.stop) for e in plan.events)
        for (a0, a1), (b0, b1) in zip(windows, windows[1:]):
            assert b0 - 5 > a1 + 10 - 1
        changed = plan.changed(len(poses))
        assert changed.sum() == sum(len(e.window) for e in plan.events)
        for e in plan.events:
            assert e.frames == 6 and e.covered in e.window
            if kind == "person":
                assert e.donor is not None and abs(e.donor[0] - e.covered) > 10


def test_occluders_cover_the_target():
    poses = _walker()  # the other person is the donor of the pasted crop
    image = np.full((200, 400, 3), 255, np.uint8)
    crop = np.zeros((80, 30, 3), np.uint8)
    crop[:] = (0, 0, 200)
    for kind in ("block", "person"):
        plan = plan_events(poses, kind, 6, max_events=1)
        e = plan.events[0]
        for f in range(e.covered, e.covered + e.frames):
            img = image.copy()
            render(img, e, f, crop)
            x1, y1, x2, y2 = np.round(e.boxes[f]).astype(int)
            target = img[y1:y2, x1:x2]
            assert not (target == 255).all(-1).any(), (kind, f)  # nothing of the white target shows
        img = image.copy()
        render(img, e, e.window.stop, crop)  # after the event: untouched
        assert (img == 255).all()


def test_occlupose_tracker_adapter_reports_measured_tracks():
    tr = OccluposeTracker()
    out = []
    for f, p in enumerate(_walker(10)):
        done = tr.update(p, None, f)
        assert len(done) == (0 if f < tr.smoother.lag else 1)  # one frame per frame, once the window is full
        out += done
    out += tr.flush()
    assert len(out) == 10
    assert all(o.measured.all() and len(o.ids) == 2 for o in out)
    assert len({tuple(o.ids) for o in out}) == 1
