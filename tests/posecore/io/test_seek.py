"""Seeking shows the frame playback numbers so: frame ``i`` of ``SeekableVideo.frames(i)`` is the ``i``-th
frame ``VideoFileSource`` yields, also after frames that playback leaves out as damaged."""

from __future__ import annotations

import numpy as np

from posecore.io.seek import SeekableVideo
from posecore.io.sources import VideoFileSource
from tests.reliability.media import damage_packets, write_video


def _assert_seeks_match_playback(path):
    played = list(VideoFileSource(path))
    video = SeekableVideo(path)
    for i in range(len(played)):
        first = next(iter(video.frames(i)))
        assert first.index == i
        assert np.array_equal(first.image, played[i].image), f"seek to {i} shows another frame"
    assert list(video.frames(len(played))) == []
    return played, video


def test_seek_after_a_damaged_frame_shows_the_frame_playback_shows(tmp_path):
    clean = write_video(tmp_path / "clean.mp4", n=24, size=(128, 96))
    path = damage_packets(clean, tmp_path / "damaged.mp4", [10])
    source = VideoFileSource(path)
    played = list(source)
    assert len(played) == 23 and "damaged" in (source.damage or "")  # the damaged frame is left out
    _, video = _assert_seeks_match_playback(path)
    assert video.frame_count == 23


def test_seek_in_a_clean_video(tmp_path):
    path = write_video(tmp_path / "clean.mp4", n=16, size=(128, 96))
    played, video = _assert_seeks_match_playback(path)
    assert len(played) == video.frame_count == 16


def test_a_seek_scans_only_as_far_as_it_goes(tmp_path):
    """A seek near the start of a long video does not wait for the whole file to be indexed."""
    path = write_video(tmp_path / "clean.mp4", n=40, size=(128, 96))
    played = list(VideoFileSource(path))
    video = SeekableVideo(path)
    first = next(iter(video.frames(3)))
    assert first.index == 3 and np.array_equal(first.image, played[3].image)
    assert len(video._pts) < len(played)  # scanned up to the target, not to the end
    later = list(video.frames(30))  # past the scanned part: the scan goes on from where it stopped
    assert [f.index for f in later] == list(range(30, 40))
    assert all(np.array_equal(f.image, played[f.index].image) for f in later)
