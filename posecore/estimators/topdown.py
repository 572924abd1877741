"""Top-down pose estimation: crop every detected person, run the model once on the batch, map back.

Works with any :class:`posecore.models.base.TopDownPoseModel`: when the model returns ``"coords"``
(DAG) the last stage's coordinates are the pose, otherwise the model's own heatmap codec decodes
``"heatmaps"``. Joint confidence is the heatmap maximum; a joint is ``seen`` when it reaches
``seen_threshold``. The person score is the detector's.

:meth:`TopDownEstimator.estimate_features` also returns what the pair stage (:mod:`posecore.pair_stage`)
reads: the model's ``"features"`` map (DAG: the ADAM-enhanced map) grid-sampled at each final joint of
each person's own crop, with the sampling FGMH-GCN uses (:func:`joint_features`).
"""

from __future__ import annotations

import copy
import os
from contextlib import nullcontext

import numpy as np
import torch

from ..device import resolve_device
from ..codecs.grid import input_to_normalized
from ..models.fusion import fuse_conv_bn
from ..models.gcn import sample_joint_features
from ..types import Detections, Poses
from ..weights import build_from, read_checkpoint
from .crops import box_to_center_scale, crop_to_image, warp_crops

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def preprocess_crops(crops: np.ndarray, device: str | torch.device = "cpu") -> torch.Tensor:
    """uint8[N, H, W, 3] BGR crops -> float[N, 3, H, W] RGB, ImageNet-normalised, channels_last, on ``device``.

    The one place where model inputs are made, for inference and training alike.
    """
    x = torch.from_numpy(np.ascontiguousarray(crops[..., ::-1])).to(device, non_blocking=True)
    x = x.permute(0, 3, 1, 2).float()
    mean = torch.tensor(IMAGENET_MEAN, device=x.device).view(1, 3, 1, 1) * 255
    std = torch.tensor(IMAGENET_STD, device=x.device).view(1, 3, 1, 1) * 255
    return ((x - mean) / std).contiguous(memory_format=torch.channels_last)


def joint_features(out: dict, input_size: tuple[int, int], batch: int | None = None) -> torch.Tensor | None:
    """float[B, K, C]: the model output's ``"features"`` map read at its last-stage joints (crop pixels),
    for the first ``batch`` crops (the rest are flipped copies); None when the model has no such map."""
    if "features" not in out or "coords" not in out:
        return None
    fmap, coords = out["features"][:batch], out["coords"][-1][:batch]
    return sample_joint_features(fmap.float(), input_to_normalized(coords.float(), input_size))


class TopDownEstimator:
    """``estimate(frame: uint8[H, W, 3] BGR, detections) -> Poses``.

    Args:
        model: a top-down pose model (see :mod:`posecore.models`).
        device: "auto", "cpu", "cuda", ...
        flip_test: also run the mirrored crops (in the same batch) and average.
        seen_threshold: joint confidence at which a joint counts as seen.
        half: fp16 autocast; default on for CUDA.
        batch_size: most crops per forward pass (more people are run in several passes).
        padding: box enlargement of the crop (HRNet's 1.25).
        fuse: fold BatchNorm into the convolutions of a private copy of the model (the model passed
            in is left untouched, so it can go on training).
        checkpoint_extra: what the model's checkpoint stored beside the weights (epoch, metrics, a pair
            stage: :mod:`posecore.pair_stage`), kept so that nothing reads the file again for it.
    """

    def __init__(self, model: torch.nn.Module, device: str | torch.device = "auto", flip_test: bool = False,
                 seen_threshold: float = 0.5, half: bool | None = None, batch_size: int = 64,
                 padding: float = 1.25, fuse: bool = True, checkpoint_extra: dict | None = None) -> None:
        self.device = device if isinstance(device, torch.device) else resolve_device(device)
        if fuse:
            model = fuse_conv_bn(copy.deepcopy(model))
        self.model = model.eval().to(self.device).to(memory_format=torch.channels_last)
        self.skeleton: str = model.skeleton
        self.flip_index = torch.as_tensor(model.skeleton_def.flip_index, device=self.device)
        self.input_size: tuple[int, int] = tuple(model.input_size)
        self.flip_test = flip_test
        self.seen_threshold = float(seen_threshold)
        self.half = (self.device.type == "cuda") if half is None else bool(half)
        self.batch_size = max(1, int(batch_size))
        self.padding = float(padding)
        self.checkpoint_extra: dict = dict(checkpoint_extra or {})

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, device: str = "auto", flip_test: bool = False,
                        **kwargs) -> "TopDownEstimator":
        """Load a checkpoint written by :func:`posecore.weights.save_checkpoint` (raises WeightsError)."""
        ckpt = read_checkpoint(path)
        model = build_from(ckpt.config, ckpt.state_dict, str(path))
        return cls(model, device=device, flip_test=flip_test, checkpoint_extra=ckpt.extra, **kwargs)

    @property
    def num_joints(self) -> int:
        return self.model.num_joints

    @property
    def feature_channels(self) -> int:
        """Channels of the per-joint features :meth:`estimate_features` returns (0: the model has none)."""
        return int(getattr(self.model, "feature_channels", 0))

    # ------------------------------------------------------------------ public
    def estimate(self, frame: np.ndarray, detections: Detections) -> Poses:
        return self._estimate(frame, detections, features=False)[0]

    def estimate_features(self, frame: np.ndarray, detections: Detections) -> tuple[Poses, np.ndarray | None]:
        """:meth:`estimate` and each person's joint features float32[N, K, C] (None: the model has none)."""
        return self._estimate(frame, detections, features=True)

    def _estimate(self, frame: np.ndarray, detections: Detections, features: bool
                  ) -> tuple[Poses, np.ndarray | None]:
        k = self.model.num_joints
        if len(detections) == 0:
            feats = np.zeros((0, k, self.feature_channels), np.float32) if features and self.feature_channels else None
            return Poses.empty(k, self.skeleton), feats
        centers, scales = box_to_center_scale(detections.boxes, self.input_size, self.padding)
        crops = warp_crops(frame, centers, scales, self.input_size)
        coords, scores, feats = self._predict_all(crops, features)
        xy = crop_to_image(coords, centers, scales, self.input_size)
        kpts = np.concatenate((xy, scores[..., None]), -1).astype(np.float32)
        poses = Poses(detections.boxes, detections.scores, kpts, scores >= self.seen_threshold, self.skeleton)
        return poses, feats

    def predict_crops(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Poses of person crops uint8[N, H, W, 3] (BGR, already at the model's input size).

        Returns coords float32[N, K, 2] in crop pixels and scores float32[N, K].
        """
        return self._predict_all(crops, features=False)[:2]

    def _predict_all(self, crops: np.ndarray, features: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Coords and scores of the crops, and their joint features when ``features`` (None otherwise or
        where the model has none: grid-sampling them is work only the pair stage needs)."""
        outs = [self._predict_batch(crops[s:s + self.batch_size], features)
                for s in range(0, len(crops), self.batch_size)]
        feats = None if outs[0][2] is None else np.concatenate([o[2] for o in outs])
        return np.concatenate([o[0] for o in outs]), np.concatenate([o[1] for o in outs]), feats

    # ------------------------------------------------------------------ internals
    def preprocess(self, crops: np.ndarray) -> torch.Tensor:
        return preprocess_crops(crops, self.device)

    def _predict_batch(self, crops: np.ndarray, features: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        n = len(crops)
        x = self.preprocess(crops)
        if self.flip_test:
            x = torch.cat((x, x.flip(3)), 0)  # one pass for both
        amp = torch.autocast(self.device.type, dtype=torch.float16) if self.half else nullcontext()
        with torch.inference_mode(), amp:
            out = self.model(x)
        heatmaps = out["heatmaps"].float()
        coords = out["coords"][-1].float() if "coords" in out else None
        if self.flip_test:
            heatmaps = (heatmaps[:n] + heatmaps[n:].flip(3)[:, self.flip_index]) / 2
            if coords is not None:
                back = coords[n:][:, self.flip_index].clone()
                back[..., 0] = self.input_size[0] - 1 - back[..., 0]  # mirror about the crop's centre
                coords = (coords[:n] + back) / 2
        dec_coords, scores = self.model.codec.decode(heatmaps)
        final = dec_coords if coords is None else coords.cpu().numpy()
        feats = None
        if features and "features" in out and coords is not None:
            # Read at the final (flip-averaged) joints, on the unflipped crops' map.
            with torch.inference_mode():
                feats = joint_features({"features": out["features"], "coords": [coords]}, self.input_size, n)
            feats = feats.cpu().numpy().astype(np.float32)
        return final.astype(np.float32), scores.astype(np.float32), feats

