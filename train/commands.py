"""The ``fit`` and ``eval`` commands: wiring config, data, model, trainer and evaluator together."""

from __future__ import annotations

import json
import logging
import math
import random
import sys
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
import yaml

from posecore.config import to_dict
from posecore.errors import ConfigError, WeightsError

from . import distributed
from .build import (build_evaluator, build_optimizer, build_pose_model, build_scheduler, eval_ground_truth,
                    eval_people, forward_kwargs, open_split, train_loader)
from .checkpoint import BEST_MODEL, LAST_MODEL
from .config import TrainConfig, load_config
from .datasets import KeypointAnnotations
from .datasets.base import read_json
from .evaluate import evaluate_keypoints, eval_kind, format_metrics
from .hooks import CheckpointHook, EvalHook, LoggingHook
from .losses import PoseLoss
from .trainer import Trainer, TrainState

Print = Callable[[str], None]


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _report(ann: KeypointAnnotations, out: Print) -> None:
    out(ann.report.summary())
    for line in ann.report.details():
        out(f"  {line}")


def _seed(seed: int, rank: int) -> None:
    random.seed(seed + rank)
    np.random.seed((seed + rank) % 2**32)
    torch.manual_seed(seed + rank)


def metrics_lines(metrics: dict[str, float], kind: str) -> list[str]:
    """Human-readable metric lines: overall, then visible and occluded joints."""
    main = [k for k in metrics if "." not in k]
    lines = [format_metrics(metrics, main)]
    for prefix in ("visible", "occluded"):
        keys = [k for k in metrics if k.startswith(prefix + ".")]
        if keys:
            body = format_metrics({k[len(prefix) + 1:]: metrics[k] for k in keys})
            lines.append(f"{prefix} joints (v={2 if prefix == 'visible' else 1}): {body}")
    return lines


def fit(config: str | Path | None, overrides: Sequence[str] = (), out: Print = _stderr) -> TrainState:
    """Train as configured; resume automatically from ``output_dir/last_state.pt``."""
    cfg = load_config(config, overrides)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    dist_info, device = distributed.setup(cfg.solver.device)
    say = out if dist_info.is_main else (lambda msg: None)
    try:
        _seed(cfg.solver.seed, dist_info.rank)
        train_ann = open_split(cfg.data.train, "train")
        _report(train_ann, say)
        model = build_pose_model(cfg.model, train_ann.skeleton).to(device)
        loader, sampler = train_loader(cfg, train_ann, model, dist_info)
        evaluator = None
        if cfg.data.val is not None and cfg.solver.eval_every:
            val_ann = open_split(cfg.data.val, "val")
            _report(val_ann, say)
            evaluator = build_evaluator(cfg, cfg.data.val, val_ann, model, device, dist_info,
                                        cfg.output_dir / "val_results.json")
        loss_fn = PoseLoss(cfg.loss, train_ann.skeleton, tuple(model.input_size)).to(device)
        kwargs = forward_kwargs(model, cfg.solver.teacher_force_visibility)
        net = _wrap_ddp(model, cfg, dist_info, device)
        optimizer = build_optimizer(cfg.optim, model)
        trainer = Trainer(net, loss_fn, optimizer, None, loader, sampler, cfg.solver.epochs, device, dist_info,
                          cfg.solver.amp, cfg.solver.clip_grad_norm, cfg.solver.max_iters_per_epoch,
                          cfg.solver.batch_size, kwargs)
        trainer.scheduler = build_scheduler(cfg.schedule, optimizer, trainer.iters_per_epoch(), cfg.solver.epochs)
        hooks = [] if evaluator is None else [EvalHook(evaluator, cfg.solver.eval_every)]
        hooks += [CheckpointHook(cfg.output_dir, cfg.solver.best_metric, cfg.solver.checkpoint_every_iters, log=say),
                  LoggingHook(cfg.output_dir, cfg.solver.progress and dist_info.is_main, cfg.solver.log_every)]
        trainer.register(hooks)
        if dist_info.is_main:
            _write_config(cfg)
            say(f"model {model.config['name']} ({sum(p.numel() for p in model.parameters()) / 1e6:.2f} M parameters), "
                f"input {model.input_size[0]}x{model.input_size[1]}, {len(loader.dataset)} people, "
                f"{trainer.iters_per_epoch()} steps/epoch x {cfg.solver.epochs} epochs on {device}"
                + (f" x {dist_info.world_size} processes" if dist_info.enabled else ""))
        try:
            state = trainer.train()
        except RuntimeError as e:
            if "state_dict" in str(e) or "size mismatch" in str(e):
                raise WeightsError(f"cannot resume from {cfg.output_dir}: the saved model differs from the "
                                   "configured one; choose another output_dir") from None
            raise
        if dist_info.is_main:
            best = f"best {cfg.solver.best_metric} {state.best:.4f} at epoch {state.best_epoch}" \
                if math.isfinite(state.best) else "no evaluation"
            say(f"done: {state.epoch} epochs, {state.iteration} steps; {best}; "
                f"checkpoints {cfg.output_dir / LAST_MODEL}" + (f", {cfg.output_dir / BEST_MODEL}"
                                                                 if math.isfinite(state.best) else ""))
        return state
    finally:
        distributed.cleanup()


def _wrap_ddp(model: torch.nn.Module, cfg: TrainConfig, dist_info: distributed.DistInfo, device: torch.device):
    if not dist_info.enabled:
        return model
    from torch.nn.parallel import DistributedDataParallel

    if cfg.solver.sync_bn:
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids, find_unused_parameters=cfg.solver.find_unused_parameters)


def _write_config(cfg: TrainConfig) -> None:
    cfg.output_dir.mkdir(parents=True, exist_ok=True)
    (cfg.output_dir / "config.yaml").write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))


def evaluate(config: str | Path | None, overrides: Sequence[str] = (), weights: str | Path | None = None,
             predictions: str | Path | None = None, output: str | Path | None = None,
             out: Print = print, note: Print = _stderr) -> dict[str, float]:
    """AP of a checkpoint (``weights``) or of a COCO results file (``predictions``) on ``data.val``."""
    cfg = load_config(config, overrides)
    if cfg.data.val is None:
        raise ConfigError("data.val: no evaluation split configured")
    if (weights is None) == (predictions is None):
        raise ConfigError("eval: give exactly one of --weights or --predictions")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    dcfg = cfg.data.val
    ann = open_split(dcfg, "val")
    _report(ann, note)
    sk = ann.skeleton
    out_dir = Path(output) if output else (Path(weights).parent if weights else Path(predictions).parent) / "eval"
    if predictions is not None:
        results = read_json(Path(predictions))
        if not isinstance(results, list):
            raise ConfigError(f"--predictions: {predictions} is not a COCO results list")
        people = eval_people(ann, dcfg)
        gt = eval_ground_truth(ann, people, restrict=dcfg.max_people is not None)
        try:
            metrics = evaluate_keypoints(gt, results, sk.sigmas, eval_kind(dcfg.format), cfg.eval.visibility_split)
        except (KeyError, TypeError, ValueError) as e:
            raise ConfigError(f"--predictions: {predictions}: malformed result ({e})") from None
        note(f"{len(results)} results from {predictions}")
    else:
        from posecore.weights import load_checkpoint

        dist_info, device = distributed.setup(cfg.solver.device)
        try:
            model, model_cfg = load_checkpoint(weights)
            if getattr(model, "skeleton", sk.name) != sk.name:
                raise WeightsError(f"{weights}: model for skeleton {model.skeleton}, data.val is {sk.name}")
            model = model.to(device)
            evaluator = build_evaluator(cfg, dcfg, ann, model, device, dist_info, out_dir / "results.json")
            n = len(evaluator.loader.dataset)
            note(f"{model_cfg.get('name', '?')} from {weights}: {n} {'ground-truth' if dcfg.boxes == 'gt' else 'detected'} "
                 f"boxes, flip test {'on' if cfg.eval.flip_test else 'off'}")
            metrics = evaluator(model)
            if not dist_info.is_main:
                return metrics
        finally:
            distributed.cleanup()
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "metrics.json").write_text(json.dumps({k: (v if math.isfinite(v) else None)
                                                      for k, v in metrics.items()}, indent=1))
    out(f"{dcfg.format} {dcfg.ann_file.name} ({eval_kind(dcfg.format)} evaluation)")
    for line in metrics_lines(metrics, eval_kind(dcfg.format)):
        out(line)
    note(f"wrote {out_dir / 'metrics.json'}" + ("" if predictions else f" and {out_dir / 'results.json'}"))
    return metrics
