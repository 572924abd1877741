"""The run loop: results to every sink, a frame at a time, safe against signals, a full disk and a
failing source; whatever happens, every sink is closed holding the same whole frames."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from posecore.errors import OutputError, SourceError
from posecore.types import FrameResult

from .signals import SignalGuard
from .sinks import Sink

log = logging.getLogger("occlupose")


@dataclass
class Outcome:
    frames: int = 0  # frames 0 .. frames-1 are in every sink
    track_ids: set[int] = field(default_factory=set)
    completed: bool = False  # the results ran out (end of the source, or the frame limit)
    stopped_by: BaseException | None = None  # KeyboardInterrupt, SourceError or OutputError, when cut short


def run_loop(results: Iterator[FrameResult], sinks: Sequence[Sink], held: Callable[[], Iterable[FrameResult]],
             progress=None, live: bool = False, guard: SignalGuard | None = None) -> Outcome:
    """Write ``results`` to ``sinks`` in order until they run out or an interrupt (SIGINT/SIGTERM), a
    failing source or an output error stops them; then close ``results`` and every sink.

    ``held``: the results not written yet when the run stops early (those held back by the smoother,
    and the one an interrupt caught on its way to the sinks), written as if the frames ended there, so
    nothing computed is lost; any it repeats are skipped. Sinks close ``complete`` when the run completed,
    or, for a ``live`` source (which has no resume), unless an output failed. ``guard``: the signal guard
    to install (one the producer of ``results`` defers signals with, too).
    """
    out = Outcome()
    guard = guard or SignalGuard()

    def commit(result: FrameResult) -> None:
        if result.index < out.frames:
            return  # written already
        for sink in sinks:
            sink.reserve(result)  # may wait for the encoder, outside the deferred section
        with guard.deferred():
            for sink in sinks:
                sink.write(result)
            out.frames = result.index + 1
        out.track_ids.update(t.track_id for t in result.tracks)
        if progress is not None:
            progress.update(1)

    def commit_held() -> None:
        try:
            for result in held():
                commit(result)
        except OutputError as e:  # the run is ending anyway, for the reason being reported
            log.warning("%s", e)

    guard.install()
    try:
        for result in results:
            commit(result)
        out.completed = True
    except (KeyboardInterrupt, SourceError) as e:
        commit_held()
        out.stopped_by = e
    except OutputError as e:
        out.stopped_by = e
    finally:
        try:
            # Closing runs to its end, with signals held back until every file is closed (and delivered
            # then): an interrupt here would close the video under the thread still encoding into it.
            with guard.deferred():
                # Stop decoding ahead before anything closes: the source is closed after this, never under a read.
                close_all([results.close], quiet=True)
                if progress is not None:
                    progress.close()
                complete = out.completed or (live and not isinstance(out.stopped_by, OutputError))
                failed: list[Sink] = []
                close_all([_closer(s, complete, failed) for s in sinks], quiet=out.stopped_by is not None)
        except KeyboardInterrupt as e:  # the signal held back while closing
            if isinstance(e.__context__, Exception):
                raise e.__context__ from None  # a failure on its way out is the news
            out.stopped_by = out.stopped_by or e
        finally:
            guard.uninstall()
    return out


def _closer(sink: Sink, complete: bool, failed: list[Sink]) -> Callable[[], None]:
    """Closes ``sink``, complete only while no sink before it failed to close (the COCO file is made from
    the JSONL, closed before it)."""
    def close() -> None:
        try:
            sink.close(complete and not failed)
        except Exception:
            failed.append(sink)
            raise
    return close


def close_all(closers: Iterable[Callable[[], object]], quiet: bool = False) -> None:
    """Run every closer; raise the first failure afterwards, unless the run already failed (``quiet``, or an
    exception on its way): then that is the news, and a follow-up such as a second full-disk error is dropped."""
    in_flight = quiet or sys.exc_info()[1] is not None
    first: BaseException | None = None
    for close in closers:
        try:
            close()
        except Exception as e:
            first = first or e
    if first is not None and not in_flight:
        raise first
