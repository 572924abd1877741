"""How old is the frame on screen? The GUI's live path measured end to end, with a FIFO queue beside it.

A clip is replayed as a live camera (frames arrive at --fps whether or not anyone is ready) into the
real window (offscreen unless a display is set), with the real pipeline or a fixed-cost stand-in
(--fake-ms). For every painted frame it records when the frame was captured, when its processing
started and ended, and when it was painted, and checks by ordering (not by a time threshold) that

  1. it was the newest captured frame when its processing began (no newer frame was waiting), and
  2. it was the newest processed frame when the window took it,

so the picture on screen is never older than one processing interval plus the wait for the next
capture and the paint. The same source and pipeline behind a FIFO queue (the naive design) follow,
without a window, to show what the slot of one prevents.

    QT_QPA_PLATFORM=offscreen .venv/bin/python tools/gui_latency.py --seconds 10 --imgsz 320
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from app.gui.qt_env import use_pyqt_plugins


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clip", help="video replayed as the live source (default: the bundled demo clip)")
    p.add_argument("--fps", type=float, default=30.0, help="rate of the live source")
    p.add_argument("--width", type=int, default=960, help="frames are resized to this width (0: as is)")
    p.add_argument("--seconds", type=float, default=10.0, help="how long each run lasts")
    p.add_argument("--fake-ms", type=float, help="a stand-in pipeline that takes this long per frame")
    p.add_argument("--imgsz", type=int, default=320, help="real pipeline: detector input size")
    p.add_argument("--device", default="cpu", help="real pipeline: device")
    p.add_argument("--no-baseline", action="store_true", help="skip the FIFO comparison")
    return p.parse_args(argv)


class _SleepDetector:
    """Finds nobody, after a fixed time: the cost of a pipeline without its variance."""

    has_pose_head = True
    thread_safe = False

    @property
    def device(self):
        import torch

        return torch.device("cpu")

    def __init__(self, seconds: float):
        self.seconds = seconds

    def detect(self, image):
        from posecore.types import Detections

        time.sleep(self.seconds)
        return Detections.empty(17)


def _factory(args):
    from app.services.model_settings import default_pipeline_factory

    if args.fake_ms is None:
        return default_pipeline_factory

    def fake(settings):
        from posecore.estimators.yolo import YoloPoseEstimator
        from app.run.pipeline import Pipeline
        from trackers.tracker import Tracker

        return Pipeline(_SleepDetector(args.fake_ms / 1000), YoloPoseEstimator(), Tracker())

    return fake


def _frames(args) -> list[np.ndarray]:
    from posecore.assets import demo_clip
    from posecore.io.sources import VideoFileSource

    images = []
    for f in VideoFileSource(args.clip or demo_clip()):
        img = f.image
        if args.width and img.shape[1] != args.width:
            h = round(img.shape[0] * args.width / img.shape[1])
            img = cv2.resize(img, (args.width, h), interpolation=cv2.INTER_AREA)
        images.append(img)
    return images


@dataclass
class Row:
    index: int
    dropped: int
    backlog: int
    display_backlog: int
    t_capture: float
    t_start: float
    t_end: float
    t_shown: float


def _ms(values) -> str:
    values = list(values)
    if not values:
        return "n/a"
    return f"median {1000 * statistics.median(values):6.1f} ms, max {1000 * max(values):6.1f} ms"


def run_window(args, images) -> tuple[list[Row], int]:
    """The full path: capture thread, worker, window, paint."""
    from PyQt6.QtCore import QSettings
    from PyQt6.QtWidgets import QApplication

    from app.gui.event_loop import spin_until as spin
    from app.gui.main_window import MainWindow
    from app.services.qt_service import WorkerService
    from app.services.replay import ReplayLiveSource
    from app.services.player import Status

    app = QApplication.instance() or QApplication(sys.argv[:1])
    source = ReplayLiveSource(images, fps=args.fps, name="replayed camera")
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        qs = QSettings(str(Path(tmp) / "gui.ini"), QSettings.Format.IniFormat)
        qs.setValue("imgsz", args.imgsz)
        qs.setValue("device", args.device)
        service = WorkerService(_factory(args), lambda spec: source, camera_probe=list)
        window = MainWindow(service, qs)
        window.resize(1280, 720)
        window.show()

        def shown(pf):
            rows.append(Row(pf.index, pf.dropped, pf.backlog, pf.display_backlog, pf.t_capture, pf.t_start, pf.t_end,
                            time.perf_counter()))

        window.view.presented.connect(shown)
        errors: list[str] = []
        service.errorOccurred.connect(lambda kind, msg: errors.append(msg))
        window.open_source("0")

        spin(lambda: bool(rows) or bool(errors), 300)  # the model loads first
        rows.clear()  # the first frame pays for the model's warm-up
        warm = len(source.capture_times)
        spin(lambda: bool(errors), args.seconds)
        window.playback.stop_button.click()
        spin(lambda: window.state.status == Status.IDLE, 30)
        window.close()
        if errors:
            raise SystemExit(f"gui_latency: {errors[-1]}")
    captured = len(source.capture_times) - warm
    return rows, captured


def run_fifo(args, images) -> list[Row]:
    """The same source and pipeline behind a FIFO queue, without a window (painting adds nothing here)."""
    from app.services.feeds import LiveFeed
    from app.services.latest import FifoSlot
    from app.services.replay import ReplayLiveSource
    from app.services.model_settings import PipelineSettings
    from app.services.worker import WorkerLoop, WorkerOptions

    rows: list[Row] = []

    class Events:
        def state_changed(self, state):
            pass

        def frame_ready(self, pf):
            rows.append(Row(pf.index, pf.dropped, pf.backlog, 0, pf.t_capture, pf.t_start, pf.t_end, time.perf_counter()))

        def error(self, kind, message):
            print(f"fifo run: {message}", file=sys.stderr)

        def message(self, text):
            pass

        def recording_finished(self, info):
            pass

    source = ReplayLiveSource(images, fps=args.fps, name="replayed camera")
    options = WorkerOptions(settings=PipelineSettings(device=args.device, imgsz=args.imgsz))
    worker = WorkerLoop(Events(), _factory(args), options=options,
                        feed_opener=lambda spec, rt, cb: LiveFeed(source, cb, slot=FifoSlot()))
    # Build the model before the source starts, so the queue measures steady state only.
    worker._ensure_pipeline()
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    worker.open("0")
    time.sleep(args.seconds)
    worker.shutdown()
    thread.join(60)
    return rows[1:]


def report(title: str, rows: list[Row], period: float) -> bool:
    print(f"\n{title}: {len(rows)} frames shown")
    if not rows:
        return False
    newest_at_start = all(r.backlog == 0 for r in rows)
    newest_shown = all(r.display_backlog == 0 for r in rows)
    increasing = all(b.index > a.index for a, b in zip(rows, rows[1:]))
    proc = [r.t_end - r.t_start for r in rows]
    print(f"  processing interval      {_ms(proc)}")
    print(f"  capture -> start         {_ms(r.t_start - r.t_capture for r in rows)}   (source period "
          f"{1000 * period:.1f} ms)")
    print(f"  end -> on screen         {_ms(r.t_shown - r.t_end for r in rows)}")
    print(f"  age on screen            {_ms(r.t_shown - r.t_capture for r in rows)}")
    ratio = [(r.t_shown - r.t_capture) / max(p, 1e-6) for r, p in zip(rows, proc)]
    print(f"  age / processing interval median {statistics.median(ratio):.2f}, max {max(ratio):.2f}")
    print(f"  newer frames waiting when processing began: max {max(r.backlog for r in rows)}")
    print(f"  ordering: newest at start {'yes' if newest_at_start else 'NO'}, newest when painted "
          f"{'yes' if newest_shown else 'NO'}, indices increasing {'yes' if increasing else 'NO'}")
    return newest_at_start and newest_shown and increasing


def main(argv=None) -> int:
    args = parse_args(argv)
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    use_pyqt_plugins()
    images = _frames(args)
    period = 1.0 / args.fps
    what = f"stand-in pipeline {args.fake_ms:g} ms" if args.fake_ms is not None else \
        f"real pipeline (yolo, imgsz {args.imgsz}, {args.device})"
    print(f"live source {args.fps:g} fps, {images[0].shape[1]}x{images[0].shape[0]}, {what}, {args.seconds:g} s")
    rows, captured = run_window(args, images)
    ok = report("slot of one (the app)", rows, period)
    # The first row's gap reaches back into the warm-up: not counted.
    print(f"  captured {captured}, processed and shown {len(rows)}, dropped {sum(r.dropped for r in rows[1:])}")
    if not args.no_baseline:
        fifo = run_fifo(args, images)
        report("FIFO queue (for comparison)", fifo, period)
    print("\nresult:", "OK: every frame shown was the newest when processing began and when painted"
          if ok else "FAILED: a frame shown was not the newest")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
