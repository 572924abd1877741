"""Typed training and evaluation configuration (one YAML file per experiment, ``key=value`` overrides).

Every section is a dataclass checked by :func:`posecore.config.from_dict`, so an unknown key, a wrong type or
an out-of-range value is reported with its dotted name before anything runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from posecore.config import apply_overrides, from_dict, load_yaml, option
from posecore.pose_score import KPT_SCORE_THR

DatasetFormat = Literal["coco", "crowdpose", "ochuman"]


@dataclass
class DatasetConfig:
    """One annotated split on disk: a COCO-format keypoint JSON and its image folder."""

    format: DatasetFormat = "coco"
    ann_file: Path = Path("")
    img_dir: Path = Path("")
    # coco17 / crowdpose14; empty: the format's own (crowdpose -> crowdpose14, else coco17).
    skeleton: str = ""
    # Evaluation boxes: ground-truth boxes, or a COCO results list of person detections.
    boxes: Literal["gt", "detections"] = "gt"
    det_file: Path | None = None
    det_score_thr: float = option(0.0, ge=0.0, le=1.0, help="detections below this score are dropped")
    max_people: int | None = option(None, ge=1, help="use only the first N people (quick runs)")


@dataclass
class DataConfig:
    train: DatasetConfig = field(default_factory=DatasetConfig)
    val: DatasetConfig | None = None
    num_workers: int = option(4, ge=0, le=64)
    pin_memory: bool = True


@dataclass
class GeometryConfig:
    """Top-down crop and its random geometry (the HRNet recipe the DAG paper follows)."""

    padding: float = option(1.25, ge=1.0, le=3.0, help="box enlargement before cropping")
    scale_factor: float = option(0.35, ge=0.0, lt=1.0, help="random scale in [1 - f, 1 + f]")
    rotation_factor: float = option(45.0, ge=0.0, le=90.0, help="rotation std in degrees, clipped at 2x")
    rotation_prob: float = option(0.6, ge=0.0, le=1.0)
    flip_prob: float = option(0.5, ge=0.0, le=1.0)
    half_body_prob: float = option(0.3, ge=0.0, le=1.0)
    half_body_min_joints: int = option(8, ge=1, help="labelled joints needed before half-body applies")


@dataclass
class MaskJointsConfig:
    """DAG mask joints: rectangles of random size over randomly chosen joints of the person."""

    enabled: bool = True
    prob: float = option(0.5, ge=0.0, le=1.0)
    max_joints: int = option(3, ge=1, le=64, help="1..max_joints labelled joints are masked")
    size_range: list[float] = field(default_factory=lambda: [0.05, 0.25])  # rectangle side as a fraction of the box side
    fill: Literal["random", "noise", "mean", "black"] = "random"
    relabel_occluded: bool = True  # visible joints under a rectangle become v=1

    def __post_init__(self) -> None:
        _check_range_pair(self.size_range, "size_range", 0.0, 1.0)


@dataclass
class InstancePasteConfig:
    """DAG instance paste: people cut out with the dataset's own segmentation, pasted over the crop."""

    enabled: bool = True
    prob: float = option(0.5, ge=0.0, le=1.0)
    max_instances: int = option(2, ge=1, le=16)
    scale_range: list[float] = field(default_factory=lambda: [0.5, 1.1])  # pasted height as a fraction of the target box height
    rotation: float = option(30.0, ge=0.0, le=180.0, help="uniform rotation in [-r, r] degrees")
    min_area: float = option(1024.0, ge=0.0, help="smallest segmentation area kept in the pool (px^2)")
    min_keypoints: int = option(5, ge=0, help="labelled joints a pool instance needs")
    pool_size: int | None = option(None, ge=1, help="cap on the pool (first N instances)")
    cache_size: int = option(64, ge=0, help="cut-outs kept in memory per worker")
    relabel_occluded: bool = True

    def __post_init__(self) -> None:
        _check_range_pair(self.scale_range, "scale_range", 0.01, 10.0)


@dataclass
class LimbJointConfig:
    """LJA: ceil(ratio x visible limb joints) joints, each under one block of block x box size."""

    enabled: bool = False
    prob: float = option(1.0, ge=0.0, le=1.0)
    ratio: float = option(0.15, gt=0.0, le=1.0)
    block: float = option(0.20, gt=0.0, le=1.0)
    relabel_occluded: bool = True


@dataclass
class AugmentConfig:
    geometry: GeometryConfig = field(default_factory=GeometryConfig)
    mask_joints: MaskJointsConfig = field(default_factory=MaskJointsConfig)
    instance_paste: InstancePasteConfig = field(default_factory=InstancePasteConfig)
    limb_joints: LimbJointConfig = field(default_factory=LimbJointConfig)


@dataclass
class StructureLossConfig:
    """LJA paper's dynamic structure loss on the two limb graphs, weighted alpha(epoch)."""

    enabled: bool = False
    scheme: Literal["constant", "step", "linear", "exponential"] = "step"
    weight: float = option(1.0, ge=0.0, help="alpha at full strength")
    start: float = option(0.5, ge=0.0, le=1.0, help="step scheme: fraction of training where alpha switches on")


@dataclass
class LossConfig:
    """Total = multi_weight*lm + target_weight*lt + pose_weight*lp + alpha*ls + visibility_weight*lvis."""

    multi_weight: float = option(1.0, ge=0.0, help="lm: heatmaps of every person in the crop")
    target_weight: float = option(1.0, ge=0.0, help="lt: heatmaps of the target person")
    pose_weight: float = option(0.1, ge=0.0, help="lambda for lp, the masked L1 of GCN poses")
    pose_stage_weights: list[float] = field(default_factory=lambda: [0.3, 0.5, 1.0])
    pose_init_weight: float = option(1.0, ge=0.0, help="weight of the initial (integral) pose in lp")
    occluded_weight: float = option(1.0, ge=0.0, le=1.0, help="weight of v=1 joints in lt and lp")
    visibility_weight: float = option(1.0, ge=0.0)
    structure: StructureLossConfig = field(default_factory=StructureLossConfig)

    def __post_init__(self) -> None:
        for i, w in enumerate(self.pose_stage_weights):
            if w < 0:
                raise ValueError(f"pose_stage_weights[{i}]: must be >= 0, got {w}")


@dataclass
class OptimConfig:
    name: Literal["adam", "adamw"] = "adam"
    lr: float = option(1e-3, gt=0.0, le=1.0)
    weight_decay: float = option(0.0, ge=0.0, le=1.0)
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])

    def __post_init__(self) -> None:
        _check_range_pair(self.betas, "betas", 0.0, 0.999999)


@dataclass
class ScheduleConfig:
    name: Literal["step", "cosine"] = "step"
    milestones: list[int] = field(default_factory=lambda: [170, 200])  # epochs
    gamma: float = option(0.1, gt=0.0, le=1.0)
    warmup_iters: int = option(500, ge=0)
    warmup_factor: float = option(0.001, gt=0.0, le=1.0)
    min_lr_ratio: float = option(0.0, ge=0.0, le=1.0, help="cosine floor as a fraction of lr")


@dataclass
class SolverConfig:
    epochs: int = option(210, ge=1)
    batch_size: int = option(32, ge=1, help="per process")
    amp: bool = True  # mixed precision; used on CUDA only
    clip_grad_norm: float | None = option(None, gt=0.0)
    seed: int = option(0, ge=0)
    device: str = "auto"
    max_iters_per_epoch: int | None = option(None, ge=1, help="cut epochs short (smoke runs)")
    checkpoint_every_iters: int = option(0, ge=0, help="also save mid-epoch; 0 = at epoch ends only")
    eval_every: int = option(1, ge=0, help="epochs between evaluations; 0 = never")
    log_every: int = option(20, ge=1)
    best_metric: str = "AP"
    progress: bool = True
    # The visibility mask of the first N epochs is the ground truth (v = 2), then VisNet's prediction, so the
    # reasoning trains on the mask it gets at inference; the warm-up spares it VisNet's early guesses.
    visibility_teacher_epochs: int = option(10, ge=0, help="epochs trained with the ground-truth visibility mask")
    find_unused_parameters: bool = False  # DDP: set when some outputs take no part in the loss
    sync_bn: bool = False  # DDP: batch-norm statistics over all processes


@dataclass
class EvalConfig:
    flip_test: bool = True
    batch_size: int = option(32, ge=1)
    keypoint_source: Literal["auto", "gcn", "heatmap"] = "auto"  # auto: the last GCN stage when present
    rescore: bool = True  # person score x mean score of confident joints (posecore.pose_score)
    kpt_score_thr: float = option(KPT_SCORE_THR, ge=0.0, le=1.0)
    oks_nms_thr: float | None = option(0.9, gt=0.0, le=1.0, help="OKS-NMS on detection boxes; null = off")
    visibility_split: bool = True  # also AP on visible (v=2) and occluded (v=1) joints


@dataclass
class BodyCenterConfig:
    """Where DAG's ADAM reads the instance feature while training (eq. 1: "the center of the human body").

    ``box``: the crop centre, which is the box centre, as at inference. ``visible_joints``: the mean of the
    target's visible (v = 2) joints after augmentation, the box centre when fewer than ``min_joints`` are
    visible. Inference has no labels and always reads at the box centre.
    """

    source: Literal["box", "visible_joints"] = "box"
    min_joints: int = option(4, ge=1, le=64, help="visible joints needed for their mean")


@dataclass
class ModelSection:
    """The estimator: a model YAML (a path, or a name under configs/models) with ``params`` on top."""

    config: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    backbone_weights: Path | None = None  # ImageNet-pretrained HRNet state dict (the papers start from it)
    init_weights: Path | None = None  # an occlupose checkpoint whose matching weights start the training
    body_center: BodyCenterConfig = field(default_factory=BodyCenterConfig)


@dataclass
class RefinerConfig:
    """CoupleGraph training: pairs of overlapping people (box IoU >= iou_threshold) with initial poses."""

    iou_threshold: float = option(0.3, ge=0.0, le=1.0)
    # COCO results of the estimator on data.train (matched to people by OKS); null: synthetic initial poses.
    train_predictions: Path | None = None
    # The estimator's results on data.val, refined and scored by the evaluation (null: no evaluation).
    val_predictions: Path | None = None
    noise: float = option(0.5, ge=0.0, le=5.0, help="synthetic jitter in OKS falloffs (2 sigma x scale)")
    swap_prob: float = option(0.1, ge=0.0, le=1.0, help="synthetic: a joint sits on the partner's joint")
    miss_prob: float = option(0.1, ge=0.0, le=1.0, help="synthetic: a joint is lost somewhere in its box")
    # Image-guided CoupleGraph on a DAG (``fit --init DAG.ckpt``): the DAG checkpoint whose crops give the initial
    # poses and whose feature map is sampled at each joint; null: the coordinates-only refiner above.
    estimator: Path | None = None
    fine_tune: bool = False  # also train the DAG (through the features CoupleGraph reads); default: frozen
    pasted_pairs: int = option(0, ge=0, help="pairs per epoch made by pasting a pool person over a labelled one")
    paste_scale: list[float] = field(default_factory=lambda: [0.8, 1.1])  # pasted height / the host's box height

    def __post_init__(self) -> None:
        _check_range_pair(self.paste_scale, "paste_scale", 0.1, 3.0)


# -- the refiner's distillation (``distill:``) ------------------------------------------------------------
# Configuration of the refiner's distillation (``distill:`` in a training YAML) and of its held-out split.
#
# The refiner corrects the poses of a base model (YOLO11n-pose). Its training frames come from videos,
# image folders and COCO-format sets; every person the base finds in an occlusion-augmented copy of a frame
# gets a target from the ground truth where a labelled person matches, else from the teacher (the base on
# the clean frame at a higher resolution, with flip test). ``heldout`` lists the evaluation split: its
# images are never used for training, whatever the sources say.


@dataclass
class FrameSource:
    """Frames to distil on: every ``every``-th frame of a video, every ``every``-th image of a folder
    (searched recursively), or every image of a COCO-format set (with ``ann_file``, whose labelled people
    are ground-truth targets). ``val_tail``: the last fraction of a video's frames is kept apart to
    check the training (never trained on). ``copies``: more for few, varied stills, fewer for the many
    similar frames of a video."""

    kind: Literal["video", "images", "coco"] = "images"
    path: Path = Path("")
    ann_file: Path | None = None
    every: int = option(1, ge=1)
    max_frames: int | None = option(None, ge=1)
    val_tail: float = option(0.0, ge=0.0, lt=1.0)
    copies: int | None = option(None, ge=1, le=64, help="student copies per frame (null: distill.copies)")


@dataclass
class FrameAugmentConfig:
    """What a student copy of a frame goes through: a mirror, a zoom (crop in above 1, shrink into a grey
    border below 1), then per person, with ``occlude_prob``, one occlusion chosen by ``kind_weights``
    (mask joints, limb joints, a pasted person)."""

    flip_prob: float = option(0.5, ge=0.0, le=1.0)
    zoom_range: list[float] = field(default_factory=lambda: [0.8, 1.6])
    occlude_prob: float = option(0.7, ge=0.0, le=1.0)
    kind_weights: list[float] = field(default_factory=lambda: [1.0, 1.0, 1.0])  # mask joints, LJA, paste
    mask_max_joints: int = option(3, ge=1, le=17)
    mask_size_range: list[float] = field(default_factory=lambda: [0.1, 0.3])
    lja_ratio: float = option(0.25, gt=0.0, le=1.0)
    lja_block: float = option(0.2, gt=0.0, le=1.0)
    paste_max_instances: int = option(2, ge=1, le=8)
    paste_scale_range: list[float] = field(default_factory=lambda: [0.6, 1.1])
    paste_rotation: float = option(20.0, ge=0.0, le=180.0)

    def __post_init__(self) -> None:
        for name in ("zoom_range", "mask_size_range", "paste_scale_range"):
            lo, hi = getattr(self, name)
            if not 0 < lo <= hi:
                raise ValueError(f"{name}: expected 0 < min <= max, got {[lo, hi]}")
        if len(self.kind_weights) != 3 or min(self.kind_weights) < 0 or sum(self.kind_weights) <= 0:
            raise ValueError(f"kind_weights: expected 3 non-negative weights, got {self.kind_weights}")


@dataclass
class DistillLossConfig:
    """Error of a joint = distance to its target / (2 sigma_j x person scale), OKS's unit, capped at ``cap``
    (a wrong match or a teacher's mistake should not dominate); mean over the joints with a target."""

    local_weight: float = option(0.5, ge=0.0, help="the local step's own error")
    stage_weights: list[float] = field(default_factory=lambda: [0.5, 1.0])
    couple_weight: float = option(1.0, ge=0.0)
    cap: float = option(4.0, gt=0.0)


@dataclass
class HeldOutSplit:
    """One evaluation set: a COCO-format file and images; ``images``: the ids used (null: all).
    ``posetrack``: PoseTrack18's COCO-like files, scored on the joints that are COCO's
    (:mod:`train.datasets.posetrack`)."""

    name: str = "coco"
    format: Literal["coco", "crowdpose", "ochuman", "posetrack"] = "coco"
    ann_file: Path = Path("")
    img_dir: Path = Path("")
    images: list[int] | None = None


@dataclass
class DistillConfig:
    base_weights: Path | None = None  # null: the bundled YOLO11n-pose
    student_imgsz: int = option(640, ge=32, le=4096, help="the pipeline's input size")
    teacher_imgsz: int = option(960, ge=32, le=4096)
    teacher_flip: bool = True
    conf: float = option(0.1, gt=0.0, le=1.0, help="person score kept (the pipeline's default)")
    teacher_min_conf: float = option(0.5, ge=0.0, le=1.0, help="teacher joints below this are not targets")
    match_iou: float = option(0.4, gt=0.0, le=1.0, help="box IoU a student person needs with its target")
    iou_threshold: float = option(0.3, ge=0.0, le=1.0, help="box IoU from which two people form a pair")
    copies: int = option(4, ge=1, le=64, help="augmented student copies per frame")
    sources: list[FrameSource] = field(default_factory=list)
    augment: FrameAugmentConfig = field(default_factory=FrameAugmentConfig)
    loss: DistillLossConfig = field(default_factory=DistillLossConfig)
    cache_dir: Path | None = None  # null: OUTPUT_DIR/cache
    heldout: list[HeldOutSplit] = field(default_factory=list)
    ship_to: Path | None = None  # where fit copies the final weights (null: nowhere)


@dataclass
class TrainConfig:
    model: ModelSection = field(default_factory=ModelSection)
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    solver: SolverConfig = field(default_factory=SolverConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    refiner: RefinerConfig = field(default_factory=RefinerConfig)
    # Set: train the YOLO-feature refiner by distillation (train/distill_fit.py) instead of a pose model.
    distill: DistillConfig | None = None
    output_dir: Path = Path("runs/train")


def _check_range_pair(pair: list[float], name: str, lo: float, hi: float) -> None:
    # A ValueError here becomes a ConfigError prefixed with the section's dotted name.
    if len(pair) != 2:
        raise ValueError(f"{name}: expected [min, max], got {list(pair)}")
    a, b = pair
    if not (lo <= a <= b <= hi):
        raise ValueError(f"{name}: expected {lo} <= min <= max <= {hi}, got {list(pair)}")


def load_config(path: str | Path | None, overrides: list[str] | tuple[str, ...] = ()) -> TrainConfig:
    """Read a training YAML, apply ``key=value`` overrides and check every key.

    Relative paths inside the file are taken relative to the current directory (commands run from the
    repository root), so the same file works for ``fit`` and ``eval``.
    """
    data = load_yaml(path) if path else {}
    data = apply_overrides(data, list(overrides))
    return from_dict(TrainConfig, data)
