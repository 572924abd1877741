"""PNG plots of a run's history: losses per epoch and AP per epoch (no pyplot, no global state)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

METRIC_KEYS = ("AP", "AP50", "AP75", "visible.AP", "occluded.AP", "AP_easy", "AP_medium", "AP_hard", "AR")


def _series(history: Sequence[dict], key: str) -> tuple[list[float], list[float]]:
    xs, ys = [], []
    for row in history:
        v = row.get(key)
        if isinstance(v, (int, float)) and math.isfinite(v):
            xs.append(row.get("epoch", len(xs) + 1))
            ys.append(float(v))
    return xs, ys


def _plot(path: Path, history: Sequence[dict], keys: Sequence[str], title: str, ylabel: str, log: bool) -> bool:
    fig = Figure(figsize=(7, 4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    drawn = False
    for key in keys:
        xs, ys = _series(history, key)
        if xs:
            ax.plot(xs, ys, marker="o", label=key)
            drawn = True
    if not drawn:
        return False
    if log and all(y > 0 for k in keys for y in _series(history, k)[1]):
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    return True


def plot_history(history: Sequence[dict], out_dir: Path) -> list[Path]:
    """Write ``losses.png`` and, once an evaluation has run, ``metrics.png``; returns the files written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    loss_keys = sorted({k for row in history for k in row if k.startswith("loss.")})
    if _plot(out_dir / "losses.png", history, loss_keys, "training losses", "loss", log=True):
        written.append(out_dir / "losses.png")
    if _plot(out_dir / "metrics.png", history, [k for k in METRIC_KEYS], "validation", "AP / AR", log=False):
        written.append(out_dir / "metrics.png")
    return written
