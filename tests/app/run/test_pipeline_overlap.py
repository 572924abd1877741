"""Detection workers overlap frames but results come out in frame order, identical to one worker."""

import threading
import time

import numpy as np
import torch

from app.run.pipeline import Pipeline, auto_threads
from posecore.estimators.yolo import YoloPoseEstimator
from posecore.io.sources import Frame
from posecore.types import Detections
from trackers.tracker import Tracker


class _PixelDetector:
    """Reads the person's position from the frame itself, so the answer depends only on the image;
    slower for even frames, so workers finish out of order."""

    thread_safe = True
    device = torch.device("cpu")

    def __init__(self):
        self.active = 0
        self.most = 0
        self._lock = threading.Lock()

    def detect(self, image):
        with self._lock:
            self.active += 1
            self.most = max(self.most, self.active)
        x = float(image[0, 0, 0])
        time.sleep(0.02 if int(x) % 2 == 0 else 0.0)
        with self._lock:
            self.active -= 1
        k = np.stack([np.linspace(x, x + 20, 17), np.linspace(10, 60, 17), np.full(17, 0.9)], 1)
        return Detections(np.array([[x, 10, x + 20, 60]]), np.array([0.9]), k[None])


def _frames(n):
    for i in range(n):
        img = np.zeros((80, 200, 3), np.uint8)
        img[0, 0, 0] = 10 + 2 * i
        yield Frame(i, i / 10, img)


def _run(workers):
    det = _PixelDetector()
    p = Pipeline(det, YoloPoseEstimator(), Tracker(), workers=workers, threads=1)
    out = [(r.index, [(t.track_id, t.keypoints.copy()) for t in r.tracks], r.timings) for r in p.stream(_frames(30))]
    return out, det.most


def test_workers_keep_order_and_results():
    one, most_one = _run(1)
    two, most_two = _run(2)
    assert most_one == 1 and most_two == 2
    assert [i for i, _, _ in two] == list(range(30))
    for (_, a, _), (_, b, _) in zip(one, two):
        assert [t for t, _ in a] == [t for t, _ in b]
        for (_, ka), (_, kb) in zip(a, b):
            np.testing.assert_array_equal(ka, kb)
    for _, _, timings in two:
        assert {"decode", "detect", "pose", "refine", "track", "track_cpu", "wait"} <= set(timings)
        assert 0.0 <= timings["track_cpu"] <= timings["track"] + 1e-3  # one thread's CPU time within its wall time


def test_detector_without_thread_safety_runs_serially():
    class Plain(_PixelDetector):
        thread_safe = False

    det = Plain()
    p = Pipeline(det, YoloPoseEstimator(), Tracker(), workers=4)
    assert p.concurrency[0] == 1
    assert len(list(p.stream(_frames(5)))) == 5 and det.most == 1


def test_abandoned_stream_stops_cleanly():
    """A consumer that stops early: reading stops, the source is closed, and no thread is left behind."""
    read: list[int] = []
    closed = threading.Event()

    def source():
        try:
            for frame in _frames(100):
                read.append(frame.index)
                yield frame
        finally:
            closed.set()

    before = set(threading.enumerate())
    p = Pipeline(_PixelDetector(), YoloPoseEstimator(), Tracker(), workers=2, threads=1)
    gen = p.stream(source())
    for _ in range(3):
        next(gen)
    gen.close()  # workers and the decode thread wind down without hanging
    assert closed.is_set()
    assert [t.name for t in threading.enumerate() if t not in before] == []
    assert 3 <= len(read) < 100


def test_auto_threads_leave_cores_for_decoding_and_encoding():
    assert auto_threads(2, cores=2) == 1
    assert auto_threads(2, cores=4) == 1
    assert auto_threads(2, cores=8) == 3
    assert auto_threads(1, cores=1) == 1


class _ShakyDetector(_PixelDetector):
    """The same person, with the joints shaken by a fixed pattern: something for smoothing to remove."""

    def detect(self, image):
        d = super().detect(image)
        frame = (int(image[0, 0, 0]) - 10) // 2
        d.keypoints[..., 1] += 3.0 * (-1) ** frame
        return d


def test_stream_smooths_with_look_ahead_and_keeps_every_frame():
    def run(lag, workers):
        p = Pipeline(_ShakyDetector(), YoloPoseEstimator(), Tracker(), workers=workers, threads=1, smoothing_lag=lag)
        return [(r.index, r.tracks) for r in p.stream(_frames(30))], p

    causal, _ = run(0, 1)
    for workers in (1, 2):
        lagged, p = run(2, workers)
        assert [i for i, _ in lagged] == list(range(30))  # all frames, in order, the last ones at the end
        assert [[t.track_id for t in ts] for _, ts in lagged] == [[t.track_id for t in ts] for _, ts in causal]
        for (_, a), (_, b) in zip(lagged, causal):
            np.testing.assert_array_equal(a[0].box, b[0].box)
        y = np.array([ts[0].keypoints[:, 1] for _, ts in lagged])
        y0 = np.array([ts[0].keypoints[:, 1] for _, ts in causal])
        acc, acc0 = np.abs(np.diff(y, 2, axis=0)).mean(), np.abs(np.diff(y0, 2, axis=0)).mean()
        assert acc < 0.5 * acc0, (acc, acc0)
        assert p.flush() == []  # nothing left behind
    # A photo has nothing to smooth across: stills pass straight through.
    assert Pipeline(_ShakyDetector(), YoloPoseEstimator(), Tracker(), stills=True, smoothing_lag=2).smoother.lag == 0
