"""``python -m train fit`` for a config with ``distill:``: train the YOLO-feature refiner on cached copies.

The copies (:mod:`train.distill`) are built or read from the cache first; then the trainer of
:mod:`train.trainer` runs with its usual hooks (resume, ``last.pt`` / ``best.pt``, ``log.csv``). A batch is
a set of copies; their people are refined together, each copy's overlapping people forming the
CoupleGraph pairs (the runtime's rule). The check after each ``solver.eval_every`` epochs uses the
copies of the ``val`` frames (the tails of the videos), never the held-out split: mean OKS per joint
against the targets, before and after refinement, over all joints and over the joints an occlusion
covered. With ``distill.ship_to`` set, the best epoch's weights are copied there at the end and scored on
the held-out split (:mod:`train.pipeline_eval`), which decides whether the pipeline uses them by default.
"""

from __future__ import annotations

import time
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from posecore.errors import ConfigError
from posecore.models.couplegraph import select_pairs
from posecore.models.yolo_refiner import YoloRefinerNet
from posecore.skeleton import COCO17

from . import distributed
from .build import build_net, build_optimizer, build_scheduler
from .checkpoint import BEST_MODEL, LAST_MODEL
from .config import DistillLossConfig, TrainConfig
from .datasets import DatasetError
from .distill import CopyRecord, DistillBuilder
from .distributed import ShardSampler
from .hooks import CheckpointHook, EvalHook, LoggingHook
from .losses import LossParts
from .trainer import HookBase, Trainer, TrainState

Print = Callable[[str], None]


class CopyDataset(Dataset):
    """Items: one copy's arrays (see :class:`train.distill.CopyRecord`), features as float32."""

    def __init__(self, records: Sequence[CopyRecord]):
        self.records = [r for r in records if len(r)]

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> CopyRecord:
        return self.records[index]


def collate_copies(records: Sequence[CopyRecord], iou_threshold: float) -> dict[str, torch.Tensor | np.ndarray]:
    """People of all copies concatenated (N in all); ``pairs`` int64[P, 2] indices into them (pairs never
    cross copies) and ``pair_iou`` float32[P]."""
    pairs, ious, offset = [], [], 0
    for r in records:
        p, iou = select_pairs(r.boxes, iou_threshold)
        pairs.append(p + offset)
        ious.append(iou)
        offset += len(r)
    cat = lambda name: torch.from_numpy(np.concatenate([getattr(r, name) for r in records]))  # noqa: E731
    return {"keypoints": cat("keypoints"), "boxes": cat("boxes"), "features": cat("features").float(),
            "grid": cat("grid").float(), "step": cat("step"), "target": cat("target"), "weight": cat("weight"),
            "scale": cat("scale"), "occluded": cat("occluded"),
            "pairs": torch.from_numpy(np.concatenate(pairs).astype(np.int64).reshape(-1, 2)),
            "pair_iou": np.concatenate(ious).astype(np.float32)}


def joint_error(xy: torch.Tensor, batch: dict, index: torch.Tensor | None = None) -> torch.Tensor:
    """float[..., K]: distance to the target in OKS units, |d| / (2 sigma_j x scale)."""
    target, scale = batch["target"], batch["scale"]
    if index is not None:
        target, scale = target[index], scale[index]
    sig = xy.new_tensor(COCO17.sigmas_array)
    return (xy - target).norm(dim=-1) / (2 * sig * scale.unsqueeze(-1))


class DistillLoss(nn.Module):
    """Weighted mean of the capped errors of each FGMH-GCN stage and of the CoupleGraph poses."""

    def __init__(self, cfg: DistillLossConfig):
        super().__init__()
        self.cfg = cfg

    def _term(self, err: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        return (err.clamp(max=self.cfg.cap) * weight).sum() / weight.sum().clamp(min=1.0)

    def forward(self, out: dict, batch: dict, progress: float = 1.0) -> LossParts:
        w = batch["weight"]
        parts = {}
        stages = out["stages"]
        sw = list(self.cfg.stage_weights)[-len(stages):]
        sw = [1.0] * (len(stages) - len(sw)) + sw
        parts["l0"] = self._term(joint_error(out["local"], batch), w)
        total = self.cfg.local_weight * parts["l0"]
        for i, (xy, s) in enumerate(zip(stages, sw)):
            parts[f"l{i + 1}"] = self._term(joint_error(xy, batch), w)
            total = total + s * parts[f"l{i + 1}"]
        if out["couple"] is not None:
            pairs = batch["pairs"]
            parts["lc"] = self._term(joint_error(out["couple"], batch, pairs), w[pairs])
            total = total + self.cfg.couple_weight * parts["lc"]
        return LossParts(total, parts)


def distill_forward(model: nn.Module, batch: dict) -> dict:
    return model(batch["keypoints"], batch["boxes"], batch["features"], batch["grid"], batch["step"], batch["pairs"])


class CopyEvaluator:
    """Mean OKS per target joint on the val copies (and on the occluded ones), before and after refinement."""

    def __init__(self, records: Sequence[CopyRecord], iou_threshold: float, say: Print, batch: int = 64):
        self.batches = [collate_copies(records[i:i + batch], iou_threshold)
                        for i in range(0, len(records), batch)]
        self.say = say

    @torch.no_grad()
    def __call__(self, model: nn.Module) -> dict[str, float]:
        model = getattr(model, "module", model)
        was = model.training
        model.eval()
        sums = np.zeros(4)
        counts = np.zeros(2)
        for b in self.batches:
            out = distill_forward(model, b)
            final = YoloRefinerNet.assemble(out, b["pairs"].numpy(), b["pair_iou"])
            w = b["weight"] > 0
            occ = w & b["occluded"]
            for i, xy in enumerate((b["keypoints"][..., :2], final)):
                oks = torch.exp(-joint_error(xy, b) ** 2 / 2)
                sums[i] += float(oks[w].sum())
                sums[2 + i] += float(oks[occ].sum())
            counts += (float(w.sum()), float(occ.sum()))
        model.train(was)
        c = np.maximum(counts, 1.0)
        m = {"val.oks_base": sums[0] / c[0], "val.oks": sums[1] / c[0],
             "val.oks_occluded_base": sums[2] / c[1], "val.oks_occluded": sums[3] / c[1]}
        self.say("  val copies: OKS per joint {:.4f} -> {:.4f}, occluded joints {:.4f} -> {:.4f}".format(
            m["val.oks_base"], m["val.oks"], m["val.oks_occluded_base"], m["val.oks_occluded"]))
        return m


def feature_stats(records: Sequence[CopyRecord]) -> tuple[torch.Tensor, ...]:
    """Per-channel mean and std of the base's features at the joints, and of its finest map on the grids."""
    out = []
    for name in ("features", "grid"):
        total, sq, count = 0.0, 0.0, 0
        for r in records:
            f = getattr(r, name)
            f = f.reshape(-1, f.shape[-1]).astype(np.float64)
            total, sq, count = total + f.sum(0), sq + (f * f).sum(0), count + len(f)
        mean = total / max(count, 1)
        std = np.sqrt(np.maximum(sq / max(count, 1) - mean * mean, 0.0))
        out += [torch.from_numpy(mean).float(), torch.from_numpy(std).float()]
    return tuple(out)


def fit_distill(cfg: TrainConfig, say: Print) -> TrainState:
    """Build or read the copies, train, and (with ``distill.ship_to``) ship and score the result."""
    dc = cfg.distill
    t_start = time.time()
    device = torch.device("cpu" if cfg.solver.device in ("auto", "cpu") else cfg.solver.device)
    params = cfg.model.params
    grid = (int(params.get("radius", 2)), float(params.get("grid_step", 4.0)))
    builder = DistillBuilder(dc, dc.cache_dir or cfg.output_dir / "cache", cfg.solver.seed, say, grid)
    say(f"distill: frames from {len(dc.sources)} sources, {dc.copies} copies each; cache {builder.cache}")
    train_recs, val_recs = builder.build()
    t_data = time.time() - t_start
    n_people = sum(len(r) for r in train_recs)
    n_targets = sum(int((r.weight.sum(1) > 0).sum()) for r in train_recs)
    say(f"distill: {len(train_recs)} training copies ({n_people} people, {n_targets} with targets), "
        f"{len(val_recs)} val copies; data ready in {t_data / 60:.1f} min")
    if not train_recs:
        raise DatasetError("distill: no training copy holds a person; add sources with people")

    model = build_net(cfg.model, COCO17).to(device)
    if not isinstance(model, YoloRefinerNet):
        raise ConfigError(f"model: distillation trains yolo_refiner, not {model.config['name']}")
    model.set_feature_stats(*feature_stats(train_recs))
    dataset = CopyDataset(train_recs)
    sampler = ShardSampler(len(dataset), shuffle=True, seed=cfg.solver.seed)
    loader = DataLoader(dataset, batch_size=cfg.solver.batch_size, sampler=sampler, num_workers=0,
                        collate_fn=lambda items: collate_copies(items, dc.iou_threshold),
                        drop_last=len(dataset) >= cfg.solver.batch_size)
    optimizer = build_optimizer(cfg.optim, model)
    trainer = Trainer(model, DistillLoss(dc.loss), optimizer, None, loader, sampler, cfg.solver.epochs, device,
                      distributed.DistInfo(), False, cfg.solver.clip_grad_norm, cfg.solver.max_iters_per_epoch,
                      cfg.solver.batch_size, distill_forward)
    trainer.scheduler = build_scheduler(cfg.schedule, optimizer, trainer.iters_per_epoch(), cfg.solver.epochs)
    hooks: list[HookBase] = []
    if val_recs and cfg.solver.eval_every:
        hooks.append(EvalHook(CopyEvaluator(val_recs, dc.iou_threshold, say), cfg.solver.eval_every))
    hooks += [CheckpointHook(cfg.output_dir, cfg.solver.best_metric, cfg.solver.checkpoint_every_iters, log=say),
              LoggingHook(cfg.output_dir, cfg.solver.progress, cfg.solver.log_every)]
    trainer.register(hooks)
    say(f"model yolo_refiner ({sum(p.numel() for p in model.parameters()) / 1e6:.3f} M parameters), "
        f"{trainer.iters_per_epoch()} steps/epoch x {cfg.solver.epochs} epochs on {device}")
    t_train = time.time()
    state = trainer.train()
    t_train = time.time() - t_train
    best = cfg.output_dir / (BEST_MODEL if (cfg.output_dir / BEST_MODEL).is_file() else LAST_MODEL)
    say(f"done: {state.epoch} epochs in {t_train / 60:.1f} min; best {cfg.solver.best_metric} "
        f"{state.best:.4f} at epoch {state.best_epoch}; weights {best}")
    if dc.ship_to is not None:
        from .pipeline_eval import ship

        ship(cfg, best, builder, train_recs, val_recs, state, time.time() - t_start, say)
    return state

