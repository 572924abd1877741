"""The main window: the video, the playback bar, and a side column of panels, wired to the service.

The window only shows things and forwards the user's requests; the worker service does the work.
"""

from __future__ import annotations

from pathlib import Path

from PyQt6.QtCore import QByteArray, QSettings, Qt
from PyQt6.QtGui import QCloseEvent, QKeySequence, QShortcut
from PyQt6.QtWidgets import (QFrame, QLabel, QMainWindow, QMessageBox, QScrollArea, QSplitter, QTabWidget,
                             QVBoxLayout, QWidget)

from app.services.cameras import CameraInfo
from app.services.model_settings import PipelineSettings
from app.services.player import PlayerState, ProcessedFrame, Status
from app.services.qt_service import WorkerService
from app.services.recording import RecordingInfo
from app.services.stats import StatsSnapshot
from posecore.draw import DrawOptions

from .controls import ModelPanel, OverlayPanel, PlaybackBar, RecordPanel, SourcePanel
from .settings import GuiSettings, load_settings, save_settings
from .stats_panel import StatsPanel
from .track_list import TrackList
from .video_view import VideoView

STATUS_TEXT = {
    Status.IDLE: "No source",
    Status.OPENING: "Opening…",
    Status.LOADING: "Loading model…",
    Status.PLAYING: "Playing",
    Status.PAUSED: "Paused",
    Status.ENDED: "End of file",
}


class MainWindow(QMainWindow):
    def __init__(self, service: WorkerService, qsettings: QSettings, source: str | None = None,
                 overrides: dict | None = None):
        super().__init__()
        self.service = service
        self.qsettings = qsettings
        self.settings: GuiSettings = load_settings(qsettings)
        for key, value in (overrides or {}).items():  # command-line choices win over saved ones
            setattr(self.settings, key, value)
        self.errors: list[tuple[str, str]] = []  # (kind, message), newest last
        self.error_box: QMessageBox | None = None
        self.state = PlayerState()
        self.setWindowTitle("occlupose")

        self.view = VideoView()
        self.playback = PlaybackBar()
        self.source_panel = SourcePanel()
        self.model_panel = ModelPanel()
        self.overlay_panel = OverlayPanel()
        self.record_panel = RecordPanel()
        self.stats_panel = StatsPanel()
        self.track_list = TrackList()
        self._layout()
        self._apply_settings_to_widgets()
        self._connect()
        self.status_label = QLabel(STATUS_TEXT[Status.IDLE])
        self.statusBar().addPermanentWidget(self.status_label)

        # Start the worker with the remembered choices; nothing heavy happens until a source plays.
        service.start()
        service.set_settings(self.model_panel.settings())
        service.set_draw_options(self.overlay_panel.options())
        service.set_det_threshold(self.overlay_panel.det_threshold())
        service.set_realtime(self.playback.realtime.isChecked())
        service.refresh_cameras()
        if source is not None:
            self.open_source(source)

    # ------------------------------------------------------------------ building
    def _layout(self) -> None:
        center = QWidget()
        v = QVBoxLayout(center)
        v.setContentsMargins(0, 0, 0, 0)
        v.addWidget(self.view, 1)
        v.addWidget(self.playback)

        # The side column: what one watches (stats, tracks) stays in view; the controls share tabs.
        self.tabs = QTabWidget()
        for title, panel in (("Source", self.source_panel), ("Overlay", self.overlay_panel),
                             ("Model", self.model_panel), ("Record", self.record_panel)):
            panel.setTitle("")  # the tab names it
            panel.setFlat(True)
            page = QWidget()
            lay = QVBoxLayout(page)
            lay.addWidget(panel)
            lay.addStretch(1)
            scroll = QScrollArea()
            scroll.setWidget(page)
            scroll.setWidgetResizable(True)
            scroll.setFrameShape(QFrame.Shape.NoFrame)
            self.tabs.addTab(scroll, title)
        watch = QWidget()
        w = QVBoxLayout(watch)
        w.setContentsMargins(0, 0, 0, 0)
        w.addWidget(self.stats_panel)
        w.addWidget(QLabel("Tracks"))
        w.addWidget(self.track_list, 1)
        side = QSplitter(Qt.Orientation.Vertical)
        side.addWidget(self.tabs)
        side.addWidget(watch)
        side.setStretchFactor(0, 0)
        side.setStretchFactor(1, 1)
        side.setMinimumWidth(320)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(center)
        splitter.addWidget(side)
        splitter.setStretchFactor(0, 1)
        splitter.setStretchFactor(1, 0)
        self.setCentralWidget(splitter)
        self.resize(1280, 760)

    def _apply_settings_to_widgets(self) -> None:
        st = self.settings
        self.model_panel.set_values(PipelineSettings(backend=st.backend, weights=st.weights or None,
                                                     device=st.device, imgsz=st.imgsz, quality=st.quality,
                                                     pair_weights=st.pair_weights or None))
        self.overlay_panel.set_values(DrawOptions(skeleton=st.skeleton, boxes=st.boxes, labels=st.labels,
                                                  trails=st.trails, predicted=st.predicted,
                                                  kpt_threshold=st.kpt_threshold), st.det_threshold)
        self.playback.realtime.blockSignals(True)
        self.playback.realtime.setChecked(st.realtime)
        self.playback.realtime.blockSignals(False)
        self.source_panel.url_edit.setText(st.last_url)
        self.source_panel.last_dir = str(Path(st.last_file).parent) if st.last_file else ""
        self.model_panel.last_dir = str(Path(st.weights).parent) if st.weights else ""
        self.record_panel.folder.setText(st.output_dir)
        self.record_panel.video.setChecked(st.record_video)
        self.record_panel.jsonl.setChecked(st.record_jsonl)
        self.record_panel.csv.setChecked(st.record_csv)
        if st.geometry:
            self.restoreGeometry(QByteArray(st.geometry))
        if st.state:
            self.restoreState(QByteArray(st.state))

    def _connect(self) -> None:
        svc = self.service
        svc.frameDisplayed.connect(self._on_frame)
        svc.stateChanged.connect(self._on_state)
        svc.errorOccurred.connect(self._on_error)
        svc.messagePosted.connect(self._on_message)
        svc.statsUpdated.connect(self._on_stats)
        svc.recordingFinished.connect(self._on_recording_finished)
        svc.camerasFound.connect(self._on_cameras)
        self.view.presented.connect(svc.frame_presented)
        self.view.fileDropped.connect(self.open_source)

        self.source_panel.openRequested.connect(self.open_source)
        self.source_panel.refreshRequested.connect(svc.refresh_cameras)
        self.source_panel.invalidInput.connect(lambda m: self._on_error("input", m))
        self.playback.playRequested.connect(svc.play)
        self.playback.pauseRequested.connect(svc.pause)
        self.playback.stopRequested.connect(svc.stop)
        self.playback.stepRequested.connect(svc.step)
        self.playback.seekRequested.connect(svc.seek)
        self.playback.realtimeToggled.connect(svc.set_realtime)
        self.model_panel.settingsChanged.connect(svc.set_settings)
        self.model_panel.invalidInput.connect(lambda m: self._on_error("input", m))
        self.overlay_panel.optionsChanged.connect(svc.set_draw_options)
        self.overlay_panel.detThresholdChanged.connect(svc.set_det_threshold)
        self.record_panel.recordRequested.connect(self._on_record)
        self.record_panel.snapshotRequested.connect(lambda: svc.snapshot(self.record_panel.output_folder()))

        QShortcut(QKeySequence(Qt.Key.Key_Space), self, activated=self.playback.play_button.click)
        QShortcut(QKeySequence(Qt.Key.Key_Right), self, activated=lambda: svc.step(1))
        QShortcut(QKeySequence(Qt.Key.Key_Left), self, activated=lambda: svc.step(-1))
        QShortcut(QKeySequence.StandardKey.Open, self, activated=self.source_panel.choose_file)

    # ------------------------------------------------------------------ actions
    def open_source(self, spec: str) -> None:
        spec = str(spec).strip()
        if not spec:
            return
        if "://" in spec:
            self.settings.last_url = spec
        elif spec.isdigit():
            self.settings.camera = int(spec)
        else:
            self.settings.last_file = spec
            self.source_panel.last_dir = str(Path(spec).parent)
        self.track_list.set_rows([])
        self.service.open(spec)

    def _on_record(self, start: bool) -> None:
        if start:
            rp = self.record_panel
            if not (rp.video.isChecked() or rp.jsonl.isChecked() or rp.csv.isChecked()):
                self._on_error("input", "choose at least one of video, JSONL and CSV to record")
                rp.set_recording(None)
                return
            self.service.start_recording(rp.output_folder(), rp.video.isChecked(), rp.jsonl.isChecked(),
                                         rp.csv.isChecked())
        else:
            self.service.stop_recording()

    # ------------------------------------------------------------------ reports from the service
    def _on_frame(self, pf: ProcessedFrame) -> None:
        self.view.show_frame(pf)
        if not pf.rerender:
            self.track_list.set_rows(pf.tracks)
            self.playback.set_position(pf.index)

    def _on_state(self, state: PlayerState) -> None:
        self.state = state
        self.playback.set_state(state)
        self.status_label.setText(STATUS_TEXT.get(state.status, str(state.status)))
        self.model_panel.set_active(state.model)
        self.record_panel.set_recording(state.recording)
        if state.source is None:
            self.source_panel.set_current("No source")
            self.setWindowTitle("occlupose")
            if state.status == Status.IDLE:
                self.view.clear()
                self.track_list.set_rows([])
        else:
            kind = "live" if state.is_live else (f"{state.frame_count} frames" if state.frame_count else "file")
            fps = f", {state.fps:.1f} fps" if state.fps else ""
            self.source_panel.set_current(f"{state.source} ({kind}{fps})")
            self.setWindowTitle(f"occlupose – {state.source}")

    def _on_error(self, kind: str, message: str) -> None:
        self.errors.append((kind, message))
        self.statusBar().showMessage(message, 15000)
        if kind in ("model", "internal"):
            # Non-modal: the app keeps running behind it.
            if self.error_box is None:
                self.error_box = QMessageBox(QMessageBox.Icon.Warning, "occlupose", "", parent=self)
                self.error_box.setModal(False)
            self.error_box.setText(message)
            self.error_box.show()

    def _on_message(self, text: str) -> None:
        self.statusBar().showMessage(text, 8000)

    def _on_stats(self, snapshot: StatsSnapshot) -> None:
        self.stats_panel.update_stats(snapshot)

    def _on_recording_finished(self, info: RecordingInfo) -> None:
        self.record_panel.set_recording(None)
        names = ", ".join(p.name for p in info.paths.values())
        self.record_panel.status.setText(f"Saved {info.frames} frames: {names}")

    def _on_cameras(self, cameras: list[CameraInfo]) -> None:
        self.source_panel.set_cameras(cameras)
        self.source_panel.select_camera(self.settings.camera)

    # ------------------------------------------------------------------ closing
    def collect_settings(self) -> GuiSettings:
        st = self.settings
        ms = self.model_panel.settings()
        st.backend, st.weights, st.device, st.imgsz = ms.backend, ms.weights or "", ms.device, ms.imgsz
        st.quality = ms.quality
        st.pair_weights = ms.pair_weights or ""
        o = self.overlay_panel.options()
        st.skeleton, st.labels, st.boxes, st.trails, st.predicted = o.skeleton, o.labels, o.boxes, o.trails, o.predicted
        st.kpt_threshold, st.det_threshold = o.kpt_threshold, self.overlay_panel.det_threshold()
        st.realtime = self.playback.realtime.isChecked()
        st.last_url = self.source_panel.url_edit.text().strip() or st.last_url
        st.output_dir = self.record_panel.folder.text().strip()
        rp = self.record_panel
        st.record_video, st.record_jsonl, st.record_csv = rp.video.isChecked(), rp.jsonl.isChecked(), rp.csv.isChecked()
        st.geometry = bytes(self.saveGeometry())
        st.state = bytes(self.saveState())
        return st

    def closeEvent(self, event: QCloseEvent) -> None:
        save_settings(self.qsettings, self.collect_settings())
        self.statusBar().showMessage("Stopping…")
        self.service.shutdown()
        if self.error_box is not None:
            self.error_box.close()
        event.accept()
