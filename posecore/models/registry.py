"""Model registry: one decorator maps a name to a plain builder ``fn(**cfg) -> nn.Module``.

``build_model({"name": "dag_hrnet_w32", "skeleton": "crowdpose14"})`` calls the builder with the
remaining keys, checks them against its signature (an unknown key is a :class:`ConfigError` naming
it) and records the full config on the model as ``model.config``, which is what a checkpoint stores
beside the weights so that loading needs nothing else.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import torch.nn as nn

from ..config import load_yaml
from ..errors import ConfigError

Builder = TypeVar("Builder", bound=Callable[..., nn.Module])

# Filled by @register_model when the model modules are imported (posecore.models imports them all).
_BUILDERS: dict[str, Callable[..., nn.Module]] = {}


def register_model(fn: Builder | None = None, *, name: str | None = None):
    """Register a builder under ``name`` (default: the function's name). Usable bare or with ``name=``."""

    def deco(f: Builder) -> Builder:
        key = name or f.__name__
        if key in _BUILDERS and _BUILDERS[key] is not f:
            raise ValueError(f"model {key!r} is registered twice")
        _BUILDERS[key] = f
        return f

    return deco(fn) if fn is not None else deco


def list_models() -> list[str]:
    return sorted(_BUILDERS)


def get_builder(name: str) -> Callable[..., nn.Module]:
    try:
        return _BUILDERS[name]
    except KeyError:
        raise ConfigError(f"model.name: unknown model {name!r}; choose one of {list_models()}") from None


def build_model(cfg: Mapping[str, Any]) -> nn.Module:
    """Build the model named by ``cfg["name"]`` with the other keys as builder arguments."""
    if not isinstance(cfg, Mapping) or "name" not in cfg:
        raise ConfigError("model: expected a mapping with a 'name' key")
    cfg = dict(cfg)
    name = cfg.pop("name")
    builder = get_builder(name)
    params = inspect.signature(builder).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        for key in cfg:
            if key not in params:
                raise ConfigError(f"model.{key}: unknown key for {name}; expected one of {sorted(params)}")
    try:
        model = builder(**cfg)
    except ConfigError:
        raise
    except (TypeError, ValueError) as e:
        raise ConfigError(f"model ({name}): {e}") from None
    model.config = {"name": name, **cfg}
    return model


def load_model_config(name_or_path: str | Path) -> dict[str, Any]:
    """The ``model`` section of a YAML file, given its path or its name under ``configs/models``."""
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = Path(str(resources.files("configs") / "models" / f"{name_or_path}.yaml"))
    data = load_yaml(path)
    model = data.get("model")
    if not isinstance(model, dict):
        raise ConfigError(f"{path}: expected a 'model' mapping")
    return model


def available_configs() -> list[str]:
    folder = resources.files("configs") / "models"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))
