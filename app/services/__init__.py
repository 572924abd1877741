"""Services that run off the GUI thread: the pipeline worker, the live feeds, recording and statistics.

Everything here but ``qt_service`` is plain Python, usable (and tested) without Qt.
"""
