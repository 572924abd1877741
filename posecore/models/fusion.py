"""Folding BatchNorm into the preceding convolution for inference.

In eval mode a BatchNorm after a convolution is an affine map per channel, so it can be merged into
the convolution's weights and bias; on CPU this saves about a fifth of HRNet's time. Pairs are
found structurally: consecutive ``Conv2d`` -> ``BatchNorm2d`` children of an ``nn.Sequential``, and
``convN`` / ``bnN`` attribute pairs of a block (HRNet's stem and residual blocks). The merged
BatchNorm becomes ``nn.Identity``, so a fused model is for inference only.
"""

from __future__ import annotations

import torch
import torch.nn as nn


def _fold(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> None:
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps) if bn.affine else 1 / torch.sqrt(bn.running_var + bn.eps)
    shift = (bn.bias if bn.affine else 0) - bn.running_mean * scale
    bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
    conv.weight.data = conv.weight.data * scale.reshape(-1, 1, 1, 1)
    conv.bias = nn.Parameter(bias * scale + shift)


@torch.no_grad()
def fuse_conv_bn(model: nn.Module) -> nn.Module:
    """Fold every recognised Conv2d + BatchNorm2d pair of ``model`` in place; returns ``model`` (eval mode)."""
    model.eval()
    for module in list(model.modules()):
        if isinstance(module, nn.Sequential):
            children = list(module._modules.items())
            for (_, a), (name_b, b) in zip(children, children[1:]):
                if isinstance(a, nn.Conv2d) and isinstance(b, nn.BatchNorm2d) and b.num_features == a.out_channels:
                    _fold(a, b)
                    module._modules[name_b] = nn.Identity()
        for name, child in list(module._modules.items()):
            if name.startswith("conv") and isinstance(child, nn.Conv2d):
                bn_name = "bn" + name[4:]
                bn = module._modules.get(bn_name)
                if isinstance(bn, nn.BatchNorm2d) and bn.num_features == child.out_channels:
                    _fold(child, bn)
                    module._modules[bn_name] = nn.Identity()
    return model
