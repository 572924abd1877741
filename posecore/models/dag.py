"""DAG (Data, Attention, Graph; Xu et al., ICASSP 2024): the assembled top-down estimator.

    image -> HRNet -> F_m --1x1--> multi-joint heatmaps            (l_m: all people's joints in the crop)
                      F_m --ADAM--> enhanced --1x1--> target heatmaps (l_t: the target person's joints)
    target heatmaps --integral regression--> initial pose          (OPEC-Net's P_init)
    initial pose + [enhanced features, target heatmaps] --FGMH-GCN--> refined poses (l_p, L1; last = final)

The "Data" part (mask joints, instance paste) is training augmentation and lives with the datasets.
All coordinates in the output are input-crop pixels (see :mod:`posecore.codecs`).
"""

from __future__ import annotations

import torch

from ..codecs.grid import input_to_normalized, normalized_to_input
from ..config import from_dict
from .adam import ADAM, ADAMConfig
from .base import TopDownPoseModel
from .gcn import FGMHGCN, GCNConfig
from .heads import HeatmapHead
from .hrnet import HRNet, build_hrnet
from .registry import register_model
from .visibility import VisibilityConfig


class DAGPoseNet(TopDownPoseModel):
    """``forward(images, centers=None, visible=None) -> dict``.

    images: float[B, 3, H, W], RGB normalised with the ImageNet mean/std; centers: float[B, 2] body
    centres in input-crop pixels for the channel attention (default: the crop centre); visible:
    float[B, K] ground-truth visibility for teacher-forcing the visibility mask (training only).

    Returns ``multi_heatmaps`` float[B, K, h, w], ``heatmaps`` float[B, K, h, w], ``coords_init``
    float[B, K, 2], ``coords`` list of float[B, K, 2] per GCN stage, and ``visibility_logits``
    float[B, K] when visibility reasoning is on, and ``features`` float[B, C, h, w], the ADAM-enhanced
    map (C = ``feature_channels``) that the pair stage samples at the joints.
    """

    def __init__(self, backbone: HRNet, skeleton: str = "coco17", input_size: tuple[int, int] = (192, 256),
                 sigma: float = 2.0, integral_beta: float = 20.0, blur_kernel: int = 0,
                 adam: ADAMConfig | None = None, gcn: GCNConfig | None = None,
                 visibility: VisibilityConfig | None = None) -> None:
        super().__init__(skeleton, input_size, sigma=sigma, integral_beta=integral_beta, blur_kernel=blur_kernel)
        c = backbone.out_channels
        k = self.num_joints
        self.backbone = backbone
        self.feature_channels = c
        self.multi_head = HeatmapHead(c, k)
        self.adam = ADAM(c, adam)
        self.target_head = HeatmapHead(c, k)
        self.gcn = FGMHGCN(self.skeleton_def.adjacency, feat_channels=c + k, cfg=gcn, visibility=visibility)

    def forward(self, images: torch.Tensor, centers: torch.Tensor | None = None,
                visible: torch.Tensor | None = None) -> dict:
        fm = self.backbone(images)
        multi = self.multi_head(fm)
        centers_n = None if centers is None else input_to_normalized(centers.to(fm.dtype), self.input_size)
        enhanced = self.adam(fm, centers_n)
        heatmaps = self.target_head(enhanced)
        coords_init, scores = self.integral.decode(heatmaps)
        g = self.gcn(input_to_normalized(coords_init, self.input_size), torch.cat((enhanced, heatmaps), dim=1),
                     scores=scores.detach(), visible=visible)
        out = {
            "multi_heatmaps": multi,
            "heatmaps": heatmaps,
            "coords_init": coords_init,
            "coords": [normalized_to_input(u, self.input_size) for u in g["coords"]],
            "features": enhanced,
        }
        if "visibility_logits" in g:
            out["visibility_logits"] = g["visibility_logits"]
        return out


def _dag(variant: str, skeleton: str, input_size, sigma: float, integral_beta: float, blur_kernel: int,
         adam: dict | None, gcn: dict | None, visibility: dict | None) -> DAGPoseNet:
    return DAGPoseNet(
        build_hrnet(variant), skeleton, tuple(input_size), sigma, integral_beta, blur_kernel,
        adam=from_dict(ADAMConfig, adam, "model.adam"),
        gcn=from_dict(GCNConfig, gcn, "model.gcn"),
        visibility=from_dict(VisibilityConfig, visibility, "model.visibility"),
    )


@register_model
def dag_hrnet_w32(skeleton: str = "coco17", input_size: tuple[int, int] = (192, 256), sigma: float = 2.0,
                  integral_beta: float = 20.0, blur_kernel: int = 0, adam: dict | None = None,
                  gcn: dict | None = None, visibility: dict | None = None) -> DAGPoseNet:
    """DAG on HRNet-W32, 256x192 by default."""
    return _dag("w32", skeleton, input_size, sigma, integral_beta, blur_kernel, adam, gcn, visibility)


@register_model
def dag_hrnet_w48(skeleton: str = "coco17", input_size: tuple[int, int] = (288, 384), sigma: float = 3.0,
                  integral_beta: float = 20.0, blur_kernel: int = 0, adam: dict | None = None,
                  gcn: dict | None = None, visibility: dict | None = None) -> DAGPoseNet:
    """DAG on HRNet-W48, 384x288 by default."""
    return _dag("w48", skeleton, input_size, sigma, integral_beta, blur_kernel, adam, gcn, visibility)


@register_model
def dag_hrnet_small(skeleton: str = "coco17", input_size: tuple[int, int] = (192, 256), sigma: float = 2.0,
                    integral_beta: float = 20.0, blur_kernel: int = 0, adam: dict | None = None,
                    gcn: dict | None = None, visibility: dict | None = None) -> DAGPoseNet:
    """CPU-sized DAG: the small HRNet and a lighter GCN (hidden 64, 2 stages, 1 block) unless overridden."""
    gcn = {"hidden": 64, "stages": 2, "blocks": 1, **(gcn or {})}
    return _dag("small", skeleton, input_size, sigma, integral_beta, blur_kernel, adam, gcn, visibility)
