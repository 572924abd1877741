"""Background threads: a prefetcher that runs a producer ahead, and a sink that consumes behind."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

_END = object()


class _Raised:
    def __init__(self, error: BaseException):
        self.error = error


class Prefetcher(Iterator[T]):
    """Iterate ``items`` in a daemon thread, keeping at most ``depth`` items ready.

    Exceptions raised by the producer are re-raised in the consumer at the point they happened.
    ``close()`` stops the producer; it is safe to call more than once.
    """

    def __init__(self, items: Iterable[T], depth: int = 4):
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(iter(items),), daemon=True, name="prefetch")
        self._thread.start()

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, it: Iterator[T]) -> None:
        try:
            for item in it:
                if not self._put(item):
                    return
        except BaseException as e:  # handed to the consumer
            self._put(_Raised(e))
            return
        finally:
            close = getattr(it, "close", None)
            if close is not None and self._stop.is_set():
                try:
                    close()
                except Exception:
                    pass
        self._put(_END)

    def __next__(self) -> T:
        item = self._queue.get()
        if item is _END:
            self._stop.set()
            raise StopIteration
        if isinstance(item, _Raised):
            self._stop.set()
            raise item.error
        return item

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5.0)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class BackgroundSink:
    """Hand items to ``consume`` in a worker thread, at most ``depth`` waiting.

    Used for drawing and encoding so they overlap inference of the next frame. An exception in
    ``consume`` stops the worker and is re-raised by the next ``put`` or by ``close``.

    ``reserve()`` waits for room (interruptible) and ``put(item)`` after it never blocks, so a caller can
    hand an item over inside a section that must not wait.
    """

    def __init__(self, consume, depth: int = 8, name: str = "sink"):
        self._consume = consume
        self._queue: queue.Queue = queue.Queue()
        self._slots = threading.Semaphore(max(1, depth))
        self._reserved = 0
        self._error: BaseException | None = None
        self._failed = False
        self._thread = threading.Thread(target=self._run, daemon=True, name=name)
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _END:
                return
            try:
                if not self._failed:  # after a failure: drain without work
                    self._consume(item)
            except BaseException as e:
                self._error, self._failed = e, True
            finally:
                self._slots.release()

    def _raise(self) -> None:
        if self._error is not None:
            err, self._error = self._error, None
            raise err

    def reserve(self) -> None:
        """Wait until one more item fits; re-raise a worker error."""
        self._raise()
        if not self._reserved:
            self._slots.acquire()
            self._reserved = 1

    def put(self, item) -> None:
        """Queue an item (waiting for room unless ``reserve()`` was called; then it never raises)."""
        if not self._reserved:
            self.reserve()
        self._reserved = 0
        self._queue.put(item)

    def close(self) -> None:
        """Wait until everything queued is consumed; re-raise a worker error."""
        if self._thread.is_alive():
            self._queue.put(_END)
            self._thread.join()
        self._raise()
