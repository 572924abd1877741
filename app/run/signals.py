"""Making one frame's writes atomic with respect to SIGINT and SIGTERM."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class SignalGuard:
    """While installed (main thread only), SIGINT and SIGTERM raise KeyboardInterrupt as usual, except
    inside ``deferred()``, where they are held until the block ends. So a frame reaches every output or none.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self._old: dict[int, object] = {}
        self._depth = 0  # deferred() blocks entered and not left (they nest)
        self._pending: int | None = None

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # only the main thread receives signals; embedded callers keep their own handling
        for sig in self.SIGNALS:
            self._old[sig] = signal.getsignal(sig)
            signal.signal(sig, self._handle)

    def uninstall(self) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old if old is not None else signal.SIG_DFL)
        self._old.clear()

    def _handle(self, signum, frame) -> None:
        if self._depth:
            self._pending = signum
            return
        self._deliver(signum, frame)

    def _deliver(self, signum, frame) -> None:
        old = self._old.get(signum)
        if old == signal.SIG_IGN:
            return
        if callable(old) and old is not signal.default_int_handler:
            old(signum, frame)  # e.g. the command line's SIGTERM handler, which raises KeyboardInterrupt
        raise KeyboardInterrupt  # SIGINT as Python does it; SIGTERM unwinds the same way so files are closed

    @contextmanager
    def deferred(self) -> Iterator[None]:
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
            if not self._depth:
                pending, self._pending = self._pending, None
                if pending is not None:
                    self._deliver(pending, None)
