"""A mailbox that holds only the newest item: a queue of one where a put replaces what was not taken.

Used twice: between a live source's capture thread and the worker (the worker always processes the
freshest frame; the ones it had no time for are dropped), and between the worker and the window (the
window always shows the freshest result, however slowly it paints).
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Taken(Generic[T]):
    """An item with its place in the sequence of puts.

    seq: the item's put number (0, 1, 2, ...); puts: how many puts had happened when it was taken,
    so ``puts - seq - 1`` newer items existed at that moment (always 0 for this slot).
    """

    item: T
    seq: int
    puts: int

    @property
    def backlog(self) -> int:
        return self.puts - self.seq - 1


class SlotClosed(Exception):
    """Raised by ``get`` once the slot is closed and empty: the producer is done."""


class LatestSlot(Generic[T]):
    """Thread-safe slot of one. ``put`` never blocks; ``get`` waits for an item not yet taken."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: T | None = None
        self._item_seq = -1
        self._full = False
        self._closed = False
        self.puts = 0
        self.replaced = 0  # items overwritten before anyone took them

    def put(self, item: T) -> bool:
        """Store ``item``; returns True when it replaced an item nobody took."""
        with self._cond:
            replaced = self._full
            self.replaced += replaced
            self._item, self._item_seq, self._full = item, self.puts, True
            self.puts += 1
            self._cond.notify_all()
            return replaced

    def get(self, timeout: float | None = None) -> Taken[T] | None:
        """The newest untaken item, waiting up to ``timeout`` seconds (None: forever); None on timeout.

        Raises SlotClosed when the slot is closed and holds nothing more.
        """
        with self._cond:
            if not self._cond.wait_for(lambda: self._full or self._closed, timeout):
                return None
            if not self._full:
                raise SlotClosed
            item, self._item, self._full = self._item, None, False
            return Taken(item, self._item_seq, self.puts)

    def close(self) -> None:
        """No more puts will come; a waiting ``get`` returns what is left, then raises SlotClosed."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed


class FifoSlot(Generic[T]):
    """The naive alternative with the same interface: every item kept, taken oldest first. Not used by
    the app; benchmarks and tests compare against it to show what the slot of one prevents."""

    def __init__(self) -> None:
        self._queue: queue.Queue = queue.Queue()
        self._lock = threading.Lock()
        self._closed = False
        self.puts = 0
        self.replaced = 0

    def put(self, item: T) -> bool:
        with self._lock:
            self._queue.put((item, self.puts))
            self.puts += 1
        return False

    def get(self, timeout: float | None = None) -> Taken[T] | None:
        try:
            item, seq = self._queue.get(timeout=timeout)
        except queue.Empty:
            if self._closed:
                raise SlotClosed from None
            return None
        with self._lock:
            return Taken(item, seq, self.puts)

    def close(self) -> None:
        self._closed = True

    @property
    def closed(self) -> bool:
        return self._closed
