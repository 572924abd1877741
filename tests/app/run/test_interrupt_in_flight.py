"""An interrupt that catches a frame's results on their way out (waiting for a sink, or between the
smoothing and stitching windows) loses no frame: the outputs hold frames 0..n-1 with none missing, and
that frame's results are the final ones. The synthetic detector behind the real pipeline makes the moment
of the interrupt exact. (That ``--resume`` then gives an uninterrupted run's results, with the real
detector: tests/reliability/test_interrupts.py.)"""

from __future__ import annotations

import os
import signal

import pytest

from app.process import Interrupted, ProcessOptions, run_process
from app.run import sinks
from posecore.io.result_writers import read_jsonl
from posecore.io.sources import open_source
from tests.gui.fakes import fake_pipeline
from trackers.stitching import Stitcher

FRAMES = 30
AT = 20  # the frame the interrupt catches: past the frames held back for smoothing and stitching


def _run(clip, out, video=False):
    opts = ProcessOptions(str(clip), out, video=video, max_frames=FRAMES, progress=False)
    return run_process(opts, fake_pipeline())


@pytest.fixture(scope="module")
def reference(demo_clip, tmp_path_factory):
    out = tmp_path_factory.mktemp("whole")
    _run(demo_clip, out)
    return list(read_jsonl(out / f"{demo_clip.stem}.jsonl"))


def _interrupted(clip, out, reference) -> None:
    with pytest.raises(Interrupted):
        _run(clip, out)
    recs = list(read_jsonl(out / f"{clip.stem}.jsonl"))
    assert len(recs) > AT and [r["frame"] for r in recs] == list(range(len(recs)))
    # Up to the caught frame, the results an uninterrupted run gives (the later ones were smoothed
    # and stitched without the frames after them).
    assert recs[:AT + 1] == reference[:AT + 1]


def test_interrupt_while_a_sink_waits_keeps_the_frame_in_hand(demo_clip, tmp_path, monkeypatch, reference):
    """As when the video encoder is behind: the interrupt arrives in ``reserve``, before any sink has the frame."""
    real = sinks.JsonlSink.reserve
    fired = []

    def reserve(self, result):
        if result.index == AT and not fired:
            fired.append(result.index)
            raise KeyboardInterrupt
        real(self, result)

    monkeypatch.setattr(sinks.JsonlSink, "reserve", reserve)
    _interrupted(demo_clip, tmp_path / "out", reference)
    assert fired == [AT]


def test_signal_between_the_windows_waits_until_the_step_is_done(demo_clip, tmp_path, monkeypatch, reference):
    """SIGTERM arrives while the smoother has let a result go and the stitcher has not taken it yet."""
    real = Stitcher.push
    sent = []

    def push(self, item, tracks, image=None):
        if item.index == AT and not sent:
            sent.append(item.index)
            os.kill(os.getpid(), signal.SIGTERM)
        return real(self, item, tracks, image)

    monkeypatch.setattr(Stitcher, "push", push)
    _interrupted(demo_clip, tmp_path / "out", reference)
    assert sent == [AT]


def test_signal_while_the_files_close_waits_until_they_are_closed(demo_clip, tmp_path, monkeypatch, reference):
    """SIGTERM as the video starts to close, with frames still queued for the encoder: every file is
    finished first (closing the video under the encoding thread crashed the process), then the run reports
    the interrupt."""
    real = sinks.AnnotatedSink.close
    sent = []

    def close(self, complete=True):
        sent.append(complete)
        os.kill(os.getpid(), signal.SIGTERM)
        real(self, complete)

    monkeypatch.setattr(sinks.AnnotatedSink, "close", close)
    out = tmp_path / "out"
    with pytest.raises(Interrupted):
        _run(demo_clip, out, video=True)
    assert sent == [True]  # the run had completed
    stem = demo_clip.stem
    assert list(read_jsonl(out / f"{stem}.jsonl")) == reference
    assert len(list(open_source(str(out / f"{stem}.mp4")))) == FRAMES
    assert (out / f"{stem}.coco.json").exists()
