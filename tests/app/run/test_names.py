"""One rule for file names made from sources, for the batch command and the GUI."""

from app.run.names import safe_stem, source_stem


def test_source_stem_of_files_urls_and_odd_names():
    assert source_stem("videos/clip.final.mp4") == "clip.final"
    assert source_stem("rtsp://cam.local:554/live/stream1") == "stream1"
    assert source_stem("http://10.0.0.7:8080/") == "10.0.0.7"
    assert source_stem("my clip (1).mp4") == "my_clip__1_"
    assert source_stem("vidéos/Clip n°1 – copie.mp4") == "Clip_n_1___copie"
    assert source_stem("фото группы") == "фото_группы"
    assert source_stem("", "session") == "session"


def test_safe_stem_replaces_each_unsafe_character():
    assert safe_stem("camera 0") == "camera_0"
    assert safe_stem("a//b\\c") == "a__b_c"
    assert safe_stem("ok-name_1.2") == "ok-name_1.2"
    assert safe_stem("") == "output"
