import cv2
import numpy as np
import pytest

from posecore.errors import SourceError
from posecore.io.sources import ImageFolderSource, VideoFileSource, open_source
from posecore.io.video_writer import VideoWriter


def _write_clip(path, n=12, size=(64, 48), fps=10):
    w, h = size
    with VideoWriter(path, fps, w, h) as v:
        for i in range(n):
            img = np.zeros((h, w, 3), np.uint8)
            img[:, : (i * 5) % w] = 255  # a moving edge, so frames differ
            v.write(img)


def test_video_roundtrip_keeps_frames_and_rate(tmp_path):
    path = tmp_path / "clip.mp4"
    _write_clip(path, n=12, fps=10)
    src = open_source(str(path))
    assert isinstance(src, VideoFileSource)
    assert src.fps == pytest.approx(10.0)
    frames = list(src)
    assert [f.index for f in frames] == list(range(12))
    assert frames[3].time_s == pytest.approx(0.3, abs=1e-3)
    assert frames[0].image.shape == (48, 64, 3)
    # the moving edge survives encoding: frame 4's white part is about 20 px wide
    assert abs(int((frames[4].image[24, :, 0] > 128).sum()) - 20) <= 3


def test_written_colours_decode_as_written(tmp_path):
    # Flat patches of distinct colours: a swapped channel order or chroma plane would show at once.
    colours = [(0, 0, 255), (0, 255, 0), (255, 0, 0), (40, 160, 220), (128, 128, 128), (250, 250, 250)]
    img = np.zeros((64, 32 * len(colours), 3), np.uint8)
    for i, c in enumerate(colours):
        img[:, 32 * i: 32 * (i + 1)] = c
    path = tmp_path / "colours.mp4"
    with VideoWriter(path, 10, img.shape[1], img.shape[0]) as v:
        for _ in range(3):
            v.write(img)
    decoded = next(iter(open_source(str(path)))).image.astype(int)
    for i, c in enumerate(colours):
        patch = decoded[16:48, 32 * i + 8: 32 * i + 24].reshape(-1, 3).mean(axis=0)
        assert np.abs(patch - np.array(c)).max() < 8, (c, patch.round(1))


def test_odd_sized_frames_are_padded_not_rejected(tmp_path):
    path = tmp_path / "odd.mp4"
    _write_clip(path, n=3, size=(63, 47))
    f = next(iter(open_source(str(path))))
    assert f.image.shape[:2] in {(47, 63), (48, 64)}


def test_real_vp9_video_decodes(shared_data):
    src = open_source(str(shared_data / "videos" / "sports2d_demo.mp4"))
    assert src.codec == "vp9" and src.frame_count == 230
    f = next(iter(src))
    assert f.image.shape == (994, 1768, 3)


@pytest.mark.parametrize("make, msg", [
    (lambda p: None, "no such file"),
    (lambda p: p.write_bytes(b""), "empty file"),
    (lambda p: p.write_text("this is not a video\n" * 50), "cannot read video"),
])
def test_bad_video_files(tmp_path, make, msg):
    p = tmp_path / "bad clip.mp4"
    make(p)
    with pytest.raises(SourceError, match=msg):
        list(open_source(str(p)))


def test_truncated_video_yields_the_frames_before_the_damage(tmp_path):
    path = tmp_path / "clip.mp4"
    _write_clip(path, n=30)
    data = path.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) * 2 // 3])
    frames = list(open_source(str(cut)))
    assert 0 < len(frames) < 30


def test_image_folder_skips_corrupt_images(tmp_path):
    for i in (1, 2, 10):
        cv2.imwrite(str(tmp_path / f"img{i}.png"), np.full((20, 30, 3), i, np.uint8))
    (tmp_path / "img3.png").write_bytes(b"not an image")
    (tmp_path / "notes.txt").write_text("ignored")
    src = open_source(str(tmp_path))
    assert isinstance(src, ImageFolderSource)
    frames = list(src)
    assert [f.name for f in frames] == ["img1.png", "img2.png", "img10.png"]  # natural order
    assert [f.index for f in frames] == [0, 1, 2]
    assert src.skipped == ["img3.png"]


def test_empty_folder_and_missing_path(tmp_path):
    with pytest.raises(SourceError, match="no images"):
        open_source(str(tmp_path))
    with pytest.raises(SourceError, match="no such file"):
        open_source(str(tmp_path / "nope.avi"))


def test_missing_camera_is_a_clear_error():
    with pytest.raises(SourceError, match="no camera at index 57"):
        open_source("57")


def test_url_that_does_not_answer_times_out_quickly():
    import socket
    import time

    # a listening socket that never answers: the open must give up within the timeout
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    t = time.monotonic()
    try:
        with pytest.raises(SourceError, match="cannot open stream"):
            open_source(f"http://127.0.0.1:{port}/live.mp4", timeout_s=1.0)
    finally:
        srv.close()
    assert time.monotonic() - t < 15
