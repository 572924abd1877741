"""The GUI's worker (app.services, no Qt) under the same faults as the batch job: a camera that
disappears, a stream that stalls, a damaged file, a disk that fills up while recording. Each is
reported as an error event, nothing crashes, the worker stays usable and what it recorded is valid."""

from __future__ import annotations

import time

import pytest

from app.services.player import Status
from posecore.io import result_writers
from posecore.io.result_writers import read_jsonl
from posecore.io.sources import open_source

from tests.gui.fakes import RunningWorkers
from tests.reliability.media import FailingSource, FullDisk, scripted_pipeline, stalling_http_server, write_video


@pytest.fixture
def worker():
    workers = RunningWorkers(join_s=15)
    yield lambda opener=None: workers.start(lambda settings: scripted_pipeline(), opener)
    workers.stop_all()


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return write_video(tmp_path_factory.mktemp("gui") / "walk.mp4", n=30, size=(96, 64))


def _ended(s) -> bool:
    return s.status == Status.ENDED


def test_camera_that_disappears_is_an_error_and_the_worker_goes_on(worker, clip):
    def opener(spec):
        return FailingSource(good=5) if spec == "9" else open_source(spec)

    w, ev = worker(opener)
    w.open("9")
    kind, message = ev.wait("error")
    assert kind == "source" and "camera 9 stopped" in message and "\n" not in message
    assert len(ev.frames) <= 5
    w.open(str(clip))
    ev.wait("state", _ended)
    assert [f.index for f in ev.frames[-30:]] == list(range(30))
    assert not [e for e in ev.errors if e[0] == "internal"]


def test_stalled_stream_is_a_bounded_error(worker, clip):
    w, ev = worker(lambda spec: open_source(spec, timeout_s=1.0))
    with stalling_http_server(b"") as server:
        t = time.monotonic()
        w.open(server.url)
        kind, message = ev.wait("error", timeout=20)
        assert time.monotonic() - t < 15
    assert kind == "source" and "no data for 1 s" in message
    w.open(str(clip))
    ev.wait("state", _ended)


def test_damaged_file_plays_its_readable_part(worker, clip, tmp_path):
    import av

    # a file whose index comes first, so a cut keeps it and the decoder meets the end of the data
    fast = tmp_path / "fast.mp4"
    out = av.open(str(fast), "w", options={"movflags": "faststart"})
    src = av.open(str(clip))
    stream = out.add_stream("libx264", rate=10)
    stream.width, stream.height, stream.pix_fmt, stream.options = 96, 64, "yuv420p", {"bframes": "0"}
    for f in src.decode(video=0):
        for p in stream.encode(av.VideoFrame.from_ndarray(f.to_ndarray(format="bgr24"), format="bgr24")):
            out.mux(p)
    for p in stream.encode(None):
        out.mux(p)
    out.close()
    src.close()
    data = fast.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.7)])
    w, ev = worker()
    w.open(str(cut))
    ev.wait("state", lambda s: s.status in (Status.ENDED, Status.IDLE))
    assert 0 < len(ev.frames) < 30
    assert [f.index for f in ev.frames] == list(range(len(ev.frames)))
    assert not [e for e in ev.errors if e[0] == "internal"], ev.errors


def test_disk_full_while_recording_stops_the_recording_not_the_playback(worker, clip, tmp_path, monkeypatch):
    real = result_writers._open_append

    def opener(path):
        f = real(path)
        return FullDisk(f, 6000) if path.name.endswith(".jsonl") else f

    monkeypatch.setattr(result_writers, "_open_append", opener)
    w, ev = worker()
    w.open(str(clip), play=False)
    ev.wait("state", lambda s: s.status == Status.PAUSED or s.frame_count)
    w.start_recording(tmp_path / "rec")
    w.play()
    kind, message = ev.wait("error")
    assert kind == "output" and "No space left on device" in message and "\n" not in message
    ev.wait("state", _ended)
    assert [f.index for f in ev.frames][-1] == 29  # playback went on to the end
    jsonl = next((tmp_path / "rec").glob("*.jsonl"))
    recs = list(read_jsonl(jsonl))
    assert recs and [r["frame"] for r in recs] == list(range(recs[0]["frame"], recs[0]["frame"] + len(recs)))
