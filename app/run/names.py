"""The one rule that turns a source into a file-name stem, for the batch command and the GUI."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit


def safe_stem(name: str, fallback: str = "output") -> str:
    """``name`` made safe for a file name: every character but letters and digits (of any script),
    ``.``, ``-`` and ``_`` becomes ``_``; ``fallback`` when nothing is left."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or fallback


def source_stem(spec: str, fallback: str = "output") -> str:
    """The stem of a source: a stream URL's last path part (rtsp://cam/stream1 -> stream1; its host
    where the path is empty), a file's or folder's name without extension, else ``spec`` itself (a
    camera's name), each made safe by :func:`safe_stem`."""
    spec = str(spec)
    if "://" in spec:
        parts = urlsplit(spec)
        name = Path(parts.path).stem or (parts.hostname or "stream")
    else:
        name = Path(spec).stem
    return safe_stem(name, fallback)
