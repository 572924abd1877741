"""A small training loop with hooks (in the manner of detectron2's ``TrainerBase``).

The loop owns the step: forward under autocast, the loss, backward through a gradient scaler, clipping,
the optimizer and the per-iteration scheduler. Everything else (checkpoints, evaluation, logs, plots,
progress) is a hook that reads and writes ``trainer.state``.
"""

from __future__ import annotations

import math
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterable, Sequence

import torch
from torch import nn

from .distributed import DistInfo, ShardSampler, all_reduce_mean


@dataclass
class TrainState:
    """Where training stands; saved with every checkpoint (plain values only)."""

    epoch: int = 0  # epochs completed
    iteration: int = 0  # optimizer steps taken
    step_in_epoch: int = 0  # steps taken in the current, unfinished epoch
    best: float = -math.inf  # best value of the tracked metric
    best_epoch: int = 0
    history: list[dict[str, float]] = field(default_factory=list)  # one row per finished epoch

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainState":
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


class HookBase:
    """Override any of these; ``self.trainer`` is set when the hook is registered."""

    trainer: "Trainer"

    def before_train(self) -> None: ...

    def after_train(self) -> None: ...

    def before_epoch(self) -> None: ...

    def after_epoch(self) -> None: ...

    def before_step(self) -> None: ...

    def after_step(self) -> None: ...


class Trainer:
    """Runs ``epochs`` epochs of ``loader`` over ``model`` with ``loss_fn(outputs, batch, progress)``.

    ``forward(model, batch)`` runs the model on a batch (default: ``model(batch["image"])``).

    ``loss_fn`` returns an object with ``total`` (a scalar tensor) and ``parts`` (name -> tensor).
    After each step ``self.step_losses`` holds the step's loss values; after each epoch
    ``self.epoch_row`` collects what the hooks report for it (mean losses, metrics, time).
    """

    def __init__(self, model: nn.Module, loss_fn: Callable, optimizer: torch.optim.Optimizer,
                 scheduler: torch.optim.lr_scheduler.LRScheduler, loader: Iterable, sampler: ShardSampler,
                 epochs: int, device: torch.device, dist_info: DistInfo = DistInfo(), amp: bool = False,
                 clip_grad_norm: float | None = None, max_iters_per_epoch: int | None = None,
                 batch_size: int = 1, forward: Callable[[nn.Module, dict], Any] | None = None):
        self.model, self.loss_fn = model, loss_fn
        self.optimizer, self.scheduler = optimizer, scheduler
        self.loader, self.sampler = loader, sampler
        self.epochs, self.device, self.dist = epochs, device, dist_info
        self.use_amp = bool(amp and device.type == "cuda")
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp)
        self.clip_grad_norm = clip_grad_norm
        self.max_iters = max_iters_per_epoch
        self.batch_size = batch_size
        self.forward = forward or (lambda model, batch: model(batch["image"]))
        self.state = TrainState()
        self.hooks: list[HookBase] = []
        self.step_losses: dict[str, float] = {}
        self.epoch_row: dict[str, float] = {}
        self.stop_requested = False
        self._sums: dict[str, float] = {}
        self._count = 0

    # -- set-up --------------------------------------------------------------------------------------------
    def register(self, hooks: Sequence[HookBase]) -> None:
        for h in hooks:
            h.trainer = self
            self.hooks.append(h)

    @property
    def module(self) -> nn.Module:
        """The model without its DDP wrapper."""
        return getattr(self.model, "module", self.model)

    def iters_per_epoch(self) -> int:
        n = math.ceil(self.sampler.size / max(1, self.dist.world_size)) // self.batch_size
        n = max(1, n)
        return min(n, self.max_iters) if self.max_iters else n

    def progress(self) -> float:
        """Fraction of training done, in [0, 1] (drives the structure-loss weight)."""
        return min(1.0, (self.state.epoch + self.state.step_in_epoch / self.iters_per_epoch()) / self.epochs)

    # -- the loop ----------------------------------------------------------------------------------------
    def train(self) -> TrainState:
        self._call("before_train")
        try:
            while self.state.epoch < self.epochs and not self.stop_requested:
                self._run_epoch()
        finally:
            self._call("after_train")
        return self.state

    def _run_epoch(self) -> None:
        skip = self.state.step_in_epoch * self.batch_size
        self.sampler.set_epoch(self.state.epoch, skip)
        dataset = getattr(self.loader, "dataset", None)
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(self.state.epoch)
        self.epoch_row = {}
        self._sums, self._count = {}, 0
        self._epoch_start = time.time()
        self.model.train()
        self._call("before_epoch")
        limit = self.iters_per_epoch()
        for batch in self.loader:
            if self.state.step_in_epoch >= limit or self.stop_requested:
                break
            if not self._everyone_has(batch):  # every image of some process's batch was unreadable
                continue
            self._call("before_step")
            self.run_step(batch)
            self.state.iteration += 1
            self.state.step_in_epoch += 1
            self._call("after_step")
        losses = all_reduce_mean({k: v / max(1, self._count) for k, v in self._sums.items()}, self.device)
        self.epoch_row.update({"epoch": self.state.epoch + 1, "iteration": self.state.iteration,
                               "lr": self.optimizer.param_groups[0]["lr"], "time_s": time.time() - self._epoch_start,
                               **{f"loss.{k}": v for k, v in losses.items()}})
        self.state.epoch += 1
        self.state.step_in_epoch = 0
        # The row is shared: hooks add their values (metrics) before it is saved or logged.
        self.state.history.append(self.epoch_row)
        self._call("after_epoch")

    def run_step(self, batch: dict[str, torch.Tensor]) -> None:
        batch = {k: v.to(self.device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}
        autocast = torch.autocast("cuda", dtype=torch.float16) if self.use_amp else nullcontext()
        with autocast:
            outputs = self.forward(self.model, batch)
        losses = self.loss_fn(outputs, batch, self.progress())
        if not torch.isfinite(losses.total):
            raise FloatingPointError(f"loss is {losses.total.item()} at iteration {self.state.iteration}; "
                                     "lower optim.lr or enable solver.clip_grad_norm")
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(losses.total).backward()
        if self.clip_grad_norm:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.clip_grad_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        self.step_losses = {"total": float(losses.total.detach()),
                            **{k: float(v.detach()) for k, v in losses.parts.items()}}
        for k, v in self.step_losses.items():
            self._sums[k] = self._sums.get(k, 0.0) + v
        self._count += 1

    def _everyone_has(self, batch) -> bool:
        """Whether every process got a batch; under DDP all must skip together or none may."""
        if not self.dist.enabled:
            return batch is not None
        import torch.distributed as dist

        flag = torch.tensor([0.0 if batch is None else 1.0], device=self.device)
        dist.all_reduce(flag, op=dist.ReduceOp.MIN)
        return bool(flag.item() > 0)

    def _call(self, name: str) -> None:
        for h in self.hooks:
            getattr(h, name)()

    # -- resume state ------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue (model weights included), as tensors and plain values."""
        return {"model": self.module.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict(),
                "state": self.state.to_dict()}

    def load_state_dict(self, d: dict[str, Any]) -> None:
        self.module.load_state_dict(d["model"])
        self.optimizer.load_state_dict(d["optimizer"])
        self.scheduler.load_state_dict(d["scheduler"])
        if d.get("scaler"):
            self.scaler.load_state_dict(d["scaler"])
        self.state = TrainState.from_dict(d["state"])
