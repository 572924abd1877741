"""What every top-down pose model exposes, so the estimator and training need no model-specific code."""

from __future__ import annotations

import torch.nn as nn

from ..codecs import HeatmapCodec, IntegralCodec
from ..errors import ConfigError
from ..skeleton import Skeleton, get_skeleton


class TopDownPoseModel(nn.Module):
    """Base of the heatmap pose models.

    ``forward(images: float[B, 3, H, W]) -> dict`` with at least ``"heatmaps"`` float[B, K, h, w];
    models that regress coordinates also return ``"coords"`` (list of float[B, K, 2], last = final),
    in input-crop pixels. Images are RGB, normalised with the ImageNet mean and std.

    Attributes: ``skeleton`` (name), ``num_joints``, ``input_size`` (W, H), ``heatmap_size`` (w, h),
    ``codec`` (the :class:`HeatmapCodec` that made its training targets) and ``integral``.
    """

    stride = 4

    def __init__(self, skeleton: str, input_size: tuple[int, int], sigma: float = 2.0,
                 integral_beta: float = 20.0, blur_kernel: int = 0) -> None:
        super().__init__()
        w, h = (int(v) for v in input_size)
        # Multiples of 4 give whole heatmaps; multiples of 32 also halve exactly at every HRNet branch
        # (other sizes work too: the fusion resamples to each branch's exact shape).
        if w % 4 or h % 4 or w < 32 or h < 32:
            raise ConfigError(f"input_size: width and height must be multiples of 4 and at least 32, got {input_size}")
        self.skeleton = get_skeleton(skeleton).name
        self.input_size = (w, h)
        self.heatmap_size = (w // self.stride, h // self.stride)
        self.codec = HeatmapCodec(self.input_size, self.heatmap_size, sigma=sigma, blur_kernel=blur_kernel)
        self.integral = IntegralCodec(self.input_size, self.heatmap_size, beta=integral_beta)

    @property
    def skeleton_def(self) -> Skeleton:
        return get_skeleton(self.skeleton)

    @property
    def num_joints(self) -> int:
        return self.skeleton_def.num_joints
