"""Offline stitching and gap filling (trackers.stitching, trackers.gaps) on synthetic tracks and images."""

from __future__ import annotations

import numpy as np

from posecore.types import Track, TrackState
from trackers.gaps import interpolate
from trackers.stitching import Stitcher, StitchSettings

H, W = 240, 640
SKIN = (90, 120, 160)


def _person(track_id: int, x: float, tsu: int = 0, height: float = 100.0) -> Track:
    """A standing person whose box's left edge is at x (a plausible COCO-17 pose inside it)."""
    box = np.array([x, 60, x + height * 0.4, 60 + height], np.float32)
    cx, top, s = x + height * 0.2, 60.0, height
    pts = [(cx, top + .08 * s)] * 5 + [(cx - .12 * s, top + .25 * s), (cx + .12 * s, top + .25 * s),
                                         (cx - .15 * s, top + .42 * s), (cx + .15 * s, top + .42 * s),
                                         (cx - .16 * s, top + .57 * s), (cx + .16 * s, top + .57 * s),
                                         (cx - .08 * s, top + .55 * s), (cx + .08 * s, top + .55 * s),
                                         (cx - .09 * s, top + .77 * s), (cx + .09 * s, top + .77 * s),
                                         (cx - .09 * s, top + .97 * s), (cx + .09 * s, top + .97 * s)]
    kp = np.concatenate([np.array(pts, np.float32), np.full((17, 1), 0.9, np.float32)], 1)
    lost = tsu > 0
    return Track(track_id, TrackState.LOST if lost else TrackState.CONFIRMED, box, 0.9, kp,
                 np.full(17, not lost), time_since_update=tsu)


def _image(people: list[tuple[float, tuple[int, int, int]]]) -> np.ndarray:
    """A grey frame with each person's box drawn: skin-coloured, with a torso of the given colour."""
    img = np.full((H, W, 3), 128, np.uint8)
    for x, colour in people:
        x = int(x)
        img[60:160, x:x + 40] = SKIN
        img[80:118, x + 4:x + 36] = colour
    return img


def _run(stitcher: Stitcher, frames: list[tuple[list[Track], np.ndarray | None]]) -> list[list[Track]]:
    out = []
    for i, (tracks, image) in enumerate(frames):
        out += [t for _, t in stitcher.push(i, tracks, image)]
    return out + [t for _, t in stitcher.flush()]


RED, BLUE = (30, 30, 200), (200, 60, 20)


def _occlusion(second_colour, second_id: int = 2) -> list[tuple[list[Track], np.ndarray]]:
    """A person walks right 5 px a frame; measured in frames 0-19 (id 1), predicted in 20-22, unseen in
    23-27 (behind something), then measured again from frame 28 under a new id: the same walk."""
    frames = []
    for f in range(40):
        x = 50 + 5 * f
        if f < 20:
            frames.append(([_person(1, x)], _image([(x, RED)])))
        elif f < 28:
            frames.append(([_person(1, 50 + 5 * 19, tsu=f - 19)] if f < 23 else [], _image([])))
        else:
            frames.append(([_person(second_id, x)], _image([(x, second_colour)])))
    return frames


def test_two_tracklets_of_one_person_become_one_id_and_the_gap_is_filled():
    out = _run(Stitcher(StitchSettings(max_gap=15)), _occlusion(RED))
    assert len(out) == 40
    assert all([t.track_id for t in tracks] == [1] for tracks in out)
    for f in range(20, 28):
        (t,) = out[f]
        assert t.state == TrackState.CONFIRMED and not t.seen.any() and t.time_since_update == f - 19
        assert np.allclose(t.box[0], 50 + 5 * f, atol=1e-3)  # on the straight line between the ends


def test_a_different_looking_person_is_not_linked():
    out = _run(Stitcher(StitchSettings(max_gap=15)), _occlusion(BLUE))
    assert {t.track_id for t in out[30]} == {2}
    # The unclosed gap keeps the tracker's own predictions (lost) and nothing more.
    assert [t.state for t in out[21]] == [TrackState.LOST] and out[25] == []


def test_without_images_motion_and_shape_decide():
    frames = [(tracks, None) for tracks, _ in _occlusion(BLUE)]
    out = _run(Stitcher(StitchSettings(max_gap=15)), frames)
    assert {t.track_id for t in out[30]} == {1}


def test_two_people_who_meet_do_not_merge():
    """A walks right, B walks left; they pass each other, A hidden behind B for frames 14-17 (lost);
    both stay measured otherwise under their own ids; and a gap longer than max_gap is not bridged."""
    frames = []
    for f in range(36):
        xa, xb = 100 + 8 * f, 420 - 8 * f
        tracks = [_person(2, xb)]
        if f < 14 or f >= 18:
            tracks.append(_person(1, xa))
        else:
            tracks.append(_person(1, 100 + 8 * 13 + 8 * (f - 13), tsu=f - 13))
        frames.append((tracks, _image([(xa, RED), (xb, BLUE)])))
    out = _run(Stitcher(StitchSettings(max_gap=10)), frames)
    for f, tracks in enumerate(out):
        ids = sorted(t.track_id for t in tracks)
        assert ids == [1, 2], f
        b = next(t for t in tracks if t.track_id == 2)
        assert abs(float(b.box[0]) - (420 - 8 * f)) < 1e-3  # B stays B
    # The tracker closed A's gap itself: its predictions are replaced by the interpolation, marked unseen.
    a = next(t for t in out[15] if t.track_id == 1)
    assert a.state == TrackState.CONFIRMED and not a.seen.any()


def test_gap_longer_than_the_window_is_not_stitched():
    out = _run(Stitcher(StitchSettings(max_gap=5)), _occlusion(RED))
    assert {t.track_id for t in out[30]} == {2}


def test_interpolate_is_linear_and_unseen():
    a, b = _person(3, 100), _person(3, 140)
    mid = interpolate(a, b, 3, 3)
    assert [float(t.box[0]) for t in mid] == [110, 120, 130]
    assert np.allclose(mid[1].keypoints[:, :2], (a.keypoints[:, :2] + b.keypoints[:, :2]) / 2)
    assert all(not t.seen.any() for t in mid)
    assert interpolate(a, b, 0, 3) == []


def test_memory_stays_bounded():
    st = Stitcher(StitchSettings(max_gap=5), forget=10)
    for f in range(500):
        st.push(f, [_person(1000 + f // 3, 50 + (f % 3))], None)  # a new id every 3 frames
    assert len(st._held) <= 6 and len(st._tracklets) <= 10 and len(st._raw_last) <= 12
