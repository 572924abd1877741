"""Every bad input gives one clear line on stderr, a non-zero exit, and no traceback.

Most cases run the command in this process (``cli_main``: stderr captured at the file descriptor, so C
libraries' output counts too); two run the real ``python -m app`` (``cli``), for the exit status and
whatever a fresh interpreter prints. A fresh interpreter costs seconds of imports per case.
"""

import numpy as np
import pytest

from posecore.io.video_writer import VideoWriter


def _assert_one_line_error(r, pattern):
    assert r.returncode != 0, r.stdout
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert "Traceback" not in r.stderr, r.stderr
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("occlupose: error:"), lines[0]
    assert pattern in lines[0], lines[0]


def _tiny_clip(path, n):
    with VideoWriter(path, 10, 64, 48) as v:
        for i in range(n):
            v.write(np.full((48, 64, 3), i * 10 % 255, np.uint8))


def test_missing_file(cli, tmp_path):
    _assert_one_line_error(cli("process", tmp_path / "nope.mp4", "-o", tmp_path / "out", "-q"), "no such file")


def test_text_file_named_mp4(cli_main, tmp_path):
    p = tmp_path / "fake.mp4"
    p.write_text("hello\n" * 100)
    _assert_one_line_error(cli_main("process", p, "-o", tmp_path / "out", "-q"), "cannot read video")


def test_truncated_header(cli_main, tmp_path):
    src = tmp_path / "clip.mp4"
    _tiny_clip(src, 20)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(src.read_bytes()[:100])
    r = cli_main("process", cut, "-o", tmp_path / "out", "-q")
    _assert_one_line_error(r, str(cut.name))


def test_zero_byte_video(cli_main, tmp_path):
    p = tmp_path / "empty.avi"
    p.write_bytes(b"")
    _assert_one_line_error(cli_main("process", p, "-o", tmp_path / "out", "-q"), "empty file")


def test_no_camera_at_index(cli_main, tmp_path):
    _assert_one_line_error(cli_main("process", "57", "-o", tmp_path / "out", "-q"), "no camera at index 57")


def test_url_that_does_not_answer(cli_main, tmp_path):
    import socket

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    try:
        r = cli_main("process", f"http://127.0.0.1:{srv.getsockname()[1]}/x.mp4", "-o", tmp_path / "out", "-q",
                     "--set", "detector.device=cpu")
    finally:
        srv.close()
    _assert_one_line_error(r, "cannot open stream")
    assert "no data for 10 s" in r.stderr  # the default timeout ended it


@pytest.mark.parametrize("content, pattern", [
    (None, "weights file not found"),
    (b"\x80\x04garbage that is not a checkpoint", "cannot load YOLO weights"),
])
def test_missing_or_corrupt_detector_weights(cli_main, tmp_path, demo_clip, content, pattern):
    w = tmp_path / "w eights.pt"
    if content is not None:
        w.write_bytes(content)
    r = cli_main("process", demo_clip, "-o", tmp_path / "out", "-q", "--det-weights", w)
    _assert_one_line_error(r, pattern)


def test_unwritable_output_folder(cli_main, tmp_path, demo_clip):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    r = cli_main("process", demo_clip, "-o", blocker / "out", "-q")
    _assert_one_line_error(r, "cannot write to output folder")


@pytest.mark.parametrize("args, pattern", [
    (["--set", "tracker.max_lost=-3"], "tracker.max_lost"),
    (["--set", "detector.imgsz=abc"], "detector.imgsz"),
    (["--set", "detector.colour=1"], "detector.colour: unknown key"),
    (["--conf", "1.5"], "detector.conf"),
    (["--device", "tpu9"], "device"),
    (["--pose", "dag"], "pose.weights"),
])
def test_invalid_settings(cli_main, tmp_path, demo_clip, args, pattern):
    _assert_one_line_error(cli_main("process", demo_clip, "-o", tmp_path / "out", "-q", *args), pattern)


def test_invalid_config_file(cli_main, tmp_path, demo_clip):
    cfg = tmp_path / "my config.yaml"
    cfg.write_text("detector:\n  imgsz: [1, 2]\n")
    r = cli_main("process", demo_clip, "-o", tmp_path / "out", "-q", "--config", cfg)
    _assert_one_line_error(r, "detector.imgsz")


def test_usage_error_is_not_a_traceback(cli):
    r = cli("process")
    assert r.returncode == 2 and "Traceback" not in r.stderr and "usage" in r.stderr


def test_video_with_zero_frames(cli_main, tmp_path):
    import av

    p = tmp_path / "none.mkv"
    with av.open(str(p), "w") as c:  # a valid container with a video stream and not one frame
        s = c.add_stream("mpeg4", rate=10)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        c.start_encoding()
    _assert_one_line_error(cli_main("process", p, "-o", tmp_path / "out", "-q"), "no frames")


@pytest.mark.parametrize("quiet, shown", [(True, False), (False, True)])
def test_the_conversion_note_is_quiet_under_q(quiet, shown, capsys):
    # A first OpenVINO conversion notes how long it took; --quiet keeps a bad input's error the only line.
    import logging

    from app.cli import _setup_logging
    from posecore.runtime.loader import log as runtime_log

    _setup_logging(verbose=False, quiet=quiet)
    runtime_log.info("converted yolo11n-pose.pt to OpenVINO in 1.0 s")
    logging.getLogger("occlupose").error("cannot read video x.mp4")
    err = capsys.readouterr().err.strip().splitlines()
    assert ("converted" in err[0]) is shown and len(err) == 1 + shown
