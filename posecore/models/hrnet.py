"""HRNet (Sun et al., CVPR 2019): parallel high-to-low resolution branches with repeated fusion.

The layout and module names follow the reference implementation (``conv1``, ``layer1``,
``transition1``, ``stage2`` ... ``final_layer``), so ImageNet-pretrained HRNet state dicts load by
name. The backbone returns the highest-resolution branch (stride 4), as the pose network uses it.

Widths: ``w32`` and ``w48`` are the paper's; ``small`` is a CPU-sized variant (width 16, one module
per stage, two blocks per branch, a 32-channel stem and a single stem bottleneck).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn as nn
import torch.nn.functional as F

BN_MOMENTUM = 0.1


@dataclass(frozen=True)
class StageSpec:
    """One HRNet stage: ``modules`` repeated multi-resolution modules over ``len(channels)`` branches."""

    modules: int
    blocks: tuple[int, ...]
    channels: tuple[int, ...]
    block: Literal["basic", "bottleneck"] = "basic"


@dataclass(frozen=True)
class HRNetSpec:
    stem_channels: int = 64
    stem_blocks: int = 4  # bottlenecks of layer1
    stem_planes: int = 64  # layer1 outputs 4x this
    stages: tuple[StageSpec, ...] = field(default_factory=tuple)


def _spec(width: int, modules=(1, 4, 3), blocks: int = 4, stem_channels: int = 64, stem_blocks: int = 4,
          stem_planes: int = 64) -> HRNetSpec:
    stages = tuple(
        StageSpec(m, (blocks,) * (i + 2), tuple(width * 2**b for b in range(i + 2)))
        for i, m in enumerate(modules)
    )
    return HRNetSpec(stem_channels, stem_blocks, stem_planes, stages)


HRNET_SPECS: dict[str, HRNetSpec] = {
    "w32": _spec(32),
    "w48": _spec(48),
    "small": _spec(16, modules=(1, 1, 1), blocks=2, stem_channels=32, stem_blocks=1, stem_planes=32),
}


def get_hrnet_spec(name: str) -> HRNetSpec:
    try:
        return HRNET_SPECS[name]
    except KeyError:
        raise ValueError(f"unknown HRNet variant {name!r}; choose one of {sorted(HRNET_SPECS)}") from None


def _conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride, 1, bias=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin: int, planes: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = _conv3x3(cin, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.conv2 = _conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.conv2 = _conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


_BLOCKS = {"basic": BasicBlock, "bottleneck": Bottleneck}


def _make_layer(block, cin: int, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
    downsample = None
    if stride != 1 or cin != planes * block.expansion:
        downsample = nn.Sequential(
            nn.Conv2d(cin, planes * block.expansion, 1, stride, bias=False),
            nn.BatchNorm2d(planes * block.expansion, momentum=BN_MOMENTUM),
        )
    layers = [block(cin, planes, stride, downsample)]
    layers += [block(planes * block.expansion, planes) for _ in range(1, blocks)]
    return nn.Sequential(*layers)


class HighResolutionModule(nn.Module):
    """Parallel branches followed by an all-to-all fusion (sum of resampled branches)."""

    def __init__(self, block, num_blocks: tuple[int, ...], in_channels: list[int], channels: tuple[int, ...],
                 multi_scale_output: bool = True) -> None:
        super().__init__()
        n = len(channels)
        self.branches = nn.ModuleList(
            _make_layer(block, in_channels[i], channels[i], num_blocks[i]) for i in range(n)
        )
        self.out_channels = [c * block.expansion for c in channels]
        self.fuse_layers = self._make_fuse_layers(self.out_channels, multi_scale_output) if n > 1 else None
        self.relu = nn.ReLU(inplace=False)

    @staticmethod
    def _make_fuse_layers(ch: list[int], multi_scale_output: bool) -> nn.ModuleList:
        n = len(ch)
        fuse = nn.ModuleList()
        for i in range(n if multi_scale_output else 1):
            row = nn.ModuleList()
            for j in range(n):
                if j > i:  # lower resolution: 1x1 conv then nearest upsampling (in forward)
                    row.append(nn.Sequential(nn.Conv2d(ch[j], ch[i], 1, bias=False),
                                             nn.BatchNorm2d(ch[i], momentum=BN_MOMENTUM)))
                elif j == i:
                    row.append(nn.Identity())
                else:  # higher resolution: strided 3x3 convs, ReLU between them
                    convs = []
                    for k in range(i - j):
                        last = k == i - j - 1
                        cout = ch[i] if last else ch[j]
                        convs.append(nn.Sequential(_conv3x3(ch[j], cout, 2), nn.BatchNorm2d(cout, momentum=BN_MOMENTUM),
                                                   *([] if last else [nn.ReLU(inplace=True)])))
                    row.append(nn.Sequential(*convs))
            fuse.append(row)
        return fuse

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        xs = [branch(x) for branch, x in zip(self.branches, xs)]
        if self.fuse_layers is None:
            return xs
        out = []
        for i, row in enumerate(self.fuse_layers):
            y = xs[i]
            for j, layer in enumerate(row):
                if j == i:
                    continue
                z = layer(xs[j])
                if j > i:
                    z = F.interpolate(z, size=xs[i].shape[-2:], mode="nearest")
                y = y + z
            out.append(self.relu(y))
        return out


class HRNet(nn.Module):
    """HRNet backbone. ``forward(x: float[B, 3, H, W]) -> float[B, C, H/4, W/4]`` (highest-resolution branch)."""

    stride = 4

    def __init__(self, spec: HRNetSpec) -> None:
        super().__init__()
        sc = spec.stem_channels
        self.conv1 = nn.Conv2d(3, sc, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(sc, momentum=BN_MOMENTUM)
        self.conv2 = nn.Conv2d(sc, sc, 3, 2, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(sc, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = _make_layer(Bottleneck, sc, spec.stem_planes, spec.stem_blocks)
        pre = [spec.stem_planes * Bottleneck.expansion]
        for s, stage in enumerate(spec.stages, start=2):
            block = _BLOCKS[stage.block]
            cur = [c * block.expansion for c in stage.channels]
            setattr(self, f"transition{s - 1}", self._make_transition(pre, cur))
            last = s == len(spec.stages) + 1
            modules = []
            for m in range(stage.modules):
                mod = HighResolutionModule(block, stage.blocks, cur, stage.channels,
                                           multi_scale_output=not (last and m == stage.modules - 1))
                cur = mod.out_channels
                modules.append(mod)
            setattr(self, f"stage{s}", nn.Sequential(*modules))
            pre = cur
        self.num_stages = len(spec.stages)
        self.out_channels = pre[0]
        self.spec = spec

    @staticmethod
    def _make_transition(pre: list[int], cur: list[int]) -> nn.ModuleList:
        layers = nn.ModuleList()
        for i, c in enumerate(cur):
            if i < len(pre):
                layers.append(nn.Identity() if pre[i] == c else nn.Sequential(
                    _conv3x3(pre[i], c), nn.BatchNorm2d(c, momentum=BN_MOMENTUM), nn.ReLU(inplace=True)))
            else:  # a new, lower-resolution branch grown from the lowest existing one
                convs = []
                for j in range(i + 1 - len(pre)):
                    cout = c if j == i - len(pre) else pre[-1]
                    convs.append(nn.Sequential(_conv3x3(pre[-1], cout, 2), nn.BatchNorm2d(cout, momentum=BN_MOMENTUM),
                                               nn.ReLU(inplace=True)))
                layers.append(nn.Sequential(*convs))
        return layers

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.relu(self.bn2(self.conv2(x)))
        xs = [self.layer1(x)]
        for s in range(2, self.num_stages + 2):
            transition = getattr(self, f"transition{s - 1}")
            # Existing branches pass through their transition; new ones grow from the lowest resolution.
            xs = [t(xs[i] if i < len(xs) else xs[-1]) for i, t in enumerate(transition)]
            xs = getattr(self, f"stage{s}")(xs)
        return xs[0]


def init_weights(module: nn.Module) -> None:
    """Kaiming for convolutions (training from scratch), unit BatchNorm, zero biases."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d, nn.LayerNorm)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def build_hrnet(variant: str = "w32") -> HRNet:
    net = HRNet(get_hrnet_spec(variant))
    init_weights(net)
    return net
