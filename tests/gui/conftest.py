"""Fixtures of the GUI tests: an offscreen QApplication with PyQt6's own plugins, a window wired to a
worker service with injectable pipeline and sources, and small synthetic clips."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from app.gui.qt_env import use_pyqt_plugins
from tests.gui.fakes import fake_pipeline


@pytest.fixture(scope="session")
def qapp_args():
    # Runs before pytest-qt creates the QApplication: no display needed, and cv2's Qt 5 plugin path
    # must not reach PyQt6.
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    use_pyqt_plugins()
    return ["occlupose-gui-tests"]


@pytest.fixture(scope="session")
def small_clip(tmp_path_factory) -> Path:
    """A 40-frame 320x240 video with a moving pattern (fast to decode and draw)."""
    from posecore.io.video_writer import VideoWriter

    path = tmp_path_factory.mktemp("clips") / "small.mp4"
    with VideoWriter(path, 30.0, 320, 240) as w:
        for i in range(40):
            img = np.full((240, 320, 3), 40, np.uint8)
            img[:, (i * 7) % 320:(i * 7) % 320 + 10] = 200
            w.write(img)
    return path


@pytest.fixture
def fake_factory():
    """A pipeline factory with the synthetic detector; records the settings it was asked for."""

    def factory(settings, delay_s: float = 0.0):
        factory.calls.append(settings)
        return fake_pipeline(delay_s)

    factory.calls = []
    return factory


@pytest.fixture
def make_window(qtbot, tmp_path):
    """make_window(factory=..., opener=..., cameras=[...], settings_file=...) -> MainWindow (closed at the end)."""
    from PyQt6.QtCore import QSettings

    from app.gui.main_window import MainWindow
    from app.services.qt_service import WorkerService

    made = []

    def make(factory, opener=None, cameras=(), settings_file: Path | None = None, source: str | None = None,
             overrides: dict | None = None, stats_interval_ms: int = 100):
        ini = settings_file or tmp_path / "gui.ini"
        qs = QSettings(str(ini), QSettings.Format.IniFormat)
        if settings_file is None and not qs.contains("output_dir"):
            qs.setValue("output_dir", str(tmp_path / "sessions"))
        service = WorkerService(factory, opener, camera_probe=lambda: list(cameras),
                                stats_interval_ms=stats_interval_ms)
        window = MainWindow(service, qs, source, overrides)
        qtbot.addWidget(window)
        window.resize(900, 560)
        window.show()
        made.append(window)
        return window

    yield make
    for w in made:
        w.close()
        assert not w.service.thread_alive
