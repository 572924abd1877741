"""The refiner stage: FGMH-GCN per person and CoupleGraph per overlapping pair, on given poses.

Two refiners share the contract ``refine(frame, poses, features) -> Poses``:

* :class:`YoloRefiner` (the one the pipeline uses): the trained ``yolo_refiner``
  (:mod:`posecore.models.yolo_refiner`) on YOLO11n-pose's poses and the neck maps of the same detection pass,
  caught by :class:`posecore.yolo_features.YoloFeatureTap`. :func:`build_default_refiner` gives the
  shipped one for a detector, or None where it should stay off.
* :class:`Refiner`: stand-alone FGMH-GCN and/or CoupleGraph checkpoints on an image-level feature map,
  as follows.

``Refiner.refine(frame, poses, features) -> Poses`` moves joints; confidences and ``seen`` flags are
kept. ``features`` is an optional image-level feature map float[C, Hf, Wf] covering the whole frame
(e.g. a detector neck output), read with the pixel convention of :mod:`posecore.codecs`:

* FGMH-GCN works in a person's crop frame (the same 4:3, 1.25-padded region the top-down estimator
  crops); its feature map is the image feature map resampled onto that region.
* CoupleGraph reads each joint's feature directly from the image map. Pairs are people whose boxes
  overlap with IoU >= ``iou_threshold``; a person in several pairs keeps the result of the pair with
  the largest IoU (see :mod:`posecore.models.couplegraph`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .codecs.grid import input_to_normalized, normalized_to_input
from .config import option
from .device import resolve_device
from .errors import ConfigError, WeightsError
from .estimators.crops import box_to_center_scale, crop_to_image, image_to_crop
from .models.couplegraph import CoupleGraph, assign_pairs, select_pairs
from .models.gcn import FGMHGCN
from .models.yolo_refiner import YoloRefinerNet
from .types import Poses
from .weights import load_checkpoint, read_checkpoint
from .yolo_features import YoloFeatures, YoloFeatureTap

SHIPPED_WEIGHTS = "refiner_yolo11n.pt"


@dataclass
class RefinerConfig:
    iou_threshold: float = option(0.3, ge=0.0, le=1.0, help="box IoU from which two people form a CoupleGraph pair")
    max_pairs: int = option(32, ge=1, help="most pairs refined per frame (largest IoU first)")
    crop_size: tuple[int, int] = option((192, 256), help="(W, H) of the per-person frame of FGMH-GCN")
    padding: float = option(1.25, ge=1.0, help="box enlargement of that frame")


def _feature_map(features, device: torch.device) -> torch.Tensor | None:
    if features is None:
        return None
    f = torch.as_tensor(features, dtype=torch.float32, device=device)
    if f.ndim == 4 and f.shape[0] == 1:
        f = f[0]
    if f.ndim != 3:
        raise ValueError(f"features: expected [C, Hf, Wf], got {tuple(f.shape)}")
    return f


class Refiner:
    """Refines poses with an FGMH-GCN (per person) and/or a CoupleGraph (per overlapping pair)."""

    def __init__(self, fgmh: FGMHGCN | None = None, couple: CoupleGraph | None = None,
                 cfg: RefinerConfig | None = None, device: str | torch.device = "cpu") -> None:
        if fgmh is None and couple is None:
            raise ConfigError("refiner: give an FGMH-GCN, a CoupleGraph or both")
        self.cfg = cfg or RefinerConfig()
        self.device = device if isinstance(device, torch.device) else resolve_device(device)
        self.fgmh = None if fgmh is None else fgmh.eval().to(self.device)
        self.couple = None if couple is None else couple.eval().to(self.device)

    @classmethod
    def from_checkpoints(cls, fgmh: str | os.PathLike | None = None, couple: str | os.PathLike | None = None,
                         cfg: RefinerConfig | None = None, device: str = "auto") -> "Refiner":
        models = []
        for path, kind in ((fgmh, FGMHGCN), (couple, CoupleGraph)):
            model = None
            if path is not None:
                model, config = load_checkpoint(path)
                if not isinstance(model, kind):
                    raise ConfigError(f"refiner: {path} holds {config['name']}, not a {kind.__name__}")
            models.append(model)
        return cls(models[0], models[1], cfg, device)

    @torch.inference_mode()
    def refine(self, frame: np.ndarray, poses: Poses, features=None) -> Poses:
        if len(poses) == 0:
            return poses
        h, w = frame.shape[:2]
        fmap = _feature_map(features, self.device)
        kpts = poses.keypoints.copy()
        if self.fgmh is not None:
            kpts[..., :2] = self._refine_people(kpts, poses.boxes, fmap, (w, h))
        if self.couple is not None and len(poses) > 1:
            kpts[..., :2] = self._refine_pairs(kpts, poses.boxes, fmap, (w, h))
        return Poses(poses.boxes, poses.scores, kpts, poses.seen.copy(), poses.skeleton)

    def _refine_people(self, kpts: np.ndarray, boxes: np.ndarray, fmap: torch.Tensor | None,
                       frame_size: tuple[int, int]) -> np.ndarray:
        size = self.cfg.crop_size
        centers, scales = box_to_center_scale(boxes, size, self.cfg.padding)
        crop_xy = torch.from_numpy(image_to_crop(kpts[..., :2], centers, scales, size)).to(self.device)
        scores = torch.from_numpy(kpts[..., 2]).to(self.device)
        crop_maps = None
        if self.fgmh.feat_channels:
            if fmap is None:
                raise ValueError("this FGMH-GCN needs image features; pass features=")
            crop_maps = self._crop_features(fmap, centers, scales, (size[0] // 4, size[1] // 4), frame_size)
        out = self.fgmh(input_to_normalized(crop_xy, size), crop_maps, scores=scores)
        refined = normalized_to_input(out["coords"][-1], size).float().cpu().numpy()
        return crop_to_image(refined, centers, scales, size)

    @staticmethod
    def _crop_features(fmap: torch.Tensor, centers: np.ndarray, scales: np.ndarray, out_size: tuple[int, int],
                       frame_size: tuple[int, int]) -> torch.Tensor:
        """float[N, C, h, w]: the image feature map resampled onto each person's crop region."""
        hf, wf = fmap.shape[-2:]
        n = len(centers)
        # The map spans the frame, so a crop region in frame pixels is a region of the map's [-1, 1].
        frame_w, frame_h = frame_size
        theta = torch.zeros(n, 2, 3, device=fmap.device)
        theta[:, 0, 0] = torch.as_tensor(scales[:, 0] / frame_w, device=fmap.device)
        theta[:, 1, 1] = torch.as_tensor(scales[:, 1] / frame_h, device=fmap.device)
        theta[:, 0, 2] = torch.as_tensor((centers[:, 0] + 0.5) * 2 / frame_w - 1, device=fmap.device)
        theta[:, 1, 2] = torch.as_tensor((centers[:, 1] + 0.5) * 2 / frame_h - 1, device=fmap.device)
        grid = F.affine_grid(theta, (n, fmap.shape[0], out_size[1], out_size[0]), align_corners=False)
        return F.grid_sample(fmap.expand(n, -1, hf, wf), grid, align_corners=False)

    def _refine_pairs(self, kpts: np.ndarray, boxes: np.ndarray, fmap: torch.Tensor | None,
                      frame_size: tuple[int, int]) -> np.ndarray:
        pairs, ious = select_pairs(boxes, self.cfg.iou_threshold, self.cfg.max_pairs)
        xy = kpts[..., :2].copy()
        if len(pairs) == 0:
            return xy
        kp = torch.from_numpy(kpts[pairs]).to(self.device)  # [P, 2, K, 3]
        bx = torch.from_numpy(np.asarray(boxes, np.float32)[pairs]).to(self.device)
        feats = None
        if self.couple.feat_channels and fmap is not None:
            uv = input_to_normalized(kp[..., :2], frame_size).reshape(1, -1, 1, 2)
            feats = F.grid_sample(fmap[None], uv, align_corners=False)[0, :, :, 0].T
            feats = feats.reshape(len(pairs), 2, -1, fmap.shape[0])
        refined = self.couple(kp, bx, feats).float().cpu().numpy()
        best, slot = assign_pairs(pairs, ious, len(kpts))
        for person in np.flatnonzero(best >= 0):
            xy[person] = refined[best[person], slot[person]]
        return xy


# --------------------------------------------------------------------------------------------- YOLO refiner
def shipped_refiner_path() -> Path:
    """The refiner weights shipped in the package (trained by ``configs/train/refiner_yolo11n.yaml``)."""
    return Path(str(resources.files("posecore.assets") / "weights" / SHIPPED_WEIGHTS))


class YoloRefiner:
    """The trained ``yolo_refiner`` on YOLO pose estimates, reading the detector's own neck maps.

    ``refine(frame, poses, features)``: ``features`` are the :class:`YoloFeatures` of the detection pass
    that produced ``poses`` (``tap.take()`` in the detecting thread, right after ``detect``). Joints move;
    confidences, ``seen`` flags, boxes and scores are kept. All people go through one forward pass.
    ``tap`` is the :class:`YoloFeatureTap` on the detector's model when built by
    :func:`build_default_refiner`.
    """

    requires_features = True

    def __init__(self, net: YoloRefinerNet, iou_threshold: float = 0.3, max_pairs: int = 32,
                 device: str | torch.device = "cpu", tap: YoloFeatureTap | None = None, info: dict | None = None):
        self.device = device if isinstance(device, torch.device) else resolve_device(device)
        self.net = net.eval().to(self.device)
        self.iou_threshold, self.max_pairs = float(iou_threshold), int(max_pairs)
        self.tap = tap
        self.info = dict(info or {})

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, device: str = "cpu", tap: YoloFeatureTap | None = None
                        ) -> "YoloRefiner":
        net, config = load_checkpoint(path)
        if not isinstance(net, YoloRefinerNet):
            raise WeightsError(f"{path}: holds {config['name']}, not a yolo_refiner")
        extra = read_checkpoint(path).extra
        return cls(net, float(extra.get("iou_threshold", 0.3)), device=device, tap=tap, info=extra)

    @property
    def in_channels(self) -> tuple[int, ...]:
        return self.net.in_channels

    @torch.inference_mode()
    def refine(self, frame: np.ndarray, poses: Poses, features: YoloFeatures | None = None) -> Poses:
        if len(poses) == 0:
            return poses
        if not isinstance(features, YoloFeatures):
            raise ValueError("the YOLO refiner needs the detector's neck maps of this frame (YoloFeatures); "
                             "take them from its YoloFeatureTap after detect()")
        if features.channels != self.in_channels:
            raise ValueError(f"feature maps with {features.channels} channels; this refiner reads {self.in_channels}")
        xy = poses.keypoints[..., :2]
        feats = None if self.net.proj is None else features.sample(xy, frame.shape[:2]).to(self.device)
        grid, step = features.sample_grid(xy, frame.shape[:2], self.net.radius, self.net.grid_step)
        kp = torch.from_numpy(poses.keypoints).to(self.device)
        boxes = torch.from_numpy(poses.boxes).to(self.device)
        pairs, ious = select_pairs(poses.boxes, self.iou_threshold, self.max_pairs)
        out = self.net(kp, boxes, feats, grid.to(self.device), torch.full((len(poses),), step, device=self.device),
                       torch.from_numpy(pairs).to(self.device))
        xy = YoloRefinerNet.assemble(out, pairs, ious).float().cpu().numpy()
        kpts = poses.keypoints.copy()
        kpts[..., :2] = xy
        return Poses(poses.boxes, poses.scores, kpts, poses.seen.copy(), poses.skeleton)


def build_default_refiner(detector, mode: str = "auto", weights: str | os.PathLike | None = None,
                          device: str = "cpu") -> YoloRefiner | None:
    """The shipped refiner for ``detector`` (a :class:`posecore.detector.Detector`), with a feature tap
    on its model, or None.

    ``mode``: ``off`` -> None; ``on`` -> the refiner whenever it fits the detector; ``auto`` -> only when
    the shipped weights were measured to help (``enabled_by_default`` in the checkpoint, set by
    ``python -m train fit`` from the held-out evaluation). It fits a detector with a pose head whose neck
    has the channels the weights were trained on (YOLO11n-pose: 64, 128, 256); another model -> None.
    """
    if mode not in ("auto", "on", "off"):
        raise ConfigError(f"refine: mode must be auto, on or off, got {mode!r}")
    if mode == "off" or not getattr(detector, "has_pose_head", False):
        return None
    path = Path(weights) if weights is not None else shipped_refiner_path()
    if weights is None and not path.is_file():
        return None
    info = read_checkpoint(path).extra
    if mode == "auto" and not info.get("enabled_by_default", False):
        return None
    tap = YoloFeatureTap(detector.model)
    head_in = tuple(int(c) for c in _head_channels(tap))
    refiner = YoloRefiner.from_checkpoint(path, device=device, tap=tap)
    if head_in and head_in != refiner.in_channels:
        tap.close()
        return None
    return refiner


def _head_channels(tap: YoloFeatureTap) -> tuple[int, ...]:
    """Input channels of the hooked model's head (from its first conv of each level), or () if unknown."""
    head = tap.heads[0] if tap.heads else None
    cv2 = getattr(head, "cv2", None)
    try:
        return tuple(int(seq[0].conv.in_channels) for seq in cv2)
    except (TypeError, AttributeError, IndexError):
        return ()
