"""One rule for file names made from sources, for the batch command and the GUI."""

from app.run.names import safe_stem, source_stem


def test_source_stem_of_files_urls_and_odd_names():
    assert source_stem("videos/clip.final.mp4") == "clip.final"
    assert source_stem("rtsp://cam.local:554/live/stream1") == "stream1"
    assert source_stem("http://10.0.0.7:8080/") == "10.0.0.7"
    assert source_stem("my clip (1).mp4") == "my_clip_1"
    assert source_stem(".hidden.mp4") == "hidden"
    assert source_stem("???.mp4", "session") == "session"


def test_safe_stem_collapses_runs_and_keeps_safe_characters():
    assert safe_stem("camera 0") == "camera_0"
    assert safe_stem("a//b\\c") == "a_b_c"
    assert safe_stem("ok-name_1.2") == "ok-name_1.2"
    assert safe_stem("") == "output"
