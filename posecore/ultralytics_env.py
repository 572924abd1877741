"""Import Ultralytics so that it never touches the network.

Ultralytics reads its switches from the environment when it is first imported, so they must be
set before that import. A user's explicit settings win (we only fill in what is unset).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def _config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    p = Path(base) / "occlupose" / "ultralytics"
    try:
        p.mkdir(parents=True, exist_ok=True)
        probe = p / ".write-test"
        probe.write_text("")
        probe.unlink()
        return p
    except OSError:
        p = Path(tempfile.gettempdir()) / "occlupose-ultralytics"
        p.mkdir(parents=True, exist_ok=True)
        return p


def offline_environment() -> dict[str, str]:
    """The variables we want set for Ultralytics (a user's own values are kept)."""
    return {
        "YOLO_OFFLINE": "1",  # no connectivity checks, no hub, no downloads
        "YOLO_AUTOINSTALL": "False",  # never pip-install missing requirements
        "YOLO_VERBOSE": "False",
        # .pt files are pickles: load them with torch's weights_only unpickler and Ultralytics' allow-list
        # of its model classes, so a file that references anything else is refused instead of run.
        "ULTRALYTICS_SAFE_LOAD": "1",
    }


def import_ultralytics():
    """Set the offline switches (unless the user set them) and return the ``ultralytics`` module."""
    for key, value in offline_environment().items():
        os.environ.setdefault(key, value)
    if "YOLO_CONFIG_DIR" not in os.environ:
        os.environ["YOLO_CONFIG_DIR"] = str(_config_dir())
    import ultralytics

    return ultralytics
