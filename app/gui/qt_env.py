"""Making PyQt6 load its own Qt plugins.

opencv-python (the non-headless build that Ultralytics needs) sets QT_QPA_PLATFORM_PLUGIN_PATH and
QT_QPA_FONTDIR to its bundled Qt 5 plugins when cv2 is imported. PyQt6 then tries those plugins
first and fails with "Could not load the Qt platform plugin "xcb" ... even though it was found".
Call :func:`use_pyqt_plugins` before the QApplication is created; it imports cv2 first so that a
later import cannot set the variables again.
"""

from __future__ import annotations

import os
from pathlib import Path

_CV2_VARIABLES = ("QT_QPA_PLATFORM_PLUGIN_PATH", "QT_QPA_FONTDIR")


def use_pyqt_plugins() -> list[str]:
    """Drop the Qt variables that point into cv2's folder; returns the names removed."""
    import cv2

    cv2_dir = Path(cv2.__file__).resolve().parent
    removed = []
    for name in _CV2_VARIABLES:
        value = os.environ.get(name)
        if value and Path(value).resolve().is_relative_to(cv2_dir):
            del os.environ[name]
            removed.append(name)
    return removed
