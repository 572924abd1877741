"""Running Qt's event loop until a condition holds, for scripts that drive the window."""

from __future__ import annotations

from collections.abc import Callable

from PyQt6.QtCore import QEventLoop, QTimer


def spin_until(until: Callable[[], object], seconds: float) -> bool:
    """Run a real event loop (as ``app.exec()`` does) until ``until()`` is true or ``seconds`` pass.

    A loop that polls ``processEvents`` would hold the GIL most of the time and slow the worker down.
    Returns whether the condition holds at the end.
    """
    loop = QEventLoop()
    check = QTimer()
    check.timeout.connect(lambda: loop.quit() if until() else None)
    check.start(20)
    QTimer.singleShot(int(seconds * 1000), loop.quit)
    if not until():
        loop.exec()
    check.stop()
    return bool(until())
