"""Camera-motion compensation: the global motion of a synthetic pan over a real clip, and its use by the
tracker (a person standing still while the camera swings keeps their ID only with it)."""

from __future__ import annotations

import numpy as np
import pytest

from posecore.io.sources import open_source
from posecore.types import Poses
from tests.conftest import shared_path
from trackers.camera_motion import AUTO_FRAMES, CameraMotion
from trackers.tracker import Tracker

CROP_W, CROP_H = 480, 400
PAN = (6, 2)  # the crop window moves this many px per frame: the content moves the other way


def _real_frames(n: int) -> list[np.ndarray]:
    clip = shared_path("mot", "TUD-Stadtmitte", "TUD-Stadtmitte.mp4")
    frames = []
    for f in open_source(str(clip)):
        frames.append(f.image)
        if len(frames) == n:
            return frames
    pytest.skip("clip too short")


def test_pan_of_a_real_clip_is_measured():
    frames = _real_frames(12)
    cam = CameraMotion("on")
    shifts = []
    for k, image in enumerate(frames):
        x, y = PAN[0] * k, PAN[1] * k
        m = cam.warp(np.ascontiguousarray(image[y:y + CROP_H, x:x + CROP_W]))
        if k == 0:
            assert m is None  # nothing to compare with yet
            continue
        assert np.allclose(m[:, :2], np.eye(2), atol=0.01)
        shifts.append(m[:, 2])
    # The people walking in the clip move too; RANSAC keeps to the background.
    assert np.allclose(np.median(shifts, axis=0), [-PAN[0], -PAN[1]], atol=0.5)


def test_auto_mode_stops_measuring_a_still_camera():
    image = _real_frames(1)[0]
    cam = CameraMotion("auto")
    for _ in range(AUTO_FRAMES + 3):
        cam.warp(image)
    assert not cam.active
    assert CameraMotion("off").warp(image) is None


def test_frames_of_another_size_start_afresh():
    """An image folder tracked across its images may change size: no motion between those frames."""
    a, b = _real_frames(2)
    cam = CameraMotion("on")
    assert cam.warp(a) is None
    assert cam.warp(np.ascontiguousarray(b[:300, :400])) is None
    assert cam.warp(np.ascontiguousarray(a[:300, :400])) is not None


def _person(x: float) -> Poses:
    box = np.array([[x, 100, x + 40, 200]], np.float32)
    return Poses(box, np.array([0.9], np.float32), np.zeros((1, 17, 3), np.float32), np.zeros((1, 17), bool))


@pytest.mark.parametrize("compensate", [True, False])
def test_a_camera_swing_keeps_the_id_only_with_compensation(compensate):
    """The person stands still; from frame 5 the camera swings 90 px a frame (more than a person's size)."""
    tr = Tracker(camera_motion="on")
    ids = set()
    for f in range(10):
        pan = 90.0 * max(0, f - 4)
        warp = np.array([[1, 0, 90.0], [0, 1, 0]]) if f >= 5 else np.array([[1, 0, 0.0], [0, 1, 0]])
        tracks = tr.update(_person(100 + pan), f, warp=warp if compensate else None)
        ids |= {t.track_id for t in tracks if t.time_since_update == 0}
    assert (len(ids) == 1) == compensate
