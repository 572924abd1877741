"""What the window remembers between runs, stored with QSettings.

A typed dataclass is the boundary: the window reads and writes ``GuiSettings``; only this module
knows keys and QSettings' habit of returning strings (INI files) or native types (registry, plist).
Values that do not parse fall back to their defaults.
"""

from __future__ import annotations

import dataclasses
from argparse import ArgumentTypeError
from dataclasses import dataclass, field
from pathlib import Path

from PyQt6.QtCore import QByteArray, QSettings

from app.arguments import imgsz_arg
from app.services.model_settings import BACKENDS
from posecore.autosize import AUTO
from posecore.multiscale import QUALITY_PRESETS


def _default_output() -> str:
    return str(Path.home() / "occlupose-sessions")


@dataclass
class GuiSettings:
    # Model.
    backend: str = "yolo"
    weights: str = ""
    pair_weights: str = ""  # dag: CoupleGraph checkpoint ("" = the pair stage inside the weights, if any)
    device: str = "auto"
    imgsz: int | str = AUTO  # auto or px
    quality: str = "balanced"
    # Overlay.
    skeleton: bool = True
    labels: bool = True
    boxes: bool = False
    trails: bool = True
    predicted: bool = True
    det_threshold: float = 0.1
    kpt_threshold: float = 0.3
    # Playback and sources.
    realtime: bool = False
    last_file: str = ""
    last_url: str = ""
    camera: int = 0
    # Recording.
    output_dir: str = field(default_factory=_default_output)
    record_video: bool = True
    record_jsonl: bool = True
    record_csv: bool = True
    # Window.
    geometry: bytes = b""
    state: bytes = b""


def _parse(value, default):
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("true", "1", "yes"):
            return True
        if text in ("false", "0", "no"):
            return False
        return default
    if isinstance(default, int):
        return int(value)
    if isinstance(default, float):
        v = float(value)
        if v != v:
            raise ValueError("nan")
        return v
    if isinstance(default, bytes):
        return bytes(value) if isinstance(value, (QByteArray, bytes, bytearray)) else default
    return str(value)


def _imgsz(value) -> int | str:
    try:
        return imgsz_arg(str(value))
    except ArgumentTypeError as e:
        raise ValueError(str(e)) from None


def load_settings(qs: QSettings) -> GuiSettings:
    out = GuiSettings()
    for f in dataclasses.fields(GuiSettings):
        if not qs.contains(f.name):
            continue
        default = getattr(out, f.name)
        try:
            value = qs.value(f.name)
            setattr(out, f.name, _imgsz(value) if f.name == "imgsz" else _parse(value, default))
        except (TypeError, ValueError):
            pass  # a hand-edited or foreign value: keep the default
    if out.backend not in BACKENDS:
        out.backend = "yolo"
    if out.quality not in QUALITY_PRESETS:
        out.quality = "balanced"
    out.det_threshold = min(max(out.det_threshold, 0.0), 1.0)
    out.kpt_threshold = min(max(out.kpt_threshold, 0.0), 1.0)
    return out


def save_settings(qs: QSettings, settings: GuiSettings) -> None:
    for f in dataclasses.fields(GuiSettings):
        value = getattr(settings, f.name)
        qs.setValue(f.name, QByteArray(value) if isinstance(value, bytes) else value)
    qs.sync()
