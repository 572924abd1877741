"""The trainer's hooks: evaluation, checkpoints with automatic resume, and logs (progress bar, CSV, plots).

Register them in this order (evaluation first, so the checkpoint hook sees the epoch's metric):
``EvalHook``, ``CheckpointHook``, ``LoggingHook``.
"""

from __future__ import annotations

import csv
import math
import sys
from pathlib import Path
from typing import Callable, TextIO

from tqdm import tqdm

from . import distributed
from .checkpoint import BEST_MODEL, LAST_MODEL, RESUME_STATE, atomic_save, load_resume_state, save_model
from .evaluate import format_metrics
from .plots import plot_history
from .trainer import HookBase

SUMMARY_KEYS = ("AP", "AP50", "AP75", "AR", "visible.AP", "occluded.AP", "AP_easy", "AP_medium", "AP_hard")


class EvalHook(HookBase):
    """Evaluate every ``every`` epochs and after the last one; metrics go into the epoch's row."""

    def __init__(self, evaluate: Callable, every: int):
        self.evaluate, self.every = evaluate, every

    def after_epoch(self) -> None:
        t = self.trainer
        epoch = t.state.epoch
        if not self.every or (epoch % self.every and epoch != t.epochs):
            return
        metrics = self.evaluate(t.module)
        t.epoch_row.update(metrics)
        t.model.train()


class CheckpointHook(HookBase):
    """Resume from ``last_state.pt`` when it exists; save it (and ``last.pt``) after every epoch and every
    ``every_iters`` steps; save ``best.pt`` when ``metric`` improves."""

    def __init__(self, out_dir: Path, metric: str = "AP", every_iters: int = 0, resume: bool = True,
                 log: Callable[[str], None] = print, save: Callable[[Path, object, dict], None] = save_model):
        self.out_dir, self.metric, self.every_iters, self.resume = Path(out_dir), metric, every_iters, resume
        self.log = log
        self.save = save  # how last.pt / best.pt are written (the DAG's pair stage: inside a DAG checkpoint)
        self.resumed_from: tuple[int, int] | None = None

    def before_train(self) -> None:
        path = self.out_dir / RESUME_STATE
        if not (self.resume and path.is_file()):
            return
        t = self.trainer
        t.load_state_dict(load_resume_state(path))
        self.resumed_from = (t.state.epoch, t.state.iteration)
        where = f"epoch {t.state.epoch + 1}" + (f", step {t.state.step_in_epoch}" if t.state.step_in_epoch else "")
        if t.dist.is_main:
            self.log(f"resuming from {path} at {where} (iteration {t.state.iteration})")

    def after_step(self) -> None:
        if self.every_iters and self.trainer.state.iteration % self.every_iters == 0:
            self._save_last()

    def after_epoch(self) -> None:
        t = self.trainer
        value = t.epoch_row.get(self.metric)
        improved = isinstance(value, (int, float)) and math.isfinite(value) and value > t.state.best
        if improved:
            t.state.best, t.state.best_epoch = float(value), t.state.epoch
        self._save_last()
        if improved and t.dist.is_main:
            self.save(self.out_dir / BEST_MODEL, t.module, {"epoch": t.state.epoch, self.metric: float(value)})

    def _save_last(self) -> None:
        t = self.trainer
        if t.dist.is_main:
            atomic_save(t.state_dict(), self.out_dir / RESUME_STATE)
            self.save(self.out_dir / LAST_MODEL, t.module, {"epoch": t.state.epoch, "iteration": t.state.iteration})
        distributed.barrier()


class LoggingHook(HookBase):
    """A progress bar per epoch, one summary line per epoch, ``log.csv`` and the PNG plots (main process)."""

    def __init__(self, out_dir: Path, progress: bool = True, log_every: int = 20, stream: TextIO | None = None):
        self.out_dir, self.progress, self.log_every = Path(out_dir), progress, log_every
        self.stream = stream or sys.stderr
        self.bar = None

    def before_epoch(self) -> None:
        t = self.trainer
        if not t.dist.is_main:
            return
        total = t.iters_per_epoch()
        self.bar = tqdm(total=total, initial=t.state.step_in_epoch, desc=f"epoch {t.state.epoch + 1}/{t.epochs}",
                        disable=not self.progress, file=self.stream, leave=False, dynamic_ncols=True)

    def after_step(self) -> None:
        t = self.trainer
        if self.bar is None:
            return
        self.bar.update(1)
        if t.state.iteration % self.log_every == 0 or t.state.step_in_epoch == 1:
            self.bar.set_postfix(loss=f"{t.step_losses.get('total', math.nan):.4g}",
                                 lr=f"{t.optimizer.param_groups[0]['lr']:.2e}")

    def after_epoch(self) -> None:
        t = self.trainer
        if not t.dist.is_main:
            return
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        row = t.epoch_row
        losses = "  ".join(f"{k[5:]} {v:.4g}" for k, v in row.items() if k.startswith("loss."))
        metrics = format_metrics(row, [k for k in SUMMARY_KEYS if k in row])
        print(f"epoch {row['epoch']}/{t.epochs}  {losses}  {metrics}  ({row['time_s']:.1f} s)".rstrip(),
              file=self.stream, flush=True)
        write_csv(self.out_dir / "log.csv", t.state.history)
        plot_history(t.state.history, self.out_dir)


def write_csv(path: Path, history: list[dict]) -> None:
    """All epochs' rows; columns are the union of every row's keys, in first-seen order."""
    columns: list[str] = []
    for row in history:
        columns += [k for k in row if k not in columns]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=columns)
        w.writeheader()
        for row in history:
            w.writerow({k: row.get(k, "") for k in columns})
    tmp.replace(path)
