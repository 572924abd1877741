"""The Qt-free services: the slot of one, statistics, feeds, the worker loop, recording."""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import cv2
import numpy as np
import pytest

from app.services.cameras import probe_cameras
from app.services.feeds import EndOfFeed, FileFeed, LiveFeed, open_feed
from app.services.latest import FifoSlot, LatestSlot, SlotClosed
from app.services.model_settings import PipelineSettings
from app.services.player import Status
from app.services.recording import Recorder, RecordingRequest, save_snapshot
from app.services.render import TrackTable
from app.services.replay import ReplayLiveSource
from app.services.stats import RateMeter, StatsAccumulator
from app.services.worker import WorkerOptions
from posecore.draw import DrawOptions
from posecore.errors import ConfigError, SourceError, WeightsError
from posecore.io.result_writers import read_jsonl
from posecore.io.seek import SeekableVideo
from posecore.io.sources import Frame, VideoFileSource
from tests.gui.fakes import RunningWorkers, fake_pipeline


# ---------------------------------------------------------------------- the slot of one
def test_slot_keeps_only_the_newest():
    slot: LatestSlot[int] = LatestSlot()
    assert slot.get(timeout=0) is None
    assert slot.put(1) is False
    assert slot.put(2) is True  # 1 was never taken
    taken = slot.get(timeout=0)
    assert (taken.item, taken.seq, taken.backlog) == (2, 1, 0)
    assert slot.get(timeout=0) is None  # taken items are gone
    assert slot.replaced == 1
    slot.put(3)
    slot.close()
    assert slot.get(timeout=0).item == 3  # what was left is still delivered
    with pytest.raises(SlotClosed):
        slot.get(timeout=0)


def test_slot_consumer_slower_than_producer_always_gets_the_newest():
    slot: LatestSlot[int] = LatestSlot()
    done = threading.Event()

    def produce():
        for i in range(2000):
            slot.put(i)
            if i % 100 == 0:
                time.sleep(0.001)
        slot.close()
        done.set()

    threading.Thread(target=produce, daemon=True).start()
    got = []
    while True:
        try:
            t = slot.get(timeout=5)
        except SlotClosed:
            break
        assert t.backlog == 0
        got.append(t.item)
        time.sleep(0.002)
    assert done.is_set()
    assert got == sorted(set(got)) and got[-1] == 1999
    assert len(got) + slot.replaced == 2000


# ---------------------------------------------------------------------- statistics
class FakeClock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


def test_stats_rates_drops_latency_and_reset():
    clock = FakeClock()
    stats = StatsAccumulator(clock)
    for i in range(31):  # 30 fps capture, 10 fps processing for one second
        clock.t = 100.0 + i / 30
        stats.on_captured()
        if i % 3 == 0:
            stats.on_processed(people=2, dropped=2 if i else 0)
    stats.on_displayed(t_capture=clock.t - 0.120)
    stats.on_displayed(t_capture=clock.t - 0.080)
    s = stats.snapshot()
    assert s.source_fps == pytest.approx(30.0, rel=1e-3)
    assert s.processed_fps == pytest.approx(10.0, rel=1e-3)
    assert s.dropped == 20 and s.processed == 11 and s.people == 2 and s.displayed == 2
    assert s.latency_ms == pytest.approx(100.0) and s.latency_max_ms == pytest.approx(120.0)
    clock.t += 5.0  # a source that stalls reads 0 fps, not its last rate
    assert stats.snapshot().source_fps == 0.0
    stats.reset(nominal_fps=25.0)
    s = stats.snapshot()
    assert (s.source_fps, s.dropped, s.processed, s.latency_ms) == (25.0, 0, 0, None)


def test_rate_meter_window():
    m = RateMeter(window_s=1.0)
    for i in range(100):
        m.tick(i * 0.1)  # 10 per second
    assert m.rate(9.9) == pytest.approx(10.0)
    assert m.rate(20.0) == 0.0


# ---------------------------------------------------------------------- feeds
def test_seekable_video_matches_sequential_decoding(demo_clip):
    video = SeekableVideo(demo_clip)
    frames = [f.image for f in VideoFileSource(demo_clip)]
    for start in (1, 37, len(frames) - 1):
        it = video.frames(start)
        first, second = next(it), next(it, None)
        assert first.index == start and np.array_equal(first.image, frames[start])
        if second is not None:
            assert second.index == start + 1 and np.array_equal(second.image, frames[start + 1])
    assert list(video.frames(len(frames))) == []


def test_seekable_video_with_the_opencv_fallback(demo_clip):
    """Where PyAV cannot open a file, OpenCV reads it; seeking then goes by frame number."""
    source = VideoFileSource(demo_clip)
    source._backend = "opencv"
    frames = [f.image for f in source]
    video = SeekableVideo(source)
    for start in (5, 40):
        got = list(video.frames(start))
        assert [f.index for f in got] == list(range(start, len(frames)))
        assert np.array_equal(got[0].image, frames[start]) and np.array_equal(got[-1].image, frames[-1])
    assert list(video.frames(len(frames) + 3)) == []


def test_seekable_video_without_trustworthy_timestamps(shared_data):
    """An AVI whose decoded timestamps are out of order: seeking decodes from the start instead."""
    path = shared_data / "videos" / "opencv_vtest.avi"
    if not path.exists():
        pytest.skip("opencv_vtest.avi not available")
    video = SeekableVideo(path)
    it = iter(VideoFileSource(path))
    frames = [next(it).image for _ in range(25)]
    got = next(video.frames(20))
    assert video._timestamps(20) is None  # the fallback was taken
    assert got.index == 20 and np.array_equal(got.image, frames[20])


def test_file_feed_plays_every_frame_unless_realtime(small_clip):
    feed = open_feed(str(small_clip))
    assert isinstance(feed, FileFeed) and feed.seekable and not feed.is_live
    indices = []
    with pytest.raises(EndOfFeed):
        while True:
            c = feed.next(0.05)
            indices.append(c.frame.index)
            time.sleep(0.003)  # slower than nothing, faster than 30 fps: no effect without real time
    assert indices == list(range(40))
    with pytest.raises(EndOfFeed):
        feed.next(0.05)
    feed.seek(35)
    assert feed.next(0.05).frame.index == 35
    feed.close()

    rt = open_feed(str(small_clip), realtime=True)
    indices = []
    try:
        while True:
            c = rt.next(0.05)
            if c is not None:
                indices.append(c.frame.index)
                time.sleep(0.1)  # a consumer at 10 fps against a 30 fps file
    except EndOfFeed:
        pass
    with pytest.raises(EndOfFeed):  # asked again after the end: says so at once, never waits
        rt.next(0.05)
    rt.close()
    assert indices == sorted(indices) and indices[-1] == 39  # ends on the last frame
    # Frames whose time had passed were skipped (a 10 fps consumer against 30 fps: the clip's own time, not
    # 40 x 0.1 s); a slower machine only skips more.
    assert len(indices) < 25 and any(b - a > 1 for a, b in zip(indices, indices[1:]))


def test_live_feed_hands_over_the_newest_frame_and_reports_failure():
    images = [np.full((48, 64, 3), i, np.uint8) for i in range(5)]
    source = ReplayLiveSource(images, fps=200, fail_after=60, name="cam")
    feed = LiveFeed(source)
    got = []
    with pytest.raises(SourceError, match="stopped delivering"):
        while True:
            c = feed.next(0.5)
            if c is not None:
                got.append(c)
                time.sleep(0.03)  # slower than the source
    assert all(c.backlog == 0 for c in got)
    idx = [c.frame.index for c in got]
    assert idx == sorted(set(idx)) and idx[-1] - idx[0] + 1 > len(idx)  # frames were dropped
    feed.close()
    assert not feed.capture_alive


# ---------------------------------------------------------------------- the worker loop
@pytest.fixture
def run_worker():
    workers = RunningWorkers(join_s=10)

    def start(factory=lambda s: fake_pipeline(), opener=None, options=None, feed_opener=None):
        return workers.start(factory, opener, options, feed_opener)

    yield start
    workers.stop_all()


def test_worker_processes_a_file_in_order_and_records_it(run_worker, small_clip, tmp_path):
    worker, ev = run_worker()
    worker.open(str(small_clip))
    worker.start_recording(tmp_path / "rec")
    ev.wait("state", lambda s: s.status == Status.ENDED)
    assert [f.index for f in ev.frames] == list(range(40))
    assert all(f.dropped == 0 and f.backlog == 0 for f in ev.frames)
    assert all(f.t_capture <= f.t_start <= f.t_end for f in ev.frames)
    assert {r.track_id for r in ev.frames[-1].tracks} == {1, 2}
    assert worker.stats.snapshot().processed == 40
    # The recording ends with the file, every output complete.
    assert len(ev.recordings) == 1
    info = ev.recordings[0]
    assert info.frames == 40
    records = list(read_jsonl(info.paths["jsonl"]))
    assert [r["frame"] for r in records] == list(range(40))
    assert {t["id"] for t in records[-1]["tracks"]} == {1, 2}
    rows = info.paths["csv"].read_text().splitlines()
    assert rows[0].startswith("frame,") and len(rows) > 40
    assert VideoFileSource(info.paths["video"]).frame_count == 40


def test_worker_tracks_photos_of_a_folder_each_alone(run_worker, small_clip, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(5):
        cv2.imwrite(str(folder / f"{i:02d}.png"), np.full((240, 320, 3), 30 * i, np.uint8))
    for source, first_ages in ((folder, [0] * 5), (small_clip, [0, 1, 2, 3, 4])):
        worker, ev = run_worker()
        worker.open(str(source))
        ev.wait("state", lambda s: s.status == Status.ENDED)
        # A photo is a fresh start: everyone found is a new track, exactly as detected.
        ages = [max(t.age for t in f.result.tracks) for f in ev.frames[:5]]
        assert ages == first_ages, source


def test_worker_seek_step_and_replay(run_worker, small_clip):
    worker, ev = run_worker()
    worker.open(str(small_clip), play=False)
    assert ev.wait("frame").index == 0  # a paused open shows the first frame
    worker.seek(20)
    assert ev.wait("frame").index == 20
    worker.step(1)
    assert ev.wait("frame").index == 21
    worker.step(-1)
    assert ev.wait("frame").index == 20
    worker.seek(39)
    assert ev.wait("frame").index == 39
    worker.step(1)
    ev.wait("state", lambda s: s.status == Status.ENDED)
    worker.play()  # at the end, play starts over
    assert ev.wait("frame").index == 0


def test_worker_detection_threshold_and_redraw_while_paused(run_worker, small_clip):
    worker, ev = run_worker()
    worker.open(str(small_clip), play=False)
    first = ev.wait("frame")
    assert len(first.result.poses) == 2
    worker.set_det_threshold(0.8)  # the second person scores 0.75
    worker.step(1)
    assert len(ev.wait("frame").result.poses) == 1
    before = ev.frames[-1]
    worker.set_draw_options(DrawOptions(skeleton=False, labels=False, trails=False))
    redraw = ev.wait("frame")
    assert redraw.rerender and redraw.index == before.index
    assert not np.array_equal(redraw.image, before.image)
    assert np.array_equal(redraw.image, before.result.image)  # nothing drawn at all


def test_worker_reports_bad_sources_and_keeps_going(run_worker, small_clip, tmp_path):
    worker, ev = run_worker()
    worker.open(str(tmp_path / "missing.mp4"))
    kind, message = ev.wait("error")
    assert kind == "source" and "missing.mp4" in message
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"this is not a video" * 100)
    worker.open(str(garbage))
    kind, message = ev.wait("error")
    assert kind == "source" and "garbage.mp4" in message
    worker.play()  # nothing open: said so, no crash
    assert "no source open" in ev.wait("error")[1]
    worker.open(str(small_clip))
    ev.wait("state", lambda s: s.status == Status.ENDED)
    assert ev.frames[-1].index == 39


def test_worker_keeps_the_old_model_when_a_new_one_fails(run_worker, small_clip):
    def factory(settings):
        if settings.backend == "dag":
            raise WeightsError(f"cannot load weights {settings.weights}: not a checkpoint")
        return fake_pipeline()

    worker, ev = run_worker(factory)
    worker.open(str(small_clip), play=False)
    ev.wait("frame")
    worker.set_settings(PipelineSettings(backend="dag", weights="/nowhere/bad.ckpt"))
    kind, message = ev.wait("error")
    assert kind == "model" and "bad.ckpt" in message
    worker.set_settings(PipelineSettings(backend="dag"))  # no weights chosen: refused before loading
    assert "weights" in ev.wait("error")[1]
    worker.step(1)
    assert ev.wait("frame").index == 1  # still running on the yolo pipeline
    assert ev.states[-1].model.startswith("yolo")


def test_worker_survives_an_unexpected_pipeline_bug(run_worker, small_clip):
    class Broken:
        skeleton = "coco17"
        stills = False

        def reset(self):
            pass

        def estimate(self, image, timings=None):
            raise RuntimeError("boom")

    fixed = WorkerOptions(settings=PipelineSettings(imgsz=640), poll_s=0.02)  # auto would probe the detector first
    worker, ev = run_worker(lambda s: Broken(), options=fixed)
    worker.open(str(small_clip))
    kind, message = ev.wait("error")
    assert kind == "internal" and "boom" in message
    ev.wait("state", lambda s: s.status == Status.PAUSED)


def _live_run(run_worker, slot_cls, delay_s: float, until):
    """A 30 fps live source, a pipeline slower than it, run until ``until(frames so far)`` holds (a
    condition, not a duration: a loaded machine only takes longer); returns the processed frames and the
    stats."""
    images = [np.full((120, 160, 3), i * 10 % 255, np.uint8) for i in range(20)]
    source = ReplayLiveSource(images, fps=30.0, name="live")
    worker, ev = run_worker(lambda s: fake_pipeline(delay_s),
                            feed_opener=lambda spec, realtime, on_captured: LiveFeed(source, on_captured,
                                                                                     slot=slot_cls()))
    worker.open("live")
    ev.wait("frame", lambda f: until(ev.frames), timeout=300)
    worker.stop()
    ev.wait("state", lambda s: s.status == Status.IDLE)
    return list(ev.frames), worker.stats.snapshot()


def test_live_worker_always_processes_the_newest_frame(run_worker):
    """Ordering, not wall clock: when processing of frame i begins, no newer frame exists, so what is
    shown is never older than one processing interval (plus the wait for the next capture)."""
    frames, stats = _live_run(run_worker, LatestSlot, delay_s=0.08,
                              until=lambda fs: len(fs) >= 5 and any(f.dropped for f in fs))
    assert len(frames) >= 5
    assert all(f.backlog == 0 for f in frames)
    idx = [f.index for f in frames]
    assert idx == sorted(set(idx))
    assert stats.dropped == sum(f.dropped for f in frames) > 0  # the source was faster than the worker


def test_a_fifo_queue_would_fall_behind(run_worker):
    """The same measurement catches a queue that keeps every frame: the backlog grows."""
    frames, _ = _live_run(run_worker, FifoSlot, delay_s=0.08, until=lambda fs: fs[-1].backlog >= 5)
    backlogs = [f.backlog for f in frames]
    assert max(backlogs) >= 5 and backlogs[-1] > backlogs[1]
    assert all(f.dropped == 0 for f in frames)


# ---------------------------------------------------------------------- history, recording, cameras
def test_track_table_time_seen_and_mean_confidence():
    pipe = fake_pipeline()
    table = TrackTable()
    image = np.zeros((240, 320, 3), np.uint8)
    for i in range(10):
        rows = table.update(pipe.process(Frame(i, i / 10, image)))
    assert [r.track_id for r in rows] == [1, 2]
    assert rows[0].seen_s == pytest.approx(0.9)
    assert rows[0].frames == 10
    # 13 joints at 0.9, ankles 0.5; wrists 0.9 for the first 6 frames, then predicted with low confidence.
    assert 0.6 < rows[0].mean_conf < 0.9


def test_recorder_and_snapshot_write_files(tmp_path):
    pipe = fake_pipeline()
    image = np.zeros((241, 321, 3), np.uint8)  # odd sizes: the video writer pads them
    rec = Recorder(RecordingRequest(tmp_path / "out", "s", 10.0))
    for i in range(5):
        result = pipe.process(Frame(i, i / 10, image))
        rec.write(image, result)
    info = rec.stop()
    assert rec.stop().frames == 5  # twice is harmless
    assert len(list(read_jsonl(info.paths["jsonl"]))) == 5
    assert VideoFileSource(info.paths["video"]).frame_count == 5
    a = save_snapshot(image, tmp_path / "snaps", "clip", 3)
    b = save_snapshot(image, tmp_path / "snaps", "clip", 3)
    assert a != b and a.name == "clip_frame000003.png"
    assert cv2.imread(str(b)).shape == image.shape


def test_probe_lists_only_cameras_that_deliver_a_frame():
    class Cam:
        def __init__(self, index):
            if index == 1:
                raise SourceError("no camera at index 1")
            self.index = index

        def __iter__(self):
            if self.index == 2:
                raise SourceError("camera 2 stopped delivering frames")
            yield Frame(0, 0.0, np.zeros((48, 64, 3), np.uint8))

        def close(self):
            pass

    found = probe_cameras(4, opener=Cam)
    assert [(c.index, c.width, c.height) for c in found] == [(0, 64, 48), (3, 64, 48)]


def test_model_panel_selects_the_pair_weights_of_the_dag_backend(qtbot):
    from app.gui.controls import ModelPanel

    panel = ModelPanel()
    qtbot.addWidget(panel)
    emitted = []
    panel.settingsChanged.connect(emitted.append)
    panel.weights.setText("/models/dag.pt")
    panel.pair_weights.setText("/models/pairs.pt")
    panel.backend.setCurrentText("dag")
    assert emitted[-1].pair_weights == "/models/pairs.pt"
    assert emitted[-1].to_config().pose.pair_weights == "/models/pairs.pt"
    assert "pairs.pt" in emitted[-1].describe()
    panel.backend.setCurrentText("yolo")  # only the dag backend has a pair stage
    assert emitted[-1].pair_weights is None and emitted[-1].to_config().pose.pair_weights is None
    panel.set_values(PipelineSettings(backend="dag", weights="/m/d.pt", pair_weights="/m/p.pt"))
    assert panel.pair_weights.text() == "/m/p.pt"


# ---------------------------------------------------------------------- imgsz: auto
def test_auto_input_size_goes_larger_where_the_people_are_small(run_worker, small_clip):
    asked = []

    def factory(settings):
        asked.append(settings)
        return fake_pipeline(height=0.2)  # 48 px of 240: 96 px in a 640 input, under 120: small

    worker, ev = run_worker(factory)
    worker.open(str(small_clip))
    ev.wait("state", lambda s: s.status == Status.ENDED)
    assert [s.chosen for s in asked] == [None, 960]  # built at the base, then at the larger size once
    assert [f.index for f in ev.frames] == list(range(40))  # no frame lost to the change
    assert any(m.startswith("input size 960 (auto: people small at 640") for m in ev.messages)
    assert ev.states[-1].model == "yolo on auto, 960 px (auto), balanced"
    # Another source is measured again, from the base size.
    worker.open(str(small_clip))
    ev.wait("state", lambda s: s.status == Status.ENDED and len(asked) > 2)
    assert [s.chosen for s in asked] == [None, 960, None, 960]


def test_auto_input_size_keeps_the_base_for_large_people_and_photos(run_worker, small_clip, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(3):
        cv2.imwrite(str(folder / f"{i}.jpg"), np.full((240, 320, 3), 60, np.uint8))
    cases = ((small_clip, 0.3, "balanced", "people large enough at 640"),
             (folder, 0.05, "balanced", "still images keep the base size"),
             (small_clip, 0.05, "fast", "quality fast keeps the base size"),  # as --quality fast
             (small_clip, 0.05, "best", "passes.extra: tiles looks at small people already"))
    for source, height, quality, reason in cases:
        asked = []
        options = WorkerOptions(settings=PipelineSettings(quality=quality), poll_s=0.02)
        worker, ev = run_worker(lambda s, h=height: asked.append(s) or fake_pipeline(height=h), options=options)
        worker.open(str(source))
        ev.wait("state", lambda s: s.status == Status.ENDED)
        assert [s.chosen for s in asked] == [None], reason  # one pipeline, at the base size
        assert any(m.startswith(f"input size 640 (auto: {reason}") for m in ev.messages), ev.messages
        assert ev.states[-1].model == f"yolo on auto, 640 px (auto), {quality}"


def test_a_size_given_is_kept_without_measuring(run_worker, small_clip):
    asked = []
    fixed = WorkerOptions(settings=PipelineSettings(imgsz=480), poll_s=0.02)
    worker, ev = run_worker(lambda s: asked.append(s) or fake_pipeline(height=0.05), options=fixed)
    worker.open(str(small_clip))
    ev.wait("state", lambda s: s.status == Status.ENDED)
    assert [(s.imgsz, s.chosen) for s in asked] == [(480, None)]
    assert not any(m.startswith("input size") for m in ev.messages)


def test_pipeline_settings_for_an_auto_size():
    auto = PipelineSettings()
    auto.validate()
    assert auto.imgsz == "auto" and auto.describe() == "yolo on auto, auto size, balanced"
    base = auto.to_config()
    assert base.detector.imgsz == "auto" and base.passes.flips  # the base size keeps the flip test
    larger = replace(auto, chosen=960).to_config()
    assert larger.detector.imgsz == 960 and not larger.passes.flips  # as in batch runs: the size replaces it
    assert replace(auto, chosen=640).to_config().passes.flips
    assert PipelineSettings(imgsz=960).to_config().passes.flips  # a size given keeps it
    for bad in ("huge", 16, True):
        with pytest.raises(ConfigError, match="input size: must be auto or between 32 and 4096"):
            PipelineSettings(imgsz=bad).validate()


def test_pipeline_settings_quality_is_the_command_lines_preset():
    fast = PipelineSettings(quality="fast").to_config().passes
    best = PipelineSettings(quality="best").to_config().passes
    assert not (fast.flips or fast.zoom) and fast.extra == "none"
    assert best.flips and best.zoom and best.extra == "tiles"
    with pytest.raises(ConfigError, match="quality: expected one of"):
        PipelineSettings(quality="superb").validate()
