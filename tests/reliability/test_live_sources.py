"""Sources that fail while running: a camera that disappears, a stream that stalls, an image folder with
damaged images. What was written stays valid, the failure is one line, the exit status non-zero."""

from __future__ import annotations

import json
import time

import cv2
import numpy as np
import pytest

from app.process import ProcessOptions, run_process
from app.run.pipeline import Pipeline
from posecore.errors import SourceError
from posecore.io.result_writers import read_jsonl
from posecore.io.sources import ImageFolderSource, StreamSource, open_source

from tests.reliability.conftest import assert_one_line_error
from tests.reliability.media import FailingSource, pattern, scripted_pipeline, stalling_http_server


@pytest.fixture
def scripted(monkeypatch):
    """The command line's pipeline replaced by the scripted one (no network weights needed)."""
    monkeypatch.setattr(Pipeline, "from_config", classmethod(lambda cls, cfg: scripted_pipeline()))


def test_camera_that_disappears_keeps_what_was_written(cli_main, tmp_path, monkeypatch, scripted):
    made: list[FailingSource] = []

    def fake_open(spec, timeout_s=10.0):
        made.append(FailingSource(good=6))
        return made[-1]

    monkeypatch.setattr("app.process.open_source", fake_open)
    out = tmp_path / "cam out"
    r = cli_main("process", "9", "-o", out, "-q")
    line = assert_one_line_error(r, "camera 9 stopped delivering frames", "6 frames before are saved")
    assert str(out) in line
    assert made[0].closed  # the device is released
    recs = list(read_jsonl(out / "camera9.jsonl"))
    assert [r["frame"] for r in recs] == list(range(6))
    assert len(list(open_source(str(out / "camera9.mp4")))) == 6
    # a live source cannot be resumed, so its COCO file is written for what it delivered
    coco = json.loads((out / "camera9.coco.json").read_text())
    assert {c["image_id"] for c in coco} == set(range(6))
    assert len((out / "camera9.csv").read_text().splitlines()) == 1 + 17 * len(coco)


def test_camera_that_fails_at_once(tmp_path):
    with pytest.raises(SourceError, match="camera 9 stopped") as e:
        run_process(ProcessOptions("9", tmp_path, progress=False), scripted_pipeline(), FailingSource(good=0))
    assert "saved" not in str(e.value)


def test_live_source_refuses_resume(tmp_path):
    from posecore.errors import OccluposeError

    with pytest.raises(OccluposeError, match="live"):
        run_process(ProcessOptions("9", tmp_path, resume=True, progress=False), scripted_pipeline(),
                    FailingSource(good=3))


def _ts_clip(n: int = 40) -> bytes:
    """An MPEG-TS byte stream (what a live HTTP source sends), made in memory."""
    import io

    import av

    buf = io.BytesIO()
    out = av.open(buf, "w", format="mpegts")
    s = out.add_stream("libx264", rate=10)
    s.width, s.height, s.pix_fmt, s.options = 64, 48, "yuv420p", {"bframes": "0", "preset": "ultrafast"}
    for i in range(n):
        for p in s.encode(av.VideoFrame.from_ndarray(pattern(i, 64, 48), format="bgr24")):
            out.mux(p)
    for p in s.encode(None):
        out.mux(p)
    out.close()
    return buf.getvalue()


def test_stream_that_stalls_before_any_frame_times_out(cli_main, tmp_path):
    with stalling_http_server(b"") as server:
        r = cli_main("process", server.url, "-o", tmp_path / "o", "-q", "--stream-timeout", "1")
    # Our timeout ended it, not the server giving up later (which would be another error).
    assert_one_line_error(r, "cannot open stream", server.url, "no data for 1 s")
    assert server.connections >= 1


def test_stream_that_stalls_mid_way_keeps_the_frames_before(cli_main, tmp_path, scripted):
    data = _ts_clip(40)
    with stalling_http_server(data[: len(data) // 2]) as server:
        src = StreamSource(server.url, timeout_s=1.0)
        got = 0
        with pytest.raises(SourceError, match="no data for 1 s") as e:  # our timeout, not the server's end
            for _ in src:
                got += 1
        src.close()
        assert 0 < got < 40 and f"after {got} frames" in str(e.value)

        out = tmp_path / "stream"
        r = cli_main("process", server.url, "-o", out, "-q", "--stream-timeout", "1")
    line = assert_one_line_error(r, "stopped after", "no data for 1 s", "saved in")
    recs = list(read_jsonl(out / "live.jsonl"))
    assert recs and f"the {len(recs)} frames before are saved" in line
    assert len(list(open_source(str(out / "live.mp4")))) == len(recs)


def test_stream_timeout_flag_is_checked(cli_main, tmp_path):
    r = cli_main("process", "http://127.0.0.1:9/x", "-o", tmp_path, "--stream-timeout", "0")
    assert_one_line_error(r, "--stream-timeout", "more than 0", prefix="occlupose process: error:")
    assert r.returncode == 2


@pytest.mark.parametrize("damage", ["truncated_jpeg", "truncated_png", "garbage", "empty", "text"])
def test_image_folder_skips_and_reports_a_damaged_image(cli_main, tmp_path, scripted, damage):
    folder = tmp_path / "shots"
    folder.mkdir()
    for i in (1, 2, 4):
        cv2.imwrite(str(folder / f"img{i}.jpg"), pattern(i, 64, 48))
    bad = folder / ("img3.png" if damage == "truncated_png" else "img3.jpg")
    ok, buf = cv2.imencode(bad.suffix, np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8))
    data = buf.tobytes()
    bad.write_bytes({"truncated_jpeg": data[: len(data) // 2], "truncated_png": data[: len(data) // 2],
                     "garbage": b"\xff\xd8\xff" + bytes(200), "empty": b"", "text": b"hello"}[damage])
    r = cli_main("process", folder, "-o", tmp_path / "out", "-q")
    assert r.returncode == 0, r.stderr
    lines = r.lines()  # libjpeg and libpng print on stderr themselves when they meet such files
    assert "Premature end" not in r.stderr and "libpng" not in r.stderr, r.stderr
    assert len(lines) == 1 and "warning" in lines[0] and bad.name in lines[0], r.stderr
    recs = list(read_jsonl(tmp_path / "out" / "shots.jsonl"))
    assert [rec["source"] for rec in recs] == ["img1.jpg", "img2.jpg", "img4.jpg"]
    assert sorted(p.name for p in (tmp_path / "out" / "shots_annotated").iterdir()) == ["img1.jpg", "img2.jpg", "img4.jpg"]


def test_folder_of_only_damaged_images(tmp_path):
    jpeg = cv2.imencode(".jpg", pattern(1, 64, 48))[1].tobytes()
    (tmp_path / "a.jpg").write_bytes(jpeg[:-2])  # only the end-of-image marker missing
    (tmp_path / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(30))
    (tmp_path / "c.jpg").write_bytes(b"\xff\xd8\xff\xe0" + bytes(50))
    src = open_source(str(tmp_path))
    assert isinstance(src, ImageFolderSource)
    with pytest.raises(SourceError, match="no readable images"):
        list(src)
    assert src.skip_reasons == {"a.jpg": "truncated JPEG", "b.png": "truncated PNG", "c.jpg": "damaged JPEG (bad marker)"}


def test_closing_a_stream_while_a_read_is_stuck_is_safe():
    """The prefetch thread may sit in a stalled read when the job ends: close() does not free the
    decoder under it (FFmpeg would crash); the reader frees it when its read times out."""
    import threading

    data = _ts_clip(40)
    with stalling_http_server(data[: len(data) // 2]) as server:
        src = StreamSource(server.url, timeout_s=2.0)
        it = iter(src)
        first = next(it)
        assert first.image.shape == (48, 64, 3)
        ended = []

        def read_on() -> None:
            try:
                for _ in it:
                    pass
                ended.append("end")
            except SourceError as e:
                ended.append(str(e))

        reader = threading.Thread(target=read_on, daemon=True)
        reader.start()
        time.sleep(0.5)  # the reader has used up the data and waits for more
        src.close()
        # No duration is asserted: how soon close() returns depends on the load (and on whether FFmpeg's
        # read lets go of the GIL). What must hold: nothing crashes, and the reader ends, by its own timeout
        # (stuck in the read) or at its next frame (when close came first).
        reader.join(60)
        assert not reader.is_alive() and len(ended) == 1
        assert ended[0] == "end" or "no data for 2 s" in ended[0], ended
        src.close()  # twice is fine
