"""The Qt face of the worker: a QObject whose signals carry the worker's reports to the window.

The worker runs in a plain Python thread; Qt queues a signal emitted there to the receivers' (GUI)
thread. Frames are coalesced: the worker drops each result into a slot of one and pings the GUI
thread, which takes whatever is newest, so a window that paints slowly skips frames instead of
falling behind.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from PyQt6.QtCore import QObject, QTimer, pyqtSignal

from app.run.names import source_stem
from posecore.draw import DrawOptions
from posecore.errors import OccluposeError

from .cameras import CameraInfo, probe_cameras
from .feeds import SourceOpener
from .latest import LatestSlot
from .recording import RecordingInfo, save_snapshot
from .stats import StatsAccumulator
from .model_settings import PipelineFactory, PipelineSettings, default_pipeline_factory
from .player import ErrorKind, PlayerState, ProcessedFrame
from .worker import WorkerLoop, WorkerOptions


class _SignalEvents:
    """WorkerEvents that emit the service's signals (from the worker thread)."""

    def __init__(self, service: "WorkerService"):
        self._s = service

    def state_changed(self, state: PlayerState) -> None:
        self._s.stateChanged.emit(state)

    def frame_ready(self, frame: ProcessedFrame) -> None:
        self._s._display.put(frame)
        self._s._framePending.emit()

    def error(self, kind: ErrorKind, message: str) -> None:
        self._s.errorOccurred.emit(kind, message)

    def message(self, text: str) -> None:
        self._s.messagePosted.emit(text)

    def recording_finished(self, info: RecordingInfo) -> None:
        self._s.recordingFinished.emit(info)


class WorkerService(QObject):
    stateChanged = pyqtSignal(object)  # PlayerState
    frameDisplayed = pyqtSignal(object)  # ProcessedFrame, the newest one only
    errorOccurred = pyqtSignal(str, str)  # kind, message
    messagePosted = pyqtSignal(str)
    statsUpdated = pyqtSignal(object)  # StatsSnapshot
    recordingFinished = pyqtSignal(object)  # RecordingInfo
    camerasFound = pyqtSignal(object)  # list[CameraInfo]
    _framePending = pyqtSignal()

    def __init__(self, pipeline_factory: PipelineFactory = default_pipeline_factory,
                 source_opener: SourceOpener | None = None,
                 camera_probe: Callable[[], list[CameraInfo]] = probe_cameras,
                 options: WorkerOptions | None = None, stats_interval_ms: int = 500, parent: QObject | None = None):
        super().__init__(parent)
        self.stats = StatsAccumulator()
        self._display: LatestSlot[ProcessedFrame] = LatestSlot()
        self.worker = WorkerLoop(_SignalEvents(self), pipeline_factory, source_opener, self.stats, options)
        self._thread = threading.Thread(target=self.worker.run, name="pipeline-worker", daemon=True)
        self._camera_probe = camera_probe
        self._probe_thread: threading.Thread | None = None
        self._framePending.connect(self._deliver)
        self._timer = QTimer(self)
        self._timer.setInterval(stats_interval_ms)
        self._timer.timeout.connect(self._emit_stats)
        self.last_frame: ProcessedFrame | None = None
        self.state = PlayerState()
        self.stateChanged.connect(self._remember_state)

    # ------------------------------------------------------------------ lifetime
    def start(self) -> None:
        if not self._thread.is_alive():
            self._thread.start()
            self._timer.start()

    def shutdown(self, timeout: float = 30.0) -> bool:
        """Stop the worker (closing the source and any recording) and join its thread; True when it ended."""
        self._timer.stop()
        self.worker.shutdown()
        if self._thread.is_alive():
            self._thread.join(timeout)
        if self._probe_thread is not None:
            self._probe_thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def thread_alive(self) -> bool:
        return self._thread.is_alive()

    # ------------------------------------------------------------------ commands
    def open(self, spec: str, play: bool = True) -> None:
        self.worker.open(spec, play)

    def play(self) -> None:
        self.worker.play()

    def pause(self) -> None:
        self.worker.pause()

    def stop(self) -> None:
        self.worker.stop()

    def seek(self, index: int) -> None:
        self.worker.seek(index)

    def step(self, delta: int) -> None:
        self.worker.step(delta)

    def set_settings(self, settings: PipelineSettings) -> None:
        self.worker.set_settings(settings)

    def set_draw_options(self, options: DrawOptions) -> None:
        self.worker.set_draw_options(options)

    def set_det_threshold(self, value: float) -> None:
        self.worker.set_det_threshold(value)

    def set_realtime(self, realtime: bool) -> None:
        self.worker.set_realtime(realtime)

    def start_recording(self, folder: str | Path, video: bool = True, jsonl: bool = True, csv: bool = True) -> None:
        self.worker.start_recording(folder, video, jsonl, csv)

    def stop_recording(self) -> None:
        self.worker.stop_recording()

    def snapshot(self, folder: str | Path) -> Path | None:
        """Save the frame on screen as PNG; reports a problem through errorOccurred."""
        pf = self.last_frame
        if pf is None:
            self.errorOccurred.emit("output", "no frame to save yet")
            return None
        try:
            path = save_snapshot(pf.image, Path(folder), source_stem(pf.source or "frame", "frame"), pf.index)
        except OccluposeError as e:
            self.errorOccurred.emit("output", str(e))
            return None
        self.messagePosted.emit(f"snapshot saved: {path}")
        return path

    def refresh_cameras(self) -> None:
        if self._probe_thread is not None and self._probe_thread.is_alive():
            return
        self._probe_thread = threading.Thread(target=self._probe, name="camera-probe", daemon=True)
        self._probe_thread.start()

    def _probe(self) -> None:
        try:
            found = self._camera_probe()
        except Exception as e:  # a failing probe only means no camera list
            self.errorOccurred.emit("source", f"cannot list cameras: {type(e).__name__}: {e}")
            found = []
        self.camerasFound.emit(found)

    # ------------------------------------------------------------------ GUI thread
    def _deliver(self) -> None:
        taken = self._display.get(timeout=0)
        if taken is None:
            return  # an earlier ping already delivered this frame
        pf = taken.item
        pf.display_backlog = taken.backlog
        self.last_frame = pf
        self.frameDisplayed.emit(pf)

    def frame_presented(self, pf: ProcessedFrame) -> None:
        """The view painted ``pf``: this closes its capture-to-display latency."""
        if not pf.rerender:
            self.stats.on_displayed(pf.t_capture)

    def _emit_stats(self) -> None:
        self.statsUpdated.emit(self.stats.snapshot())

    def _remember_state(self, state: PlayerState) -> None:
        self.state = state
