import threading
import time

import pytest

from posecore.io.threads import BackgroundSink, Prefetcher


def test_prefetcher_yields_in_order_and_runs_ahead():
    produced = []

    def items():
        for i in range(20):
            produced.append(i)
            yield i

    with Prefetcher(items(), depth=4) as it:
        first = next(it)
        time.sleep(0.2)
        assert len(produced) >= 4  # the producer ran ahead while we waited
        assert [first] + list(it) == list(range(20))


def test_prefetcher_reraises_producer_errors_in_place():
    def items():
        yield 1
        raise RuntimeError("camera gone")

    it = Prefetcher(items())
    assert next(it) == 1
    with pytest.raises(RuntimeError, match="camera gone"):
        next(it)


def test_prefetcher_close_stops_an_endless_producer():
    def forever():
        i = 0
        while True:
            yield i
            i += 1

    it = Prefetcher(forever(), depth=2)
    next(it)
    it.close()
    assert not it._thread.is_alive()


def test_background_sink_consumes_everything_in_order():
    got = []
    sink = BackgroundSink(got.append, depth=2)
    for i in range(50):
        sink.put(i)
    sink.close()
    assert got == list(range(50))


def test_background_sink_surfaces_worker_errors():
    def consume(i):
        if i == 3:
            raise OSError(28, "No space left on device")

    sink = BackgroundSink(consume, depth=1)
    with pytest.raises(OSError, match="No space"):
        for i in range(100):
            sink.put(i)
        sink.close()
    assert threading.active_count() >= 1
