"""The window, offscreen: playing, overlays, sources, errors, recording, settings, closing."""

from __future__ import annotations

import os
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from PyQt6.QtCore import QMimeData, QPointF, QSettings, Qt, QUrl
from PyQt6.QtGui import QDropEvent

from app.gui.main import build_parser, create_window, main
from app.gui.qt_env import use_pyqt_plugins
from app.gui.settings import load_settings
from app.services.cameras import CameraInfo
from app.services.model_settings import PipelineSettings, default_pipeline_factory
from app.services.player import Status
from app.services.replay import ReplayLiveSource
from posecore.io.result_writers import read_jsonl
from posecore.io.sources import VideoFileSource, open_source
from tests.conftest import shared_path
from tests.gui.fakes import fake_pipeline


def wait_status(qtbot, window, status: Status, timeout: int = 20_000) -> None:
    qtbot.waitUntil(lambda: window.state.status == status, timeout=timeout)


def wait_frame(qtbot, window, pred=lambda pf: True, timeout: int = 20_000):
    qtbot.waitUntil(lambda: window.view.frame is not None and pred(window.view.frame), timeout=timeout)
    return window.view.frame


def live_opener(fps: float = 30.0, **kwargs):
    """Opens camera indices and rtsp://fake/... as replayed live sources, anything else as usual."""
    images = [np.full((180, 320, 3), 30 + 5 * i, np.uint8) for i in range(30)]

    def opener(spec: str):
        if spec.isdigit() or spec.startswith("rtsp://fake"):
            opener.opened.append(spec)
            return ReplayLiveSource(images, fps=fps, name=f"live-{spec}", **kwargs)
        return open_source(spec)

    opener.opened = []
    return opener


# ---------------------------------------------------------------------- the real thing
@pytest.mark.slow
def test_real_clip_plays_to_the_end_with_results_stats_and_recording(make_window, qtbot, tmp_path):
    clip = shared_path("videos", "mmaction2_demo_skeleton.mp4")
    w = make_window(default_pipeline_factory, overrides={"imgsz": 320, "device": "cpu"})
    shown, stats = [], []
    w.service.frameDisplayed.connect(shown.append)
    w.service.statsUpdated.connect(stats.append)
    with qtbot.waitSignal(w.service.recordingFinished, timeout=180_000) as finished:
        w.open_source(str(clip))
        w.record_panel.record_button.click()
        wait_status(qtbot, w, Status.ENDED, timeout=180_000)
    qtbot.waitUntil(lambda: w.stats_panel.snapshot is not None and w.stats_panel.snapshot.processed == 72)

    # Results: every frame processed in order, the display ending on the last one with skeletons drawn.
    idx = [pf.index for pf in shown]
    assert idx == sorted(set(idx)) and idx[-1] == 71
    last = w.view.frame
    assert last.index == 71 and len(last.result.tracks) >= 2
    assert not np.array_equal(last.image, last.result.image)
    assert w.playback.position.text() == "72 / 72"
    assert sorted(w.track_list.track_ids()) == sorted(t.track_id for t in last.result.tracks)

    # Stats updated while it played.
    s = w.stats_panel.snapshot
    assert s.dropped == 0 and s.people >= 2 and s.latency_ms is not None and s.latency_ms > 0
    assert max(x.processed_fps for x in stats) > 0
    assert s.source_fps == pytest.approx(VideoFileSource(clip).fps)
    assert w.stats_panel.text("processed") == "72" and w.stats_panel.text("dropped") == "0"

    # The recording: the whole session, written with the project's own writers.
    info = finished.args[0]
    records = list(read_jsonl(info.paths["jsonl"]))
    assert [r["frame"] for r in records] == list(range(72))
    assert any(len(r["tracks"]) >= 2 for r in records)
    assert VideoFileSource(info.paths["video"]).frame_count == 72
    assert info.paths["csv"].stat().st_size > 0
    assert not w.record_panel.record_button.isChecked()


# ---------------------------------------------------------------------- overlays
def test_each_toggle_and_slider_changes_the_rendered_frame(make_window, fake_factory, small_clip, qtbot):
    w = make_window(fake_factory)
    w.open_source(str(small_clip))
    wait_frame(qtbot, w, lambda pf: pf.index >= 12)
    w.playback.play_button.click()  # pause
    wait_status(qtbot, w, Status.PAUSED)
    base = w.view.frame.image.copy()
    base_qimage = w.view.image().copy()
    o = w.overlay_panel

    def changed_by(action) -> np.ndarray:
        with qtbot.waitSignal(w.service.frameDisplayed) as blocker:
            action()
        pf = blocker.args[0]
        assert pf.rerender
        return pf.image

    for box in (o.skeleton, o.labels, o.boxes, o.trails, o.predicted):
        toggled = changed_by(box.click)
        assert not np.array_equal(toggled, base), box.text()
        assert w.view.image() != base_qimage, box.text()
        restored = changed_by(box.click)
        assert np.array_equal(restored, base), box.text()  # toggling back gives the same picture

    # Ankles score 0.5: a joint threshold above that hides them.
    hidden = changed_by(lambda: o.kpt_slider.setValue(60))
    assert not np.array_equal(hidden, base)
    assert np.array_equal(changed_by(lambda: o.kpt_slider.setValue(30)), base)

    # The person threshold applies from the next frame: the second person (0.75) goes.
    assert len(w.view.frame.result.poses) == 2
    o.det_slider.setValue(80)
    index = w.view.frame.index
    w.playback.forward_button.click()
    pf = wait_frame(qtbot, w, lambda pf: pf.index == index + 1)
    assert len(pf.result.poses) == 1


# ---------------------------------------------------------------------- sources
def test_bad_sources_show_an_error_and_the_app_stays_usable(make_window, fake_factory, small_clip, qtbot, tmp_path):
    opener = live_opener(fail_after=15)
    w = make_window(fake_factory, opener)
    errors = []
    w.service.errorOccurred.connect(lambda kind, msg: errors.append((kind, msg)))

    w.open_source(str(tmp_path / "missing.mp4"))
    qtbot.waitUntil(lambda: len(errors) == 1)
    assert errors[-1][0] == "source" and "missing.mp4" in errors[-1][1]
    assert "missing.mp4" in w.statusBar().currentMessage()
    assert w.state.status == Status.IDLE and not w.playback.play_button.isEnabled()

    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(os.urandom(5000))
    w.open_source(str(garbage))
    qtbot.waitUntil(lambda: len(errors) == 2)
    assert "garbage.mp4" in errors[-1][1]

    # A camera that is unplugged while playing.
    w.source_panel.url_edit.setText("rtsp://fake/unplugged")
    w.source_panel.url_open.click()
    qtbot.waitUntil(lambda: len(errors) == 3, timeout=10_000)
    assert "stopped delivering frames" in errors[-1][1]
    wait_status(qtbot, w, Status.IDLE)

    # Text that is not a URL is refused before anything is opened.
    w.source_panel.url_edit.setText("not a url")
    w.source_panel.url_open.click()
    assert "stream URL" in w.statusBar().currentMessage()
    assert opener.opened == ["rtsp://fake/unplugged"]

    assert w.error_box is None  # source errors go to the status bar, no dialog in the way
    w.open_source(str(small_clip))
    wait_status(qtbot, w, Status.ENDED)
    assert w.view.frame.index == 39


def test_bad_weights_show_an_error_and_the_old_model_keeps_running(make_window, small_clip, qtbot, tmp_path):
    def factory(settings: PipelineSettings):
        # The real loader for dag (its real error), the fast fake for yolo.
        return default_pipeline_factory(settings) if settings.backend == "dag" else fake_pipeline()

    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"not a checkpoint")
    w = make_window(factory, overrides={"imgsz": 320, "device": "cpu"})
    w.open_source(str(small_clip))
    wait_status(qtbot, w, Status.ENDED)
    assert w.model_panel.active.text().startswith("Model: yolo")

    w.model_panel.weights.setText(str(bad))
    w.model_panel.backend.setCurrentText("dag")  # applies at once
    qtbot.waitUntil(lambda: w.error_box is not None and w.error_box.isVisible(), timeout=120_000)
    assert "bad.ckpt" in w.error_box.text()
    assert w.errors[-1][0] == "model"
    assert w.model_panel.active.text().startswith("Model: yolo")

    w.playback.back_button.click()  # still usable with the old model
    wait_frame(qtbot, w, lambda pf: pf.index == 38)


@pytest.mark.slow
def test_switch_to_the_dag_backend_with_a_weights_file(make_window, qtbot, tmp_path, demo_clip):
    """The real pipeline: yolo first, then the top-down dag model from a checkpoint, without a restart."""
    import torch

    from posecore.models import build_model
    from posecore.weights import save_checkpoint

    torch.manual_seed(0)
    ckpt = save_checkpoint(tmp_path / "tiny_dag.pt",
                           build_model({"name": "dag_hrnet_small", "input_size": [64, 64], "skeleton": "coco17"}))
    w = make_window(default_pipeline_factory, overrides={"imgsz": 320, "device": "cpu"})
    w.open_source(str(demo_clip))
    wait_frame(qtbot, w, lambda pf: pf.index >= 2, timeout=120_000)
    w.playback.play_button.click()
    wait_status(qtbot, w, Status.PAUSED)

    w.model_panel.weights.setText(str(ckpt))
    w.model_panel.backend.setCurrentText("dag")
    qtbot.waitUntil(lambda: w.model_panel.active.text() == "Model: dag (tiny_dag.pt) on cpu, 320 px, balanced",
                    timeout=120_000)
    assert w.errors == []
    index = w.view.frame.index
    w.playback.forward_button.click()
    pf = wait_frame(qtbot, w, lambda pf: pf.index == index + 1, timeout=60_000)
    assert len(pf.result.poses) >= 1 and pf.result.poses.keypoints.shape[1:] == (17, 3)
    assert w.service.worker._pipeline.estimator.__class__.__name__ == "TopDownEstimator"


def test_model_changes_apply_while_playing(make_window, fake_factory, qtbot):
    """A new input size or device rebuilds the pipeline in the worker; frames keep coming."""
    import torch

    def factory(settings):
        if settings.device == "cuda":  # the real device check and its message
            return default_pipeline_factory(settings)
        return fake_factory(settings)

    w = make_window(factory, live_opener())
    w.open_source("0")
    wait_frame(qtbot, w, lambda pf: pf.index >= 3)
    # auto kept the base size for the fake's large people
    qtbot.waitUntil(lambda: w.model_panel.active.text() == "Model: yolo on auto, 640 px (auto), balanced")

    w.model_panel.imgsz.setCurrentIndex(w.model_panel.imgsz.findData(320))
    qtbot.waitUntil(lambda: w.model_panel.active.text() == "Model: yolo on auto, 320 px, balanced")
    assert fake_factory.calls[-1].imgsz == 320
    index = w.view.frame.index
    wait_frame(qtbot, w, lambda pf: pf.index > index + 3)  # still playing, same source
    assert w.state.status == Status.PLAYING

    if not torch.cuda.is_available():
        w.model_panel.device.setCurrentText("cuda")
        w.model_panel.device.activated.emit(w.model_panel.device.currentIndex())
        qtbot.waitUntil(lambda: w.error_box is not None and w.error_box.isVisible(), timeout=60_000)
        assert "CUDA is not available" in w.error_box.text()
        assert w.model_panel.active.text() == "Model: yolo on auto, 320 px, balanced"
        index = w.view.frame.index
        wait_frame(qtbot, w, lambda pf: pf.index > index + 3)


def test_cameras_from_the_list_and_stream_urls_play_live(make_window, fake_factory, qtbot):
    opener = live_opener()
    w = make_window(fake_factory, opener, cameras=[CameraInfo(0, 320, 180)])
    qtbot.waitUntil(lambda: w.source_panel.camera_combo.isEnabled())
    assert w.source_panel.camera_combo.currentText() == "Camera 0 (320x180)"
    w.source_panel.camera_open.click()
    wait_frame(qtbot, w, lambda pf: pf.index >= 5)
    assert w.state.is_live and opener.opened == ["0"]
    assert not w.playback.slider.isEnabled() and not w.playback.realtime.isEnabled()

    w.playback.play_button.click()
    wait_status(qtbot, w, Status.PAUSED)
    w.playback.play_button.click()
    wait_status(qtbot, w, Status.PLAYING)

    w.source_panel.url_edit.setText("rtsp://fake/stream")
    w.source_panel.url_open.click()
    qtbot.waitUntil(lambda: w.state.source == "live-rtsp://fake/stream")
    wait_frame(qtbot, w, lambda pf: pf.source == "live-rtsp://fake/stream")
    w.playback.stop_button.click()
    wait_status(qtbot, w, Status.IDLE)
    assert w.view.frame is None and w.track_list.rowCount() == 0


def test_no_camera_found_is_said(make_window, fake_factory, qtbot):
    w = make_window(fake_factory)
    qtbot.waitUntil(lambda: w.source_panel.camera_combo.currentText() == "No camera found")
    assert not w.source_panel.camera_open.isEnabled()


def test_seek_step_and_drop_a_file(make_window, fake_factory, small_clip, qtbot):
    w = make_window(fake_factory)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(small_clip))])
    drop = QDropEvent(QPointF(20, 20), Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton,
                      Qt.KeyboardModifier.NoModifier)
    w.view.dropEvent(drop)
    assert drop.isAccepted()
    wait_frame(qtbot, w)
    w.playback.play_button.click()
    wait_status(qtbot, w, Status.PAUSED)
    assert w.playback.slider.isEnabled() and w.playback.slider.maximum() == 39

    w.playback.slider.setValue(25)
    wait_frame(qtbot, w, lambda pf: pf.index == 25)
    w.playback.forward_button.click()
    wait_frame(qtbot, w, lambda pf: pf.index == 26)
    assert w.playback.position.text() == "27 / 40"
    w.playback.back_button.click()
    wait_frame(qtbot, w, lambda pf: pf.index == 25)
    assert w.playback.slider.value() == 25


def test_realtime_playback_of_a_file_drops_frames_when_behind(make_window, small_clip, qtbot):
    w = make_window(lambda s: fake_pipeline(delay_s=0.1))
    w.playback.realtime.click()
    qtbot.waitUntil(lambda: w.state.realtime)
    w.open_source(str(small_clip))
    wait_status(qtbot, w, Status.ENDED)
    assert w.view.frame.index == 39
    w.service._emit_stats()
    assert w.stats_panel.snapshot.dropped > 0
    assert w.stats_panel.snapshot.processed + w.stats_panel.snapshot.dropped == 40


# ---------------------------------------------------------------------- live latency
def test_live_display_is_never_older_than_one_processing_interval(make_window, qtbot):
    """A 30 fps live source feeds a worker that needs 70 ms a frame. Checked by ordering: each frame
    shown was the newest captured frame when its processing began (backlog 0) and the newest result
    when the window took it (display backlog 0); so what is on screen was captured at most one source
    period before its processing started."""
    w = make_window(lambda s: fake_pipeline(delay_s=0.07), live_opener(fps=30.0))
    presented = []
    w.view.presented.connect(lambda pf: presented.append((pf, time.perf_counter())))
    w.open_source("0")
    qtbot.waitUntil(lambda: len(presented) >= 15, timeout=30_000)
    # A window that stalls (a slow paint, a busy event loop) skips to the newest result afterwards.
    delivered = []
    w.service.frameDisplayed.connect(delivered.append)
    last_index = w.view.frame.index
    before = w.service.worker.stats.snapshot().processed
    time.sleep(0.6)  # the GUI thread is blocked; the worker goes on
    qtbot.waitUntil(lambda: len(delivered) > 0, timeout=10_000)
    assert w.service.worker.stats.snapshot().processed - before >= 3
    assert delivered[0].display_backlog == 0
    assert delivered[0].index > last_index + 2  # what came meanwhile was never handed to the window
    w.playback.stop_button.click()
    wait_status(qtbot, w, Status.IDLE)

    assert all(pf.backlog == 0 for pf, _ in presented)
    assert all(pf.display_backlog == 0 for pf, _ in presented)
    idx = [pf.index for pf, _ in presented]
    assert idx == sorted(set(idx))
    assert all(pf.t_capture <= pf.t_start <= pf.t_end <= t for pf, t in presented)
    assert sum(pf.dropped for pf, _ in presented) > 0  # the source really was faster
    assert w.stats_panel.text("latency") != "–" or w.service.stats.snapshot().latency_ms is not None


# ---------------------------------------------------------------------- recording, settings, closing
def test_snapshot_saves_the_frame_on_screen(make_window, fake_factory, small_clip, qtbot, tmp_path):
    w = make_window(fake_factory)
    w.record_panel.folder.setText(str(tmp_path / "snaps"))
    w.record_panel.snapshot_button.click()
    assert "no frame" in w.statusBar().currentMessage()
    w.open_source(str(small_clip))
    wait_status(qtbot, w, Status.ENDED)
    w.record_panel.snapshot_button.click()
    files = list((tmp_path / "snaps").glob("*.png"))
    assert [f.name for f in files] == ["small_frame000039.png"]
    assert np.array_equal(cv2.imread(str(files[0])), w.view.frame.image)


def test_settings_persist_between_runs(make_window, fake_factory, qtbot, tmp_path):
    ini = tmp_path / "persist.ini"
    w = make_window(fake_factory, settings_file=ini)
    o = w.overlay_panel
    o.boxes.setChecked(True)
    o.trails.setChecked(False)
    o.det_slider.setValue(42)
    o.kpt_slider.setValue(55)
    w.model_panel.imgsz.setCurrentIndex(w.model_panel.imgsz.findData(320))
    w.model_panel.device.setCurrentText("cpu")
    w.model_panel.quality.setCurrentText("fast")
    w.playback.realtime.setChecked(True)
    w.record_panel.folder.setText(str(tmp_path / "out"))
    w.record_panel.csv.setChecked(False)
    w.source_panel.url_edit.setText("rtsp://camera.local/live")
    w.close()

    saved = load_settings(QSettings(str(ini), QSettings.Format.IniFormat))
    assert (saved.boxes, saved.trails, saved.det_threshold, saved.kpt_threshold) == (True, False, 0.42, 0.55)
    w2 = make_window(fake_factory, settings_file=ini)
    o2 = w2.overlay_panel
    assert o2.boxes.isChecked() and not o2.trails.isChecked()
    assert (o2.det_slider.value(), o2.kpt_slider.value()) == (42, 55)
    assert w2.model_panel.settings() == PipelineSettings(device="cpu", imgsz=320, quality="fast")
    assert w2.playback.realtime.isChecked() and not w2.record_panel.csv.isChecked()
    assert w2.record_panel.output_folder() == tmp_path / "out"
    assert w2.source_panel.url_edit.text() == "rtsp://camera.local/live"
    # The worker got the remembered choices too.
    qtbot.waitUntil(lambda: w2.state.realtime)


def test_garbage_in_the_settings_file_falls_back_to_defaults(make_window, fake_factory, tmp_path):
    ini = tmp_path / "bad.ini"
    ini.write_text("[General]\nimgsz=huge\nbackend=magic\ndet_threshold=nan\nboxes=perhaps\nkpt_threshold=7\n"
                   "quality=superb\n")
    w = make_window(fake_factory, settings_file=ini)
    ms = w.model_panel.settings()
    assert (ms.imgsz, ms.backend, ms.quality) == ("auto", "yolo", "balanced")
    assert w.overlay_panel.det_threshold() == pytest.approx(0.1)
    assert not w.overlay_panel.boxes.isChecked()
    assert w.overlay_panel.kpt_slider.value() == 100


def test_closing_while_live_and_recording_joins_every_thread(make_window, fake_factory, qtbot, tmp_path):
    w = make_window(fake_factory, live_opener())
    w.record_panel.folder.setText(str(tmp_path / "rec"))
    w.open_source("0")
    wait_frame(qtbot, w, lambda pf: pf.index >= 3)
    w.record_panel.record_button.click()
    qtbot.waitUntil(lambda: w.state.recording is not None)
    wait_frame(qtbot, w, lambda pf: pf.index >= 10)
    feed = w.service.worker._feed
    w.close()
    assert not w.service.thread_alive
    assert not feed.capture_alive
    videos = list((tmp_path / "rec").glob("*.mp4"))
    assert len(videos) == 1 and VideoFileSource(videos[0]).frame_count >= 1
    assert len(list(read_jsonl(next((tmp_path / "rec").glob("*.jsonl"))))) >= 1


# ---------------------------------------------------------------------- entry point
def test_command_line_errors_are_one_line(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--imgsz", "7"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "must be auto or between 32 and 4096" in err and "Traceback" not in err


def test_window_from_the_command_line_reports_a_bad_source(qtbot, tmp_path, fake_factory):
    from app.services.qt_service import WorkerService

    args = build_parser().parse_args([str(tmp_path / "nope.mp4"), "--device", "cpu", "--quality", "fast",
                                      "--settings", str(tmp_path / "cli.ini")])
    w = create_window(args, service=WorkerService(fake_factory, camera_probe=list))
    qtbot.addWidget(w)
    try:
        qtbot.waitUntil(lambda: "nope.mp4" in w.statusBar().currentMessage())
        assert (w.model_panel.settings().device, w.model_panel.settings().quality) == ("cpu", "fast")
    finally:
        w.close()
    assert not w.service.thread_alive
    assert (tmp_path / "cli.ini").exists()


def test_cv2_qt_plugin_path_is_dropped_but_a_users_own_is_kept(monkeypatch, tmp_path):
    cv2_plugins = str(Path(cv2.__file__).parent / "qt" / "plugins")
    monkeypatch.setenv("QT_QPA_PLATFORM_PLUGIN_PATH", cv2_plugins)
    monkeypatch.setenv("QT_QPA_FONTDIR", str(tmp_path))
    assert use_pyqt_plugins() == ["QT_QPA_PLATFORM_PLUGIN_PATH"]
    assert "QT_QPA_PLATFORM_PLUGIN_PATH" not in os.environ
    assert os.environ["QT_QPA_FONTDIR"] == str(tmp_path)


def test_the_input_size_setting_reads_auto_or_pixels(tmp_path):
    for text, expected in (("auto", "auto"), ("960", 960), ("7", "auto"), ("huge", "auto")):
        ini = tmp_path / f"{text}.ini"
        ini.write_text(f"[General]\nimgsz={text}\n")
        assert load_settings(QSettings(str(ini), QSettings.Format.IniFormat)).imgsz == expected, text
