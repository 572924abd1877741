"""Our checkpoint format: weights and the config that builds their model, in one safe file.

A checkpoint is a ``torch.save`` archive of a plain dict::

    {"format": "occlupose-checkpoint", "version": 1,
     "config": "<JSON of the model config, e.g. {'name': 'dag_hrnet_w32', ...}>",
     "state_dict": {name: tensor}, "extra": {...plain data and tensors...}}

It is read with ``torch.load(weights_only=True)``, which cannot run code, and everything in it is
checked: a missing, truncated or corrupt file, a pickle that wants to execute code, somebody else's
file, or weights that do not fit the model all raise :class:`WeightsError` with a one-line reason.
"""

from __future__ import annotations

import json
import os
import pickle
import tempfile
import warnings
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from .errors import ConfigError, WeightsError

FORMAT = "occlupose-checkpoint"
VERSION = 1


@dataclass
class Checkpoint:
    """The contents of a checkpoint file."""

    config: dict[str, Any]
    state_dict: dict[str, torch.Tensor]
    extra: dict[str, Any] = field(default_factory=dict)
    version: int = VERSION


def _check_plain(value: Any, where: str) -> None:
    """Only data that ``torch.load(weights_only=True)`` can read back may go into ``extra``."""
    if value is None or isinstance(value, (bool, int, float, str, torch.Tensor)):
        return
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check_plain(v, f"{where}[{i}]")
        return
    if isinstance(value, Mapping):
        for k, v in value.items():
            if not isinstance(k, (str, int)):
                raise TypeError(f"{where}: key {k!r} is not a string or integer")
            _check_plain(v, f"{where}.{k}")
        return
    raise TypeError(f"{where}: {type(value).__name__} cannot be stored safely (use plain data or tensors)")


def save_checkpoint(path: str | os.PathLike, model: nn.Module, config: Mapping[str, Any] | None = None,
                    extra: Mapping[str, Any] | None = None) -> Path:
    """Write ``model``'s weights with its config (default: ``model.config`` set by ``build_model``).

    ``extra`` holds plain data and tensors (epoch, metrics, optimizer state ...). The file is written
    to a temporary name first, so an interrupted save never leaves a truncated checkpoint behind.
    """
    cfg = dict(config if config is not None else getattr(model, "config", None) or {})
    if "name" not in cfg:
        raise ValueError("save_checkpoint: the config must name the model builder ('name'); build the model "
                         "with posecore.models.build_model or pass config=")
    try:
        cfg_json = json.dumps(cfg, sort_keys=True)
    except TypeError as e:
        raise ValueError(f"save_checkpoint: config is not plain data: {e}") from None
    extra = dict(extra or {})
    _check_plain(extra, "extra")
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    payload = {"format": FORMAT, "version": VERSION, "config": cfg_json, "state_dict": state, "extra": extra}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def read_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Safely read and validate a checkpoint file, without building a model."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"checkpoint not found: {path}")
    with open(path, "rb") as f:
        head = f.read(2)
    if head != b"PK" and head[:1] != b"\x80":  # a zip archive (torch.save) or a legacy raw pickle
        raise WeightsError(f"{path}: not a checkpoint (unknown file type)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # protocol notes from hand-made pickles; we raise our own errors
            data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if "weights_only" in str(e) or "Weights only" in str(e):
            raise WeightsError(f"{path}: refusing to load: the file holds objects other than tensors and plain "
                               "data (a pickle that could run code)") from None
        raise WeightsError(f"{path}: corrupt checkpoint ({str(e).splitlines()[0]})") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError, KeyError, IndexError) as e:
        msg = (str(e).splitlines()[0].split(". ")[0] if str(e) else "") or type(e).__name__
        raise WeightsError(f"{path}: corrupt or truncated checkpoint ({msg})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        hint = " (it looks like a bare state_dict)" if isinstance(data, dict) and data and all(
            isinstance(v, torch.Tensor) for v in data.values()) else ""
        raise WeightsError(f"{path}: not an occlupose checkpoint{hint}")
    version = data.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise WeightsError(f"{path}: checkpoint version {version!r} is newer than this program reads ({VERSION})")
    try:
        config = json.loads(data["config"])
    except (KeyError, TypeError, json.JSONDecodeError):
        raise WeightsError(f"{path}: checkpoint has no readable model config") from None
    state = data.get("state_dict")
    if not isinstance(config, dict) or "name" not in config:
        raise WeightsError(f"{path}: checkpoint config does not name a model")
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"{path}: checkpoint has no valid state_dict")
    extra = data.get("extra") or {}
    return Checkpoint(config=config, state_dict=state, extra=extra if isinstance(extra, dict) else {}, version=version)


def _describe_mismatch(model: nn.Module, state: Mapping[str, torch.Tensor]) -> str:
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}"
              for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    parts = []
    for label, items in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", shapes)):
        if items:
            more = f" (+{len(items) - 3} more)" if len(items) > 3 else ""
            parts.append(f"{label}: {', '.join(items[:3])}{more}")
    return "; ".join(parts)


def load_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Build the checkpoint's model from its stored config and load the weights (eval mode).

    Returns ``(model, config)``.
    """
    ckpt = read_checkpoint(path)
    return build_from(ckpt.config, ckpt.state_dict, str(path)).to(device).eval(), ckpt.config


def build_from(config: Mapping[str, Any], state_dict: Mapping[str, torch.Tensor], where: str) -> nn.Module:
    """The model ``config`` builds, with ``state_dict`` loaded (eval mode); ``where`` names the source in
    the :class:`WeightsError` raised when the config does not build or the weights do not fit."""
    from .models import build_model  # models import this package's config helpers, not the other way round

    if not isinstance(config, Mapping) or "name" not in config:
        raise WeightsError(f"{where}: no model config naming a model")
    if not isinstance(state_dict, Mapping) or not all(isinstance(v, torch.Tensor) for v in state_dict.values()):
        raise WeightsError(f"{where}: no valid state_dict")
    try:
        model = build_model(dict(config))
    except ConfigError as e:
        raise WeightsError(f"{where}: its config does not build a model: {e}") from None
    problem = _describe_mismatch(model, state_dict)
    if problem:
        raise WeightsError(f"{where}: weights do not fit {config['name']}: {problem}")
    model.load_state_dict(dict(state_dict), strict=True)
    return model.eval()
