import numpy as np

from posecore.draw import DrawOptions, Trails, draw_tracks, track_color
from posecore.types import Track, TrackState


def _track(tid=1, seen=None, state=TrackState.CONFIRMED):
    rng = np.random.default_rng(tid)
    kp = np.zeros((17, 3), np.float32)
    kp[:, 0] = rng.uniform(40, 160, 17)
    kp[:, 1] = rng.uniform(40, 160, 17)
    kp[:, 2] = 0.9
    seen = np.ones(17, bool) if seen is None else seen
    return Track(tid, state, np.array([30, 30, 170, 170], np.float32), 0.9, kp, seen)


def _canvas():
    return np.zeros((200, 200, 3), np.uint8)


def test_colours_differ_between_neighbouring_ids():
    cols = [track_color(i) for i in range(1, 8)]
    assert len(set(cols)) == len(cols)


def test_predicted_joints_are_drawn_differently_from_seen_ones():
    seen_img = draw_tracks(_canvas(), [_track()], options=DrawOptions(labels=False, trails=False))
    pred = _track(seen=np.zeros(17, bool))
    pred_img = draw_tracks(_canvas(), [pred], options=DrawOptions(labels=False, trails=False))
    # hollow rings and thin bones cover fewer pixels than discs and thick bones
    assert 0 < (pred_img.any(-1)).sum() < (seen_img.any(-1)).sum()
    hidden = draw_tracks(_canvas(), [pred], options=DrawOptions(labels=False, trails=False, predicted=False,
                                                                 kpt_threshold=0.95))
    assert hidden.sum() == 0


def test_toggles_change_the_drawing():
    t = _track()
    base = draw_tracks(_canvas(), [t], options=DrawOptions(labels=False, boxes=False, trails=False))
    boxed = draw_tracks(_canvas(), [t], options=DrawOptions(labels=False, boxes=True, trails=False))
    labelled = draw_tracks(_canvas(), [t], options=DrawOptions(labels=True, boxes=False, trails=False))
    assert (boxed != base).any() and (labelled != base).any()
    # the box outline lies on the box edge
    assert boxed[30, 100].any() and not base[30, 100].any()


def test_trails_follow_and_forget_tracks():
    trails = Trails(length=5, forget_after=3)
    t = _track()
    for f in range(10):
        t.box = t.box + np.array([2, 0, 2, 0], np.float32)
        trails.update([t], f)
    pts = list(trails.points(1))
    assert len(pts) == 5 and pts[-1][0] > pts[0][0]
    trails.update([], 20)
    assert list(trails.points(1)) == []
