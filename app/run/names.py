"""The one rule that turns a source into a file-name stem, for the batch command and the GUI."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_stem(name: str, fallback: str = "output") -> str:
    """``name`` made safe for a file name: each run of characters other than letters, digits, ``.``,
    ``-`` and ``_`` becomes one ``_``; dots and underscores at the ends go (no hidden files)."""
    return _UNSAFE.sub("_", name).strip("._") or fallback


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
