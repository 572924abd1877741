"""Test doubles for the GUI tests: a fast synthetic detector behind the real Pipeline and Tracker, and
worker events that record what the worker reports."""

from __future__ import annotations

import queue
import threading
import time

import numpy as np
import torch

from app.run.pipeline import Pipeline
from posecore.estimators.yolo import YoloPoseEstimator
from posecore.types import Detections
from trackers.tracker import Tracker

# A standing person in a unit box (x right, y down): COCO-17 order.
_BODY = np.array([
    [0.50, 0.08], [0.45, 0.06], [0.55, 0.06], [0.40, 0.08], [0.60, 0.08],  # nose, eyes, ears
    [0.30, 0.25], [0.70, 0.25], [0.20, 0.42], [0.80, 0.42], [0.15, 0.58], [0.85, 0.58],  # shoulders..wrists
    [0.38, 0.55], [0.62, 0.55], [0.36, 0.76], [0.64, 0.76], [0.35, 0.96], [0.65, 0.96],  # hips..ankles
], np.float32)
WRISTS = (9, 10)
ANKLES = (15, 16)


class FakeDetector:
    """People walking right, one pixel step per call. Ankles score 0.5 (the joint slider hides them
    above 0.5); from ``occlude_from`` calls on, wrists drop out (the tracker predicts them). People are
    ``height`` times the image's height tall."""

    has_pose_head = True
    thread_safe = False
    device = torch.device("cpu")

    def __init__(self, scores=(0.9, 0.75), delay_s: float = 0.0, occlude_from: int = 6, height: float = 0.7):
        self.scores = tuple(scores)
        self.height = height
        self.delay_s = delay_s
        self.occlude_from = occlude_from
        self.calls = 0

    def detect(self, image: np.ndarray) -> Detections:
        if self.delay_s:
            time.sleep(self.delay_s)
        h, w = image.shape[:2]
        n = self.calls
        self.calls += 1
        boxes, kpts = [], []
        for p, _ in enumerate(self.scores):
            bw, bh = 0.18 * w, self.height * h
            x1 = 0.15 * w + p * 0.4 * w + 3.0 * n
            y1 = 0.15 * h
            xy = _BODY * [bw, bh] + [x1, y1]
            conf = np.full((17, 1), 0.9, np.float32)
            conf[list(ANKLES)] = 0.5
            if n >= self.occlude_from:
                conf[list(WRISTS)] = 0.01
            boxes.append([x1, y1, x1 + bw, y1 + bh])
            kpts.append(np.concatenate([xy, conf], 1))
        return Detections(np.array(boxes, np.float32), np.array(self.scores, np.float32),
                          np.array(kpts, np.float32))


def fake_pipeline(delay_s: float = 0.0, scores=(0.9, 0.75), height: float = 0.7) -> Pipeline:
    """The real Pipeline and Tracker with the synthetic detector (no model to load)."""
    return Pipeline(FakeDetector(scores, delay_s, height=height), YoloPoseEstimator(), Tracker())


class RecordingEvents:
    """WorkerEvents that record everything (called from the worker thread); ``wait`` blocks the test
    until a given event arrives."""

    def __init__(self):
        self.states, self.frames, self.errors, self.messages, self.recordings = [], [], [], [], []
        self.q: queue.Queue = queue.Queue()

    def state_changed(self, state):
        self.states.append(state)
        self.q.put(("state", state))

    def frame_ready(self, frame):
        self.frames.append(frame)
        self.q.put(("frame", frame))

    def error(self, kind, message):
        self.errors.append((kind, message))
        self.q.put(("error", (kind, message)))

    def message(self, text):
        self.messages.append(text)

    def recording_finished(self, info):
        self.recordings.append(info)

    def wait(self, what: str, pred=lambda x: True, timeout: float = 30.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                kind, value = self.q.get(timeout=0.1)
            except queue.Empty:
                continue
            if kind == what and pred(value):
                return value
        raise AssertionError(f"no {what} event within {timeout} s")


class RunningWorkers:
    """Starts ``WorkerLoop``s on threads, each with :class:`RecordingEvents`, and stops them all at the
    end (each thread must end within ``join_s``)."""

    def __init__(self, join_s: float):
        self.join_s = join_s
        self.started = []

    def start(self, factory, opener=None, options=None, feed_opener=None):
        from app.services.worker import WorkerLoop, WorkerOptions

        events = RecordingEvents()
        worker = WorkerLoop(events, factory, opener, options=options or WorkerOptions(poll_s=0.02),
                            feed_opener=feed_opener)
        thread = threading.Thread(target=worker.run, daemon=True)
        thread.start()
        self.started.append((worker, thread))
        return worker, events

    def stop_all(self) -> None:
        for worker, thread in self.started:
            worker.shutdown()
            thread.join(self.join_s)
            assert not thread.is_alive()
