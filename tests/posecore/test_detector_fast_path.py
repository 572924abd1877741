"""``Detector.detect`` calls Ultralytics' pieces directly (and a frozen graph on CPU): its output must be
what ``YOLO.predict`` gives for the same settings, on real frames of several sizes, also when several
threads detect at once."""

from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import pytest

from posecore.detector import Detector
from posecore.io.sources import open_source
from tests.conftest import SHARED_DATA


@pytest.fixture(scope="module")
def frames(demo_clip) -> list[np.ndarray]:
    """Decoded once for the module; read-only to the tests."""
    frames = []
    for f in open_source(str(demo_clip)):
        if f.index in (0, 30, 60):
            frames.append(f.image)  # 1920x1080
        if f.index >= 60:
            break
    vtest = SHARED_DATA / "videos" / "opencv_vtest.avi"
    if vtest.exists():
        for f in open_source(str(vtest)):
            if f.index in (60, 120):
                frames.append(f.image)  # 480x360
            if f.index >= 120:
                break
    for p in sorted((SHARED_DATA / "coco_sample").glob("*.jpg"))[:2]:
        frames.append(cv2.imread(str(p)))
    for image in frames:
        image.flags.writeable = False
    return frames


def _assert_same(a, b):
    assert len(a) == len(b)
    np.testing.assert_allclose(a.boxes, b.boxes, atol=1e-3)
    np.testing.assert_allclose(a.scores, b.scores, atol=1e-5)
    np.testing.assert_allclose(a.keypoints, b.keypoints, atol=1e-3)


@pytest.mark.parametrize("imgsz", [320, 640])
def test_detect_equals_predict(frames, imgsz):
    det = Detector(imgsz=imgsz, device="cpu")
    found = 0
    for image in frames:
        fast, reference = det.detect(image), det.detect_reference(image)
        _assert_same(fast, reference)
        found += len(fast)
    assert found > 0  # the comparison covered real people


def test_detect_from_several_threads(frames):
    det = Detector(imgsz=320, device="cpu")
    serial = [det.detect(f) for f in frames]
    with ThreadPoolExecutor(3) as pool:
        parallel = list(pool.map(det.detect, frames * 2))
    for a, b in zip(serial * 2, parallel):
        _assert_same(a, b)


def test_eager_path_equals_predict(frames):
    det = Detector(imgsz=320, device="cpu", frozen=False)
    image = frames[0]
    _assert_same(det.detect(image), det.detect_reference(image))
