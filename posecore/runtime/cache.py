"""The converted-model cache: one folder per (weights hash, input-size policy, precision, variant, versions).

Location: ``$OCCLUPOSE_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/occlupose/openvino`` (``~/.cache/...``).
An entry is ``model.xml`` + ``model.bin`` + ``meta.json``; the meta records both files' SHA-256, so a
truncated or edited entry is found and rebuilt. Entries are written to a temporary folder and renamed
into place, so a run that dies mid-conversion leaves no half entry behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

CACHE_ENV = "OCCLUPOSE_CACHE_DIR"
FILES = ("model.xml", "model.bin")


def cache_root() -> Path:
    """The folder holding every converted model."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "occlupose" / "openvino"


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass(frozen=True)
class CacheKey:
    """Everything a converted model depends on; two runs with equal keys may share the entry."""

    weights_sha256: str
    policy: str  # input-size policy, e.g. "dynamic-hw" (rectangular letterboxed inputs of any size)
    precision: str  # "fp32" or "int8" (bf16 is a compile-time hint on the fp32 model)
    variant: str  # "head": the head's output only; "head+neck": also the neck maps the refiner reads
    openvino: str
    converter: str  # the exporting code's versions (Ultralytics, torch): a new tracer may trace differently

    def folder(self) -> str:
        text = json.dumps(asdict(self), sort_keys=True)
        return f"{self.weights_sha256[:12]}-{self.precision}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"


@dataclass
class Entry:
    path: Path
    meta: dict

    @property
    def xml(self) -> Path:
        return self.path / "model.xml"


def lookup(key: CacheKey, root: Path | None = None) -> tuple[Entry | None, str | None]:
    """The valid entry for ``key`` (or None) and, when one exists but is damaged, why."""
    path = (root or cache_root()) / key.folder()
    if not path.exists():
        return None, None
    try:
        meta = json.loads((path / "meta.json").read_text())
        if meta.get("key") != asdict(key):
            return None, "its key does not match"
        for name in FILES:
            if file_sha256(path / name) != meta["sha256"][name]:
                return None, f"{name} does not match its checksum"
    except (OSError, ValueError, KeyError, TypeError) as e:
        return None, f"{type(e).__name__}: {e}"
    return Entry(path, meta), None


def store(key: CacheKey, write, extra: dict | None = None, root: Path | None = None) -> Entry:
    """Make the entry for ``key``: ``write(folder)`` saves model.xml/model.bin into a fresh folder, which
    then replaces any old entry. ``extra`` goes into meta.json (conversion time, calibration set)."""
    root = root or cache_root()
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".building-", dir=root))
    try:
        write(tmp)
        meta = {"key": asdict(key), "sha256": {n: file_sha256(tmp / n) for n in FILES}, **(extra or {})}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
        final = root / key.folder()
        if final.exists():
            shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Entry(final, meta)
