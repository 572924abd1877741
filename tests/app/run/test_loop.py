"""The run loop over stand-in sinks: every sink gets the same whole frames, and every sink is closed
(complete only when the run completed) whatever ends the run."""

from __future__ import annotations

import numpy as np
import pytest

from app.run.loop import run_loop
from posecore.errors import OutputError, SourceError
from posecore.types import FrameResult, Poses


def _result(i: int) -> FrameResult:
    return FrameResult(i, i / 30, np.zeros((4, 4, 3), np.uint8), Poses.empty(17), [], None, {})


class ListSink:
    def __init__(self, fail_at: int | None = None):
        self.frames: list[int] = []
        self.closed: bool | None = None  # the ``complete`` it was closed with
        self.fail_at = fail_at

    def reserve(self, result):
        pass

    def write(self, result):
        if result.index == self.fail_at:
            raise OutputError("disk full")
        self.frames.append(result.index)

    def close(self, complete=True):
        self.closed = complete


def _results(n, fail_at=None, exc: BaseException | None = None):
    for i in range(n):
        if i == fail_at:
            raise exc
        yield _result(i)


def test_completed_run_writes_every_frame_and_closes_complete():
    a, b = ListSink(), ListSink()
    out = run_loop(_results(5), [a, b], held=lambda: [])
    assert out.completed and out.stopped_by is None and out.frames == 5
    assert a.frames == b.frames == [0, 1, 2, 3, 4] and a.closed is True and b.closed is True


@pytest.mark.parametrize("live", [False, True])
def test_failing_source_keeps_the_held_frames_and_closes_complete_only_when_live(live):
    a = ListSink()
    out = run_loop(_results(5, 3, SourceError("gone")), [a], held=lambda: [_result(3)], live=live)
    assert isinstance(out.stopped_by, SourceError) and not out.completed
    assert a.frames == [0, 1, 2, 3] and out.frames == 4
    assert a.closed is live


def test_interrupt_is_caught_and_reported():
    a = ListSink()
    out = run_loop(_results(5, 2, KeyboardInterrupt()), [a], held=lambda: [])
    assert isinstance(out.stopped_by, KeyboardInterrupt) and a.frames == [0, 1] and a.closed is False


def test_output_error_stops_before_the_sinks_after_it_and_closes_every_sink():
    first, failing, last = ListSink(), ListSink(fail_at=2), ListSink()
    out = run_loop(_results(5), [first, failing, last], held=lambda: [_result(9)])
    assert isinstance(out.stopped_by, OutputError) and out.frames == 2
    assert last.frames == [0, 1]  # the frame that failed reached no sink after the failing one
    assert first.closed is False and failing.closed is False and last.closed is False


def test_held_results_already_written_are_skipped():
    """The pipeline hands the frame an interrupt caught to ``held`` again, whether or not the sinks got it."""
    a = ListSink()
    out = run_loop(_results(5, 3, KeyboardInterrupt()), [a], held=lambda: [_result(2), _result(3), _result(4)])
    assert a.frames == [0, 1, 2, 3, 4] and out.frames == 5
