"""The plain HRNet pose model (SimpleBaseline-style top-down heatmaps): backbone + 1x1 head."""

from __future__ import annotations

import torch

from .base import TopDownPoseModel
from .heads import HeatmapHead
from .hrnet import HRNet, build_hrnet
from .registry import register_model


class HRNetPose(TopDownPoseModel):
    """``forward(images: float[B, 3, H, W]) -> {"heatmaps": float[B, K, H/4, W/4]}``."""

    def __init__(self, backbone: HRNet, skeleton: str = "coco17", input_size: tuple[int, int] = (192, 256),
                 sigma: float = 2.0, blur_kernel: int = 0) -> None:
        super().__init__(skeleton, input_size, sigma=sigma, blur_kernel=blur_kernel)
        self.backbone = backbone
        self.final_layer = HeatmapHead(backbone.out_channels, self.num_joints)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"heatmaps": self.final_layer(self.backbone(images))}


def _hrnet(variant: str, skeleton: str, input_size, sigma: float, blur_kernel: int) -> HRNetPose:
    return HRNetPose(build_hrnet(variant), skeleton, tuple(input_size), sigma, blur_kernel)


@register_model
def hrnet_w32(skeleton: str = "coco17", input_size: tuple[int, int] = (192, 256), sigma: float = 2.0,
              blur_kernel: int = 0) -> HRNetPose:
    """HRNet-W32 (28.5 M parameters, 7.1 GMACs at 256x192 for COCO)."""
    return _hrnet("w32", skeleton, input_size, sigma, blur_kernel)


@register_model
def hrnet_w48(skeleton: str = "coco17", input_size: tuple[int, int] = (288, 384), sigma: float = 3.0,
              blur_kernel: int = 0) -> HRNetPose:
    """HRNet-W48 (63.6 M parameters, 32.9 GMACs at 384x288)."""
    return _hrnet("w48", skeleton, input_size, sigma, blur_kernel)


@register_model
def hrnet_small(skeleton: str = "coco17", input_size: tuple[int, int] = (192, 256), sigma: float = 2.0,
                blur_kernel: int = 0) -> HRNetPose:
    """CPU-sized HRNet (width 16, one module per stage)."""
    return _hrnet("small", skeleton, input_size, sigma, blur_kernel)
