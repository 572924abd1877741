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
from torch.utils.data import DataLoader

from posecore.config import to_dict
from posecore.errors import ConfigError, WeightsError
from posecore.models.couplegraph import CoupleGraph
from posecore.pair_stage import EXTRA_KEY, PairStage
from posecore.weights import read_checkpoint

from . import distributed
from .build import (PoseForward, build_evaluator, build_net, build_optimizer, build_scheduler, eval_ground_truth,
                    eval_people, is_pose_model, open_split, pose_forward, train_loader)
from .checkpoint import BEST_MODEL, LAST_MODEL, save_model
from .config import TrainConfig, load_config
from .datasets import DatasetError, KeypointAnnotations
from .datasets.base import read_json
from .datasets.pairs import PairCropDataset, PairDataset, build_pairs, match_predictions
from .distributed import ShardSampler
from .evaluate import evaluate_keypoints, eval_kind, format_metrics
from .hooks import CheckpointHook, EvalHook, LoggingHook
from .losses import PoseLoss
from .refiner import (CoupleLoss, DagPairEvaluator, DagPairNet, RefinerEvaluator, couple_forward, dag_pair_forward,
                      save_dag_pair)
from .trainer import HookBase, Trainer, TrainState

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


def metrics_lines(metrics: dict[str, float]) -> list[str]:
    """Human-readable metric lines: overall, then visible and occluded joints (and before refinement)."""
    main = [k for k in metrics if "." not in k]
    lines = [format_metrics(metrics, main)]
    titles = {"visible": "visible joints (v=2)", "occluded": "occluded joints (v=1)", "initial": "before refinement"}
    for prefix, title in titles.items():
        keys = [k for k in metrics if k.startswith(prefix + ".")]
        if keys:
            lines.append(f"{title}: " + format_metrics({k[len(prefix) + 1:]: metrics[k] for k in keys}))
    return lines


def _model_name(cfg: TrainConfig) -> str | None:
    from posecore.models import load_model_config

    base = dict(load_model_config(cfg.model.config)) if cfg.model.config else {}
    return {**base, **cfg.model.params}.get("name")


def fit(config: str | Path | None, overrides: Sequence[str] = (), out: Print = _stderr,
        init: str | Path | None = None) -> TrainState:
    """Train as configured; resume automatically from ``output_dir/last_state.pt``. ``init``: a checkpoint to
    start from (``model.init_weights``), or for CoupleGraph the DAG it refines (``refiner.estimator``)."""
    cfg = load_config(config, overrides)
    if init is not None:
        key = "refiner.estimator" if _model_name(cfg) == "couplegraph" else "model.init_weights"
        cfg = load_config(config, [*overrides, f"{key}={init}"])
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if cfg.distill is not None:  # the YOLO-feature refiner: distilled on frames, one process
        from .distill_fit import fit_distill

        _seed(cfg.solver.seed, 0)
        _write_config(cfg)
        return fit_distill(cfg, out)
    dist_info, device = distributed.setup(cfg.solver.device)
    say = out if dist_info.is_main else (lambda msg: None)
    try:
        _seed(cfg.solver.seed, dist_info.rank)
        train_ann = open_split(cfg.data.train, "train")
        _report(train_ann, say)
        save = save_model
        if cfg.refiner.estimator is not None:
            if _model_name(cfg) != "couplegraph":
                raise ConfigError("refiner.estimator: only for a CoupleGraph model (model.params.name: couplegraph)")
            model, parts = _dag_pair_parts(cfg, train_ann, device, dist_info, say)
            save = save_dag_pair
        else:
            model = build_net(cfg.model, train_ann.skeleton).to(device)
        if isinstance(model, DagPairNet):
            pass
        elif is_pose_model(model):
            parts = _pose_parts(cfg, train_ann, model, device, dist_info, say)
        elif isinstance(model, CoupleGraph):
            parts = _couple_parts(cfg, train_ann, device, dist_info, say)
        else:
            raise ConfigError(f"model: {model.config['name']} is neither a pose model nor the CoupleGraph refiner")
        loader, sampler, loss_fn, forward, evaluator = parts
        net = _wrap_ddp(model, cfg, dist_info, device)
        optimizer = build_optimizer(cfg.optim, model)
        trainer = Trainer(net, loss_fn, optimizer, None, loader, sampler, cfg.solver.epochs, device, dist_info,
                          cfg.solver.amp, cfg.solver.clip_grad_norm, cfg.solver.max_iters_per_epoch,
                          cfg.solver.batch_size, forward)
        trainer.scheduler = build_scheduler(cfg.schedule, optimizer, trainer.iters_per_epoch(), cfg.solver.epochs)
        hooks = [forward] if isinstance(forward, HookBase) else []  # PoseForward switches its mask per epoch
        hooks += [] if evaluator is None else [EvalHook(evaluator, cfg.solver.eval_every)]
        hooks += [CheckpointHook(cfg.output_dir, cfg.solver.best_metric, cfg.solver.checkpoint_every_iters, log=say,
                                 save=save),
                  LoggingHook(cfg.output_dir, cfg.solver.progress and dist_info.is_main, cfg.solver.log_every)]
        trainer.register(hooks)
        if dist_info.is_main:
            _write_config(cfg)
            what = (f"input {model.input_size[0]}x{model.input_size[1]}, {len(loader.dataset)} people"
                    if is_pose_model(model) else f"{len(loader.dataset)} pairs of overlapping people")
            if not isinstance(model, DagPairNet):
                name = model.config["name"]
            else:
                what = (f"{len(loader.dataset.pairs)} real and {loader.dataset.pasted} pasted pairs, the DAG "
                        f"{'fine-tuned' if model.fine_tune else 'frozen'}")
                name = f"couplegraph ({model.couple.feat_channels} feature channels) on {model.dag.config['name']}"
            n_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
            trained = " trained" if isinstance(model, DagPairNet) else ""  # the frozen DAG's are not counted
            say(f"model {name} ({n_params / 1e6:.2f} M{trained} parameters), "
                f"{what}, {trainer.iters_per_epoch()} steps/epoch x {cfg.solver.epochs} epochs on {device}"
                + (f" x {dist_info.world_size} processes" if dist_info.enabled else ""))
            note = _forward_note(forward, model) if isinstance(forward, PoseForward) else ""
            if note:
                say(note)
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


def _forward_note(forward: PoseForward, model) -> str:
    """One line on what the pose model is given while training: ADAM's centre and its visibility mask."""
    from posecore.models.adam import ADAM
    from posecore.models.visibility import VisibilityReasoning

    notes = []
    if any(isinstance(m, ADAM) for m in model.modules()):
        centre = "the visible joints' mean" if forward.centers else "the box centre"
        notes.append(f"ADAM's instance feature at {centre}")
    if any(isinstance(m, VisibilityReasoning) for m in model.modules()):
        n = forward.teacher_epochs
        notes.append("visibility mask: " + (f"ground truth for {n} epoch{'s' if n != 1 else ''}, then VisNet's "
                                            "prediction" if n else "VisNet's prediction"))
    return "; ".join(notes)


def _pose_parts(cfg: TrainConfig, train_ann: KeypointAnnotations, model, device, dist_info, say: Print):
    """Loader, sampler, loss, forward and evaluator of a top-down pose model."""
    loader, sampler = train_loader(cfg, train_ann, model, dist_info)
    evaluator = None
    if cfg.data.val is not None and cfg.solver.eval_every:
        val_ann = open_split(cfg.data.val, "val")
        _report(val_ann, say)
        evaluator = build_evaluator(cfg, cfg.data.val, val_ann, model, device, dist_info,
                                    cfg.output_dir / "val_results.json")
    loss_fn = PoseLoss(cfg.loss, train_ann.skeleton, tuple(model.input_size)).to(device)
    return loader, sampler, loss_fn, pose_forward(cfg, model), evaluator


def _couple_parts(cfg: TrainConfig, train_ann: KeypointAnnotations, device, dist_info, say: Print):
    """Loader, sampler, loss, forward and evaluator of the CoupleGraph refiner."""
    rc, sigmas = cfg.refiner, train_ann.skeleton.sigmas_array
    initial = None
    if rc.train_predictions is not None:
        initial = match_predictions(train_ann, _results_file(rc.train_predictions, "refiner.train_predictions"), sigmas)
        say(f"initial poses: {len(initial)} of {len(train_ann.people)} people matched in {rc.train_predictions}")
    pairs = build_pairs(train_ann, rc.iou_threshold, initial)
    if not pairs:
        raise DatasetError(f"{train_ann.ann_file}: no pair of people overlaps with IoU >= {rc.iou_threshold}")
    dataset = PairDataset(pairs, sigmas, cfg.solver.seed, rc.noise, rc.swap_prob, rc.miss_prob)
    loader, sampler = _pair_loader(dataset, cfg, dist_info)
    evaluator = None
    if cfg.data.val is not None and rc.val_predictions is not None and cfg.solver.eval_every:
        evaluator = _refiner_evaluator(cfg, device, dist_info, say)
    return loader, sampler, CoupleLoss(), couple_forward, evaluator


def _pair_loader(dataset, cfg: TrainConfig, dist_info) -> tuple[DataLoader, ShardSampler]:
    """The shuffled, sharded loader of a pair dataset (a last short batch is dropped when a full one exists)."""
    sampler = ShardSampler(len(dataset), shuffle=True, seed=cfg.solver.seed, rank=dist_info.rank,
                           world_size=dist_info.world_size)
    per_rank = math.ceil(len(dataset) / dist_info.world_size)
    loader = DataLoader(dataset, batch_size=cfg.solver.batch_size, sampler=sampler, num_workers=cfg.data.num_workers,
                        drop_last=per_rank >= cfg.solver.batch_size)
    return loader, sampler


def _dag_pair_parts(cfg: TrainConfig, train_ann: KeypointAnnotations, device, dist_info, say: Print):
    """The image-guided CoupleGraph on a DAG (``refiner.estimator``): the net and its loader, sampler, loss,
    forward and evaluator."""
    from dataclasses import replace

    from posecore.weights import load_checkpoint

    from .transforms import InstancePaste, InstancePool

    rc, ip, sk = cfg.refiner, cfg.augment.instance_paste, train_ann.skeleton
    dag, dag_cfg = load_checkpoint(rc.estimator)
    channels = int(getattr(dag, "feature_channels", 0))
    if not is_pose_model(dag) or not channels:
        raise ConfigError(f"refiner.estimator: {rc.estimator} holds {dag_cfg['name']}, not a DAG with a feature map")
    if dag.skeleton != sk.name:
        raise ConfigError(f"refiner.estimator: {rc.estimator} is a DAG for {dag.skeleton}, the data's skeleton is {sk.name}")
    asked = cfg.model.params.get("feat_channels")
    if asked is not None and int(asked) != channels:
        raise ConfigError(f"model.params.feat_channels: {asked}, but the DAG's feature map has {channels} channels "
                          "(leave it out to take the DAG's)")
    couple = build_net(replace(cfg.model, params={**cfg.model.params, "feat_channels": channels}), sk)
    net = DagPairNet(dag, couple, rc.iou_threshold, rc.fine_tune).to(device)
    pairs = build_pairs(train_ann, rc.iou_threshold)
    hosts = [p for p in train_ann.people if int((p.keypoints[:, 2] > 0).sum()) >= ip.min_keypoints]
    pool = InstancePool(train_ann.pool, train_ann.image_path, ip.min_area, ip.min_keypoints, ip.pool_size,
                        ip.cache_size)
    paste = InstancePaste(pool, 1.0, 1, rc.paste_scale, ip.rotation, ip.relabel_occluded)
    dataset = PairCropDataset(train_ann, pairs, tuple(dag.input_size), cfg.augment.geometry.padding, hosts, paste,
                              rc.pasted_pairs, cfg.solver.seed)
    if len(dataset) == 0:
        raise DatasetError(f"{train_ann.ann_file}: no pair of people overlaps with IoU >= {rc.iou_threshold} and "
                           "refiner.pasted_pairs makes none (it needs people with a segmentation to paste)")
    loader, sampler = _pair_loader(dataset, cfg, dist_info)
    evaluator = None
    if cfg.data.val is not None and cfg.solver.eval_every:
        evaluator = _dag_pair_evaluator(cfg, device, dist_info, say)
    return net, (loader, sampler, CoupleLoss(), dag_pair_forward, evaluator)


def _dag_pair_evaluator(cfg: TrainConfig, device, dist_info, say: Print) -> DagPairEvaluator:
    val_ann = open_split(cfg.data.val, "val")
    _report(val_ann, say)
    people = eval_people(val_ann, cfg.data.val)
    gt = eval_ground_truth(val_ann, people, restrict=cfg.data.val.max_people is not None)
    return DagPairEvaluator(gt, val_ann, people, val_ann.skeleton.sigmas, eval_kind(cfg.data.val.format), device,
                            dist_info, cfg.eval.visibility_split, cfg.eval.flip_test)


def _refiner_evaluator(cfg: TrainConfig, device, dist_info, say: Print) -> RefinerEvaluator:
    if cfg.refiner.val_predictions is None:
        raise ConfigError("refiner.val_predictions: needed to evaluate a refiner (the estimator's results on data.val)")
    val_ann = open_split(cfg.data.val, "val")
    _report(val_ann, say)
    results = _results_file(cfg.refiner.val_predictions, "refiner.val_predictions")
    gt = eval_ground_truth(val_ann, val_ann.people, restrict=cfg.data.val.max_people is not None)
    return RefinerEvaluator(gt, results, val_ann.skeleton.sigmas, eval_kind(cfg.data.val.format),
                            cfg.refiner.iou_threshold, device, dist_info, cfg.eval.visibility_split)


def _results_file(path: Path, key: str) -> list[dict]:
    if not Path(path).is_file():
        raise ConfigError(f"{key}: no such file: {path}")
    results = read_json(Path(path))
    if not isinstance(results, list) or not all(isinstance(r, dict) and "keypoints" in r for r in results):
        raise ConfigError(f"{key}: {path} is not a COCO keypoint results list")
    return results


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
    pair_rows = False
    if weights is not None:
        from posecore.weights import load_checkpoint

        dist_info, device = distributed.setup(cfg.solver.device)
        try:
            model, model_cfg = load_checkpoint(weights)
            if getattr(model, "skeleton", sk.name) != sk.name:
                raise WeightsError(f"{weights}: model for skeleton {model.skeleton}, data.val is {sk.name}")
            model = model.to(device)
            if is_pose_model(model) and EXTRA_KEY in read_checkpoint(weights).extra:
                stage = PairStage.from_checkpoint(weights, device)
                stage.check_fits(sk.name, model.num_joints, int(getattr(model, "feature_channels", 0)))
                evaluator = _dag_pair_evaluator(cfg, device, dist_info, lambda m: None)
                note(f"{model_cfg.get('name', '?')} and its pair stage from {weights}: {len(evaluator.people)} "
                     f"{'ground-truth' if dcfg.boxes == 'gt' else 'detected'} boxes, run as `occlupose process "
                     f"--pose dag` runs them, without and with the pair stage")
                metrics = evaluator(DagPairNet(model, stage.net, stage.iou_threshold))
                pair_rows = True
                if dist_info.is_main:
                    out_dir.mkdir(parents=True, exist_ok=True)
                    (out_dir / "results.json").write_text(json.dumps(evaluator.last_results))
            elif isinstance(model, CoupleGraph):
                evaluator = _refiner_evaluator(cfg, device, dist_info, lambda m: None)
                note(f"{model_cfg.get('name', '?')} from {weights}: refining {len(evaluator.results)} results of "
                     f"{cfg.refiner.val_predictions}")
                metrics = evaluator(model)
                if dist_info.is_main:
                    out_dir.mkdir(parents=True, exist_ok=True)
                    (out_dir / "results.json").write_text(json.dumps(evaluator.last_results))
            else:
                evaluator = build_evaluator(cfg, dcfg, ann, model, device, dist_info, out_dir / "results.json")
                n = len(evaluator.loader.dataset)
                note(f"{model_cfg.get('name', '?')} from {weights}: {n} "
                     f"{'ground-truth' if dcfg.boxes == 'gt' else 'detected'} boxes, "
                     f"flip test {'on' if cfg.eval.flip_test else 'off'}")
                metrics = evaluator(model)
            if not dist_info.is_main:
                return metrics
        finally:
            distributed.cleanup()
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "metrics.json").write_text(json.dumps({k: (v if math.isfinite(v) else None)
                                                      for k, v in metrics.items()}, indent=1))
    out(f"{dcfg.format} {dcfg.ann_file.name} ({eval_kind(dcfg.format)} evaluation)")
    if pair_rows:
        main = [k for k in metrics if "." not in k]
        out("without pair stage: " + format_metrics({k: metrics[f"initial.{k}"] for k in main}))
        out("with pair stage:    " + format_metrics(metrics, main))
    else:
        for line in metrics_lines(metrics):
            out(line)
    note(f"wrote {out_dir / 'metrics.json'}" + ("" if predictions else f" and {out_dir / 'results.json'}"))
    return metrics


def eval_pipeline(config: str | Path, overrides: Sequence[str] = (), weights: str | Path | None = None,
                  output: str | Path | None = None, speed: bool = True, out: Print = print,
                  note: Print = _stderr) -> dict:
    """The yolo pipeline with and without the refiner on the config's held-out split (``distill.heldout``)."""
    from .pipeline_eval import evaluate_pipeline

    cfg = load_config(config, overrides)
    if cfg.distill is None:
        raise ConfigError("distill: eval-pipeline needs a refiner config with a distill.heldout split")
    out_dir = Path(output) if output else cfg.output_dir / "eval_pipeline"
    return evaluate_pipeline(cfg, weights, out=out, note=note, speed=speed, output=out_dir)
