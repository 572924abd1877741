"""Configuration of the refiner's distillation (``distill:`` in a training YAML) and of its held-out split.

The refiner corrects the poses of a base model (YOLO11n-pose). Its training frames come from videos,
image folders and COCO-format sets; every person the base finds in an occlusion-augmented copy of a frame
gets a target from the ground truth where a labelled person matches, else from the teacher (the base on
the clean frame at a higher resolution, with flip test). ``heldout`` lists the evaluation split: its
images are never used for training, whatever the sources say.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from posecore.config import option


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
    """One evaluation set: a COCO-format file and images; ``images``: the ids used (null: all)."""

    name: str = "coco"
    format: Literal["coco", "crowdpose", "ochuman"] = "coco"
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
