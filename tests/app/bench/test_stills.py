"""Still images: through the tracker, every person comes out exactly as detected, so keypoint AP of the
tracked output equals the detector's own."""

import numpy as np
import pytest
import torch

from app.bench.stills import still_image_ap
from app.run.pipeline import Pipeline
from posecore.estimators.yolo import YoloPoseEstimator
from posecore.io.sources import Frame
from posecore.types import Detections
from tests.conftest import shared_path
from trackers.tracker import Tracker


class _Jumpy:
    """Unrelated photos: a person at nearly the same place, in a different pose each time."""

    thread_safe = True
    device = torch.device("cpu")

    def detect(self, image):
        i = int(image[0, 0, 0])
        rng = np.random.default_rng(i)
        k = np.concatenate([rng.uniform(50, 90, (17, 2)), np.full((17, 1), 0.9)], 1)
        return Detections(np.array([[50, 50, 90, 90]]), np.array([0.3 + 0.05 * i]), k[None])


def test_stills_mode_reports_every_person_as_detected():
    frames = []
    for i in range(6):
        img = np.zeros((120, 120, 3), np.uint8)
        img[0, 0, 0] = i
        frames.append(Frame(i, float(i), img, f"p{i}.jpg"))
    det = _Jumpy()
    p = Pipeline(det, YoloPoseEstimator(), Tracker(), stills=True)
    results = list(p.stream(frames))
    assert [r.index for r in results] == list(range(6))
    for r in results:
        raw = det.detect(r.image)
        (t,) = r.tracks
        np.testing.assert_array_equal(t.keypoints, raw.keypoints[0])
        assert t.score == pytest.approx(float(raw.scores[0]))

    # As a video instead, people are not reported as detected in every frame: these low scores never start
    # a track, or a track smooths one pose into the next.
    def as_detected(r) -> bool:
        raw = det.detect(r.image)
        return len(r.tracks) == 1 and np.array_equal(r.tracks[0].keypoints, raw.keypoints[0])

    video = list(Pipeline(det, YoloPoseEstimator(), Tracker()).stream(frames))
    assert len(video) == 6 and not all(as_detected(r) for r in video)


@pytest.mark.slow
def test_keypoint_ap_through_the_tracker_equals_raw():
    from posecore.detector import Detector

    ann = shared_path("coco_sample", "test_coco.json")
    det = Detector(imgsz=640, device="cpu")
    est = YoloPoseEstimator()
    ap = still_image_ap(ann, lambda im: est.estimate(im, det.detect(im)))
    assert ap.images == 4 and ap.people == 12
    assert ap.raw > 0.3
    assert ap.tracked == ap.raw


def test_images_where_nobody_is_found_score_without_error():
    from posecore.types import Poses

    ann = shared_path("coco_sample", "test_coco.json")
    calls = []

    def estimate(image):  # a person on every other image, nobody on the rest
        calls.append(image)
        n = len(calls) % 2
        k = np.tile(np.array([[100.0, 100.0, 0.9]], np.float32), (n, 17, 1))
        return Poses(np.tile(np.float32([[80, 80, 120, 120]]), (n, 1)), np.full(n, 0.9, np.float32), k)

    ap = still_image_ap(ann, estimate)
    assert ap.images == 4 and ap.raw == ap.tracked and 0.0 <= ap.raw < 0.1


class _EdgeSliver:
    """A person the photo's right edge cuts down to a sliver 6 px wide and 80 px tall."""

    thread_safe = True
    device = torch.device("cpu")

    def detect(self, image):
        k = np.stack([np.full(17, 117.0), np.linspace(12, 88, 17), np.full(17, 0.9)], 1)
        return Detections(np.array([[114.0, 10.0, 120.0, 90.0]]), np.array([0.9]), k[None])


def test_a_photo_keeps_a_person_cut_to_a_sliver_by_its_edge():
    frames = [Frame(i, float(i), np.zeros((120, 120, 3), np.uint8), f"p{i}.jpg") for i in range(2)]
    photos = list(Pipeline(_EdgeSliver(), YoloPoseEstimator(), Tracker(), stills=True).stream(frames))
    assert [len(r.tracks) for r in photos] == [1, 1]  # everyone as detected
    video = list(Pipeline(_EdgeSliver(), YoloPoseEstimator(), Tracker()).stream(frames))
    assert [len(r.tracks) for r in video] == [0, 0]  # the tracker's edge_sliver rule
