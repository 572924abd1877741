"""The refiner stage: FGMH-GCN per person and CoupleGraph per overlapping pair, on given poses.

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

import numpy as np
import torch
import torch.nn.functional as F

from .codecs.grid import input_to_normalized, normalized_to_input
from .config import option
from .device import resolve_device
from .errors import ConfigError
from .estimators.crops import box_to_center_scale, crop_to_image, image_to_crop
from .models.couplegraph import CoupleGraph, assign_pairs, select_pairs
from .models.gcn import FGMHGCN
from .types import Poses
from .weights import load_checkpoint


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
