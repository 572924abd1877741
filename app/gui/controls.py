"""Control panels. Each is a plain widget that shows values and emits signals; none talks to the
worker, the main window wires them to the service."""

from __future__ import annotations

from pathlib import Path

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtWidgets import (QCheckBox, QComboBox, QFileDialog, QFormLayout, QGroupBox, QHBoxLayout, QLabel,
                             QLineEdit, QPushButton, QSlider, QStyle, QToolButton, QVBoxLayout, QWidget)

from app.services.cameras import CameraInfo
from app.services.model_settings import BACKENDS, DEVICES, PipelineSettings
from app.services.player import PlayerState, Status
from posecore.autosize import AUTO
from posecore.draw import DrawOptions
from posecore.multiscale import QUALITY_PRESETS

VIDEO_FILTER = "Videos (*.mp4 *.avi *.mov *.mkv *.webm *.m4v *.mpg *.mpeg *.ts);;All files (*)"
WEIGHTS_FILTER = "Checkpoints (*.pt *.pth *.ckpt);;All files (*)"
IMAGE_SIZES = (320, 416, 480, 640, 960, 1280)


class SourcePanel(QGroupBox):
    """Camera list, file, and stream URL."""

    openRequested = pyqtSignal(str)  # a camera index, a path or a URL
    refreshRequested = pyqtSignal()
    invalidInput = pyqtSignal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__("Source", parent)
        self.camera_combo = QComboBox()
        self.camera_combo.setToolTip("Cameras that opened and delivered a frame")
        self.camera_open = QPushButton("Open camera")
        self.camera_refresh = QToolButton()
        self.camera_refresh.setIcon(self.style().standardIcon(QStyle.StandardPixmap.SP_BrowserReload))
        self.camera_refresh.setToolTip("Look for cameras again")
        self.file_open = QPushButton("Open video file…")
        self.url_edit = QLineEdit()
        self.url_edit.setPlaceholderText("rtsp://host:554/stream or http://…")
        self.url_open = QPushButton("Open URL")
        self.current = QLabel("No source")
        self.current.setWordWrap(True)
        self.last_dir = ""

        cams = QHBoxLayout()
        cams.addWidget(self.camera_combo, 1)
        cams.addWidget(self.camera_refresh)
        url = QHBoxLayout()
        url.addWidget(self.url_edit, 1)
        url.addWidget(self.url_open)
        lay = QVBoxLayout(self)
        lay.addLayout(cams)
        lay.addWidget(self.camera_open)
        lay.addWidget(self.file_open)
        lay.addLayout(url)
        lay.addWidget(self.current)
        self.set_cameras(None)

        self.camera_open.clicked.connect(self._open_camera)
        self.camera_refresh.clicked.connect(self._refresh)
        self.file_open.clicked.connect(self.choose_file)
        self.url_open.clicked.connect(self._open_url)
        self.url_edit.returnPressed.connect(self._open_url)

    def set_cameras(self, cameras: list[CameraInfo] | None) -> None:
        """None: still looking; []: none found."""
        self.camera_combo.clear()
        if not cameras:
            self.camera_combo.addItem("Looking for cameras…" if cameras is None else "No camera found", None)
            self.camera_combo.setEnabled(False)
            self.camera_open.setEnabled(False)
            return
        for cam in cameras:
            self.camera_combo.addItem(cam.label, cam.index)
        self.camera_combo.setEnabled(True)
        self.camera_open.setEnabled(True)

    def select_camera(self, index: int) -> None:
        i = self.camera_combo.findData(index)
        if i >= 0:
            self.camera_combo.setCurrentIndex(i)

    def _refresh(self) -> None:
        self.set_cameras(None)
        self.refreshRequested.emit()

    def _open_camera(self) -> None:
        index = self.camera_combo.currentData()
        if index is not None:
            self.openRequested.emit(str(index))

    def choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open video", self.last_dir, VIDEO_FILTER)
        if path:
            self.last_dir = str(Path(path).parent)
            self.openRequested.emit(path)

    def _open_url(self) -> None:
        url = self.url_edit.text().strip()
        if "://" not in url:
            self.invalidInput.emit("enter a stream URL such as rtsp://host:554/stream or http://host/video.mjpg")
            return
        self.openRequested.emit(url)

    def set_current(self, text: str) -> None:
        self.current.setText(text)


class PlaybackBar(QWidget):
    """Play/pause, stop, frame steps, the seek slider and real-time playback for files."""

    playRequested = pyqtSignal()
    pauseRequested = pyqtSignal()
    stopRequested = pyqtSignal()
    stepRequested = pyqtSignal(int)
    seekRequested = pyqtSignal(int)
    realtimeToggled = pyqtSignal(bool)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        style = self.style()
        self.play_button = QToolButton()
        self.stop_button = QToolButton()
        self.stop_button.setIcon(style.standardIcon(QStyle.StandardPixmap.SP_MediaStop))
        self.stop_button.setToolTip("Stop and close the source")
        self.back_button = QToolButton()
        self.back_button.setIcon(style.standardIcon(QStyle.StandardPixmap.SP_MediaSkipBackward))
        self.back_button.setToolTip("Previous frame")
        self.forward_button = QToolButton()
        self.forward_button.setIcon(style.standardIcon(QStyle.StandardPixmap.SP_MediaSkipForward))
        self.forward_button.setToolTip("Next frame")
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setTracking(False)  # seek when the handle is released, not on every pixel
        self.position = QLabel("–")
        self.position.setMinimumWidth(110)
        self.realtime = QCheckBox("Real-time")
        self.realtime.setToolTip("Files: play at their own rate and skip frames when processing is slower")
        self._playing = False
        self._count: int | None = None

        lay = QHBoxLayout(self)
        lay.setContentsMargins(4, 2, 4, 2)
        for w in (self.play_button, self.stop_button, self.back_button, self.forward_button):
            lay.addWidget(w)
        lay.addWidget(self.slider, 1)
        lay.addWidget(self.position)
        lay.addWidget(self.realtime)

        self.play_button.clicked.connect(self._play_pause)
        self.stop_button.clicked.connect(self.stopRequested)
        self.back_button.clicked.connect(lambda: self.stepRequested.emit(-1))
        self.forward_button.clicked.connect(lambda: self.stepRequested.emit(1))
        self.slider.valueChanged.connect(self.seekRequested)
        self.realtime.toggled.connect(self.realtimeToggled)
        self.set_state(PlayerState())

    @property
    def playing(self) -> bool:
        return self._playing

    def _play_pause(self) -> None:
        (self.pauseRequested if self._playing else self.playRequested).emit()

    def set_state(self, state: PlayerState) -> None:
        self._playing = state.status in (Status.PLAYING, Status.LOADING)
        icon = QStyle.StandardPixmap.SP_MediaPause if self._playing else QStyle.StandardPixmap.SP_MediaPlay
        self.play_button.setIcon(self.style().standardIcon(icon))
        self.play_button.setToolTip("Pause" if self._playing else "Play")
        has_source = state.source is not None
        self.play_button.setEnabled(has_source)
        self.stop_button.setEnabled(has_source)
        for w in (self.back_button, self.forward_button, self.slider):
            w.setEnabled(has_source and state.seekable)
        self.realtime.setEnabled(not state.is_live)
        self.slider.blockSignals(True)
        self.slider.setRange(0, max(0, (state.frame_count or 1) - 1))
        if not has_source:
            self.slider.setValue(0)
            self.position.setText("–")
        self.slider.blockSignals(False)
        self._count = state.frame_count

    def set_position(self, index: int) -> None:
        if not self.slider.isSliderDown():  # the user is dragging: do not pull the handle away
            self.slider.blockSignals(True)
            if index > self.slider.maximum():
                self.slider.setMaximum(index)
            self.slider.setValue(index)
            self.slider.blockSignals(False)
        self.position.setText(f"{index + 1} / {self._count}" if self._count else f"frame {index + 1}")


class OverlayPanel(QGroupBox):
    """What is drawn over the video, and the confidence thresholds."""

    optionsChanged = pyqtSignal(object)  # DrawOptions
    detThresholdChanged = pyqtSignal(float)

    def __init__(self, parent: QWidget | None = None):
        super().__init__("Overlay", parent)
        self.skeleton = QCheckBox("Skeletons")
        self.labels = QCheckBox("ID labels")
        self.boxes = QCheckBox("Boxes")
        self.trails = QCheckBox("Motion trails")
        self.predicted = QCheckBox("Joints predicted through occlusion")
        self.predicted.setToolTip("Drawn as hollow rings on thin bones")
        self.det_slider, self.det_value = self._slider()
        self.kpt_slider, self.kpt_value = self._slider()
        self.det_slider.setToolTip("People scoring below this are ignored (applies from the next frame)")
        self.kpt_slider.setToolTip("Joints below this confidence are not drawn, unless predicted")

        lay = QVBoxLayout(self)
        for w in (self.skeleton, self.labels, self.boxes, self.trails, self.predicted):
            lay.addWidget(w)
            w.toggled.connect(self._emit_options)
        form = QFormLayout()
        form.addRow("Person conf.", _row(self.det_slider, self.det_value))
        form.addRow("Joint conf.", _row(self.kpt_slider, self.kpt_value))
        lay.addLayout(form)
        self.kpt_slider.valueChanged.connect(self._emit_options)
        self.det_slider.valueChanged.connect(self._emit_det)

    @staticmethod
    def _slider() -> tuple[QSlider, QLabel]:
        s = QSlider(Qt.Orientation.Horizontal)
        s.setRange(0, 100)
        s.setSingleStep(1)
        s.setPageStep(5)
        label = QLabel("0.00")
        label.setMinimumWidth(32)
        s.valueChanged.connect(lambda v: label.setText(f"{v / 100:.2f}"))
        return s, label

    def options(self) -> DrawOptions:
        return DrawOptions(skeleton=self.skeleton.isChecked(), boxes=self.boxes.isChecked(),
                           labels=self.labels.isChecked(), trails=self.trails.isChecked(),
                           predicted=self.predicted.isChecked(), kpt_threshold=self.kpt_slider.value() / 100)

    def det_threshold(self) -> float:
        return self.det_slider.value() / 100

    def set_values(self, options: DrawOptions, det_threshold: float) -> None:
        widgets = (self.skeleton, self.labels, self.boxes, self.trails, self.predicted, self.kpt_slider,
                   self.det_slider)
        for w in widgets:
            w.blockSignals(True)
        self.skeleton.setChecked(options.skeleton)
        self.labels.setChecked(options.labels)
        self.boxes.setChecked(options.boxes)
        self.trails.setChecked(options.trails)
        self.predicted.setChecked(options.predicted)
        self.kpt_slider.setValue(round(options.kpt_threshold * 100))
        self.det_slider.setValue(round(det_threshold * 100))
        for w in widgets:
            w.blockSignals(False)
        self.kpt_value.setText(f"{options.kpt_threshold:.2f}")
        self.det_value.setText(f"{det_threshold:.2f}")

    def _emit_options(self) -> None:
        self.optionsChanged.emit(self.options())

    def _emit_det(self) -> None:
        self.detThresholdChanged.emit(self.det_threshold())


class ModelPanel(QGroupBox):
    """Pose backend, its weights, the device and the input size; every change applies at once."""

    settingsChanged = pyqtSignal(object)  # PipelineSettings
    invalidInput = pyqtSignal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__("Model", parent)
        self.backend = QComboBox()
        self.backend.addItems(BACKENDS)
        self.backend.setItemData(0, "YOLO pose head (one pass)", Qt.ItemDataRole.ToolTipRole)
        self.backend.setItemData(1, "Top-down DAG model: needs a checkpoint", Qt.ItemDataRole.ToolTipRole)
        self.weights = QLineEdit()
        self.weights.setPlaceholderText("checkpoint for dag")
        self.weights_browse = QToolButton()
        self.weights_browse.setText("…")
        self.pair_weights = QLineEdit()
        self.pair_weights.setPlaceholderText("dag: CoupleGraph for overlapping pairs (default: inside the weights)")
        self.pair_weights_browse = QToolButton()
        self.pair_weights_browse.setText("…")
        self.device = QComboBox()
        self.device.addItems(DEVICES)
        self.device.setEditable(True)  # cuda:1 and friends
        self.imgsz = QComboBox()
        self.imgsz.addItem("auto (from the first frame)", AUTO)
        for s in IMAGE_SIZES:
            self.imgsz.addItem(f"{s} px", s)
        self.quality = QComboBox()
        self.quality.addItems(QUALITY_PRESETS)
        self.quality.setToolTip("fast: one pass; balanced: + the flip test; best: + zoom-in and tiles (README)")
        self.active = QLabel("Model: not loaded")
        self.active.setWordWrap(True)
        self.last_dir = ""

        form = QFormLayout(self)
        form.addRow("Backend", self.backend)
        form.addRow("Weights", _row(self.weights, self.weights_browse))
        form.addRow("Pair weights", _row(self.pair_weights, self.pair_weights_browse))
        form.addRow("Device", self.device)
        form.addRow("Input size", self.imgsz)
        form.addRow("Quality", self.quality)
        form.addRow(self.active)

        self.backend.currentIndexChanged.connect(self._changed)
        self.device.activated.connect(self._changed)
        self.device.lineEdit().editingFinished.connect(self._changed)
        self.imgsz.currentIndexChanged.connect(self._changed)
        self.quality.currentIndexChanged.connect(self._changed)
        self.weights.editingFinished.connect(self._changed)
        self.weights_browse.clicked.connect(self.choose_weights)
        self.pair_weights.editingFinished.connect(self._changed)
        self.pair_weights_browse.clicked.connect(self.choose_pair_weights)
        self._emitted: PipelineSettings | None = None

    def settings(self) -> PipelineSettings:
        return PipelineSettings(backend=self.backend.currentText(), weights=self.weights.text().strip() or None,
                                device=self.device.currentText().strip() or "auto",
                                imgsz=self.imgsz.currentData() or AUTO, quality=self.quality.currentText(),
                                pair_weights=(self.pair_weights.text().strip() or None)
                                if self.backend.currentText() == "dag" else None)

    def set_values(self, settings: PipelineSettings) -> None:
        for w in (self.backend, self.weights, self.pair_weights, self.device, self.imgsz, self.quality):
            w.blockSignals(True)
        self.backend.setCurrentText(settings.backend)
        self.weights.setText(settings.weights or "")
        self.pair_weights.setText(settings.pair_weights or "")
        self.device.setCurrentText(settings.device)
        i = self.imgsz.findData(settings.imgsz)
        if i < 0:
            self.imgsz.addItem(f"{settings.imgsz} px", settings.imgsz)
            i = self.imgsz.count() - 1
        self.imgsz.setCurrentIndex(i)
        self.quality.setCurrentText(settings.quality)
        for w in (self.backend, self.weights, self.pair_weights, self.device, self.imgsz, self.quality):
            w.blockSignals(False)
        self._emitted = settings

    def choose_weights(self) -> None:
        self._choose(self.weights, "Choose a checkpoint")

    def choose_pair_weights(self) -> None:
        self._choose(self.pair_weights, "Choose a CoupleGraph checkpoint for overlapping pairs")

    def _choose(self, edit: QLineEdit, title: str) -> None:
        path, _ = QFileDialog.getOpenFileName(self, title, self.last_dir, WEIGHTS_FILTER)
        if path:
            self.last_dir = str(Path(path).parent)
            edit.setText(path)
            self._changed()

    def _changed(self) -> None:
        s = self.settings()
        if s.backend == "dag" and not s.weights:
            self.invalidInput.emit("the dag backend needs a weights file: choose one with …")
            return
        if s == self._emitted:
            return
        self._emitted = s
        self.settingsChanged.emit(s)

    def set_active(self, description: str | None) -> None:
        self.active.setText(f"Model: {description}" if description else "Model: not loaded")


class RecordPanel(QGroupBox):
    """Recording the session and saving snapshots."""

    recordRequested = pyqtSignal(bool)
    snapshotRequested = pyqtSignal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__("Record", parent)
        self.folder = QLineEdit()
        self.folder_browse = QToolButton()
        self.folder_browse.setText("…")
        self.video = QCheckBox("Annotated video")
        self.jsonl = QCheckBox("JSONL")
        self.csv = QCheckBox("CSV")
        self.record_button = QPushButton("Record")
        self.record_button.setCheckable(True)
        self.snapshot_button = QPushButton("Snapshot")
        self.status = QLabel("")
        self.status.setWordWrap(True)

        row = QHBoxLayout()
        row.addWidget(self.folder, 1)
        row.addWidget(self.folder_browse)
        kinds = QHBoxLayout()
        for w in (self.video, self.jsonl, self.csv):
            kinds.addWidget(w)
        buttons = QHBoxLayout()
        buttons.addWidget(self.record_button)
        buttons.addWidget(self.snapshot_button)
        lay = QVBoxLayout(self)
        lay.addLayout(row)
        lay.addLayout(kinds)
        lay.addLayout(buttons)
        lay.addWidget(self.status)

        self.folder_browse.clicked.connect(self.choose_folder)
        self.record_button.clicked.connect(self.recordRequested)
        self.snapshot_button.clicked.connect(self.snapshotRequested)

    def choose_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Folder for recordings", self.folder.text())
        if path:
            self.folder.setText(path)

    def output_folder(self) -> Path:
        return Path(self.folder.text().strip() or ".").expanduser()

    def set_recording(self, stem: Path | None) -> None:
        self.record_button.blockSignals(True)
        self.record_button.setChecked(stem is not None)
        self.record_button.setText("Stop recording" if stem is not None else "Record")
        self.record_button.blockSignals(False)
        if stem is not None:
            self.status.setText(f"Recording to {stem}.*")


def _row(main: QWidget, side: QWidget) -> QWidget:
    """One form row of two widgets: ``main`` takes the width (a slider, a path field), ``side`` sits beside
    it (its value, its browse button)."""
    row = QWidget()
    h = QHBoxLayout(row)
    h.setContentsMargins(0, 0, 0, 0)
    h.addWidget(main, 1)
    h.addWidget(side)
    return row
