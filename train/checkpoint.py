"""Checkpoint files of a run: the model for use (``last.pt``, ``best.pt``) and the state to resume
(``last_state.pt``: weights, optimizer, scheduler, scaler, progress), all loadable with weights_only=True.

Every file is written to a temporary name and renamed, so a run killed while saving leaves the previous
file intact.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from posecore.errors import WeightsError

LAST_MODEL = "last.pt"
BEST_MODEL = "best.pt"
RESUME_STATE = "last_state.pt"


def atomic_save(obj: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def load_resume_state(path: Path) -> dict[str, Any]:
    """The resume state saved by :func:`atomic_save`, read with weights_only=True."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise WeightsError(f"resume state not found: {path}") from None
    except Exception as e:  # a truncated or foreign file: say which one, not how torch failed inside
        raise WeightsError(f"cannot resume from {path}: {type(e).__name__}: {str(e).splitlines()[0][:200]}") from None
    if not isinstance(state, dict) or not {"model", "optimizer", "scheduler", "state"} <= set(state):
        raise WeightsError(f"{path}: not a training state written by this trainer")
    return state


def save_model(path: Path, model: nn.Module, extra: dict[str, Any] | None = None) -> None:
    """The model with its config, in the project's checkpoint format (posecore.weights), atomically."""
    from posecore.weights import save_checkpoint

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    save_checkpoint(tmp, model, getattr(model, "config", {}), extra or {})
    os.replace(tmp, path)
