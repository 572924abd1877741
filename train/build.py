"""From a :class:`~train.config.TrainConfig` to the objects a run needs: data, model, loss, optimizer."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from posecore.errors import ConfigError
from posecore.skeleton import Skeleton

from .config import DatasetConfig, ModelSection, OptimConfig, ScheduleConfig, TrainConfig
from .datasets import DatasetError, KeypointAnnotations, PersonRecord, load_detections, open_annotations
from .datasets.topdown import TopDownDataset, collate_people
from .distributed import DistInfo, ShardSampler
from .evaluate import eval_kind
from .inference import Evaluator
from .trainer import HookBase
from .transforms import (AffineCrop, CenterScale, Compose, EncodeTargets, HalfBody, InstancePaste, InstancePool,
                         LimbJointAugmentation, MaskJoints, RandomFlip, RandomScaleRotation, Sample)
from .transforms.targets import sample_meta, to_input


def open_split(cfg: DatasetConfig, what: str) -> KeypointAnnotations:
    """Read one configured split; its paths are checked first so the error names the config key."""
    if not str(cfg.ann_file) or str(cfg.ann_file) == ".":
        raise ConfigError(f"data.{what}.ann_file: not set")
    if not cfg.ann_file.is_file():
        raise ConfigError(f"data.{what}.ann_file: no such file: {cfg.ann_file}")
    if not cfg.img_dir.is_dir():
        raise ConfigError(f"data.{what}.img_dir: no such folder: {cfg.img_dir}")
    return open_annotations(cfg.format, cfg.ann_file, cfg.img_dir, cfg.skeleton, cfg.max_people)


# -- model ---------------------------------------------------------------------------------------------------
def model_config(section: ModelSection, skeleton: Skeleton) -> dict:
    """The dict for ``posecore.models.build_model``: the model YAML (a path or a name under configs/models),
    then ``params`` on top; the skeleton comes from the dataset and must agree with the model's."""
    from posecore.models import load_model_config

    base = dict(load_model_config(section.config)) if section.config else {}
    out = {**base, **section.params}
    if "name" not in out:
        raise ConfigError("model: no model name; set model.config to a model YAML or model.params.name")
    out.setdefault("skeleton", skeleton.name)
    if out["skeleton"] != skeleton.name:
        raise ConfigError(f"model.params.skeleton: {out['skeleton']} but the dataset's skeleton is {skeleton.name}")
    return out


def build_net(section: ModelSection, skeleton: Skeleton) -> nn.Module:
    """Any registered model (a pose model or a refiner), with its starting weights loaded."""
    from posecore.models import build_model

    model = build_model(model_config(section, skeleton))
    if section.backbone_weights:
        if not hasattr(model, "backbone"):
            raise ConfigError(f"model.backbone_weights: {model.config['name']} has no backbone")
        n, total = load_matching(model.backbone, _read_state_dict(section.backbone_weights, "model.backbone_weights"))
        if n == 0:
            raise ConfigError(f"model.backbone_weights: no tensor of {section.backbone_weights} fits the backbone")
    if section.init_weights:
        from posecore.weights import read_checkpoint

        n, total = load_matching(model, read_checkpoint(section.init_weights).state_dict)
        if n == 0:
            raise ConfigError(f"model.init_weights: {section.init_weights} shares no weights with {model.config['name']}")
    return model


def is_pose_model(model: nn.Module) -> bool:
    return all(hasattr(model, a) for a in ("codec", "input_size", "num_joints"))


def build_pose_model(section: ModelSection, skeleton: Skeleton) -> nn.Module:
    model = build_net(section, skeleton)
    if not is_pose_model(model):
        raise ConfigError(f"model: {model.config['name']} is not a top-down pose model")
    return model


def _read_state_dict(path: Path, key: str) -> dict[str, torch.Tensor]:
    """A bare state dict (e.g. ImageNet-pretrained HRNet), read with weights_only=True."""
    if not Path(path).is_file():
        raise ConfigError(f"{key}: no such file: {path}")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # pickles with code, truncated files: one line, not torch's traceback
        raise ConfigError(f"{key}: cannot read {path} safely ({type(e).__name__})") from None
    if isinstance(data, dict) and isinstance(data.get("state_dict"), dict):
        data = data["state_dict"]
    if not isinstance(data, dict):
        raise ConfigError(f"{key}: {path} is not a state dict")
    return {k: v for k, v in data.items() if torch.is_tensor(v)}


def load_matching(module: nn.Module, state: dict[str, torch.Tensor]) -> tuple[int, int]:
    """Copy the tensors of ``state`` whose name (after a ``module.`` / ``backbone.`` prefix) and shape
    match; returns (copied, size of the module's state). Heads of another skeleton are left as built."""
    own = module.state_dict()
    picked = {}
    for k, v in state.items():
        for prefix in ("", "module.", "backbone.", "module.backbone."):
            if k.startswith(prefix) and k[len(prefix):] in own:
                name = k[len(prefix):]
                if tuple(own[name].shape) == tuple(v.shape):
                    picked[name] = v
                break
    module.load_state_dict(picked, strict=False)
    return len(picked), len(own)


# -- data ----------------------------------------------------------------------------------------------------
def train_pipeline(cfg: TrainConfig, ann: KeypointAnnotations, input_size: tuple[int, int]) -> Compose:
    """CenterScale -> HalfBody -> RandomScaleRotation -> RandomFlip -> AffineCrop -> occlusions."""
    sk, geo, aug = ann.skeleton, cfg.augment.geometry, cfg.augment
    steps = [
        CenterScale(input_size, geo.padding),
        HalfBody(sk, input_size, geo.half_body_prob, geo.half_body_min_joints),
        RandomScaleRotation(geo.scale_factor, geo.rotation_factor, geo.rotation_prob),
        RandomFlip(sk, geo.flip_prob),
        AffineCrop(input_size),
    ]
    ip = aug.instance_paste
    if ip.enabled:
        pool = InstancePool(ann.pool, ann.image_path, ip.min_area, ip.min_keypoints, ip.pool_size, ip.cache_size)
        if len(pool) == 0:
            logging.getLogger("train.data").warning(
                "instance paste: no person of %s has a segmentation of %.0f px^2 and %d labelled joints; pasting "
                "does nothing", ann.ann_file.name, ip.min_area, ip.min_keypoints)
        steps.append(InstancePaste(pool, ip.prob, ip.max_instances, ip.scale_range, ip.rotation, ip.relabel_occluded))
    mj = aug.mask_joints
    if mj.enabled:
        steps.append(MaskJoints(mj.prob, mj.max_joints, mj.size_range, mj.fill, mj.relabel_occluded))
    lj = aug.limb_joints
    if lj.enabled:
        steps.append(LimbJointAugmentation(sk, lj.prob, lj.ratio, lj.block, lj.relabel_occluded))
    return Compose(steps)


def eval_pipeline(input_size: tuple[int, int], padding: float) -> Compose:
    return Compose([CenterScale(input_size, padding), AffineCrop(input_size)])


def eval_inputs(sample: Sample) -> dict[str, np.ndarray]:
    return {"image": to_input(sample.image), **sample_meta(sample)}


def eval_people(ann: KeypointAnnotations, cfg: DatasetConfig, what: str = "val") -> list[PersonRecord]:
    """The boxes to evaluate: the annotated people, or the detections of the split's images."""
    if cfg.boxes == "gt":
        return list(ann.people)
    if cfg.det_file is None:
        raise ConfigError(f"data.{what}.det_file: needed when data.{what}.boxes is detections")
    if not cfg.det_file.is_file():
        raise ConfigError(f"data.{what}.det_file: no such file: {cfg.det_file}")
    ok_images = {i for i in ann.image_ids() if _image_exists(ann, i)}
    dets = load_detections(cfg.det_file, ok_images, cfg.det_score_thr, ann.report)
    return dets[: cfg.max_people] if cfg.max_people else dets


def _image_exists(ann: KeypointAnnotations, image_id: int) -> bool:
    try:
        return Path(ann.image_path(image_id)).is_file()
    except KeyError:
        return False


def eval_ground_truth(ann: KeypointAnnotations, people: list[PersonRecord], restrict: bool) -> dict:
    """The ground truth to score against: the split's images whose file exists (only the images of
    ``people`` when ``restrict``, for runs on part of a split)."""
    images = [img for img in ann.raw["images"] if isinstance(img, dict) and "id" in img]
    keep = {int(img["id"]) for img in images if _image_exists(ann, int(img["id"]))}
    if restrict:
        keep &= {p.image_id for p in people}
    gt = {k: v for k, v in ann.raw.items() if k not in ("images", "annotations")}
    gt["images"] = [img for img in images if int(img["id"]) in keep]
    gt["annotations"] = [a for a in ann.raw["annotations"] if isinstance(a, dict) and a.get("image_id") in keep]
    gt.setdefault("categories", [{"id": 1, "name": "person"}])
    return gt


def train_loader(cfg: TrainConfig, ann: KeypointAnnotations, model: nn.Module, dist: DistInfo
                 ) -> tuple[DataLoader, ShardSampler]:
    pipeline = train_pipeline(cfg, ann, tuple(model.input_size))
    encode = EncodeTargets(model.codec, cfg.model.body_center.min_joints)
    dataset = TopDownDataset(ann, ann.people, pipeline, encode, seed=cfg.solver.seed)
    if len(dataset) == 0:
        raise DatasetError(f"{ann.ann_file}: no usable person to train on ({ann.report.summary()})")
    sampler = ShardSampler(len(dataset), shuffle=True, seed=cfg.solver.seed, rank=dist.rank,
                           world_size=dist.world_size)
    per_rank = math.ceil(len(dataset) / dist.world_size)
    loader = DataLoader(dataset, batch_size=cfg.solver.batch_size, sampler=sampler,
                        num_workers=cfg.data.num_workers, pin_memory=cfg.data.pin_memory and torch.cuda.is_available(),
                        collate_fn=collate_people, drop_last=per_rank >= cfg.solver.batch_size,
                        persistent_workers=False)
    return loader, sampler


def build_evaluator(cfg: TrainConfig, dcfg: DatasetConfig, ann: KeypointAnnotations, model: nn.Module,
                    device: torch.device, dist: DistInfo, results_path: Path | None, what: str = "val") -> Evaluator:
    people = eval_people(ann, dcfg, what)
    dataset = TopDownDataset(ann, people, eval_pipeline(tuple(model.input_size), cfg.augment.geometry.padding),
                             eval_inputs, with_others=False)
    sampler = ShardSampler(len(dataset), shuffle=False, rank=dist.rank, world_size=dist.world_size, pad=False)
    loader = DataLoader(dataset, batch_size=cfg.eval.batch_size, sampler=sampler, num_workers=cfg.data.num_workers,
                        pin_memory=cfg.data.pin_memory and torch.cuda.is_available(), collate_fn=collate_people)
    gt = eval_ground_truth(ann, people, restrict=dcfg.max_people is not None)
    sk = ann.skeleton
    return Evaluator(gt, loader, sk.sigmas, sk.flip_index.tolist(), cfg.eval, eval_kind(dcfg.format), device, dist,
                     amp=cfg.solver.amp, results_path=results_path)


# -- optimisation --------------------------------------------------------------------------------------------
def build_optimizer(cfg: OptimConfig, model: nn.Module) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    cls = torch.optim.AdamW if cfg.name == "adamw" else torch.optim.Adam
    return cls(params, lr=cfg.lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay)


def lr_factor(cfg: ScheduleConfig, iteration: int, iters_per_epoch: int, epochs: int) -> float:
    """Learning-rate multiplier after ``iteration`` steps: linear warm-up, then step decay at the
    milestone epochs or a cosine down to ``min_lr_ratio``."""
    warm = 1.0
    if iteration < cfg.warmup_iters:
        a = iteration / max(1, cfg.warmup_iters)
        warm = cfg.warmup_factor * (1 - a) + a
    if cfg.name == "step":
        epoch = iteration // max(1, iters_per_epoch)
        return warm * cfg.gamma ** sum(1 for m in cfg.milestones if epoch >= m)
    total = max(1, iters_per_epoch * epochs)
    t = min(1.0, iteration / total)
    return warm * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * t)))


def build_scheduler(cfg: ScheduleConfig, optimizer: torch.optim.Optimizer, iters_per_epoch: int, epochs: int):
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda it: lr_factor(cfg, it, iters_per_epoch, epochs))


class PoseForward(HookBase):
    """How the trainer runs a pose model on a batch (``forward(net, batch) -> dict``), and the hook that
    switches its visibility mask.

    Visibility: during the first ``teacher_epochs`` epochs the mask of the visibility reasoning is the ground
    truth (v = 2 visible; v = 1 and v = 0 masked), afterwards VisNet's own prediction, which is what the model
    uses at inference. Training on the predicted mask removes the train/test mismatch; the warm-up keeps
    VisNet's first guesses (its features are sampled at the poses of an untrained network) from masking at
    random while the transformer learns what a mask means. Counted in epochs, like the learning-rate
    milestones, so a resumed run switches at the same point.

    Body centre: with ``centers``, ``batch["body_center"]`` (crop pixels) goes to ADAM's channel attention;
    without, the model reads at the crop centre (the box centre), as at inference.
    """

    def __init__(self, teacher_epochs: int, centers: bool = False, takes_visible: bool = True) -> None:
        self.teacher_epochs, self.centers, self.takes_visible = teacher_epochs, centers, takes_visible
        self.teacher_force = teacher_epochs > 0  # until the trainer says which epoch it is

    def before_epoch(self) -> None:
        self.teacher_force = self.trainer.state.epoch < self.teacher_epochs

    def __call__(self, net: nn.Module, batch: dict) -> dict:
        kwargs = {}
        if self.teacher_force and self.takes_visible:
            kwargs["visible"] = (batch["flags"] == 2).float()
        if self.centers:
            kwargs["centers"] = batch["body_center"]
        return net(batch["image"], **kwargs)


def pose_forward(cfg: TrainConfig, model: nn.Module) -> PoseForward:
    """The forward of a pose model as configured (``solver.visibility_teacher_epochs``, ``model.body_center``)."""
    import inspect

    params = inspect.signature(model.forward).parameters
    centers = cfg.model.body_center.source == "visible_joints"
    if centers and "centers" not in params:
        raise ConfigError(f"model.body_center.source: {model.config['name']} has no ADAM to read at a body centre; "
                          "use box")
    return PoseForward(cfg.solver.visibility_teacher_epochs, centers, "visible" in params)


__all__ = ["PoseForward", "build_evaluator", "build_net", "build_optimizer", "build_pose_model", "build_scheduler",
           "eval_ground_truth", "eval_inputs", "eval_people", "eval_pipeline", "is_pose_model", "load_matching",
           "lr_factor", "model_config", "open_split", "pose_forward", "train_loader", "train_pipeline"]
