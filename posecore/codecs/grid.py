"""Conversions between input-crop pixels, heatmap pixels and grid_sample's normalised coordinates.

See :mod:`posecore.codecs` for the pixel convention. Every function takes numpy arrays or torch
tensors (differentiably) of shape ``[..., 2]`` and returns the same kind; sizes are ``(W, H)``.
"""

from __future__ import annotations

import numpy as np
import torch


def _stack(like, x, y):
    if isinstance(like, torch.Tensor):
        return torch.stack((x, y), dim=-1)
    return np.stack((x, y), axis=-1).astype(like.dtype, copy=False)


def _rescale(xy, src: tuple[int, int], dst: tuple[int, int]):
    """Between two pixel grids covering the same area: x_dst = (x_src + 0.5) * dst / src - 0.5."""
    x = (xy[..., 0] + 0.5) * (dst[0] / src[0]) - 0.5
    y = (xy[..., 1] + 0.5) * (dst[1] / src[1]) - 0.5
    return _stack(xy, x, y)


def input_to_heatmap(xy, input_size: tuple[int, int], heatmap_size: tuple[int, int]):
    """Input-crop pixels -> heatmap pixels."""
    return _rescale(xy, input_size, heatmap_size)


def heatmap_to_input(xy, input_size: tuple[int, int], heatmap_size: tuple[int, int]):
    """Heatmap pixels -> input-crop pixels."""
    return _rescale(xy, heatmap_size, input_size)


def input_to_normalized(xy, input_size: tuple[int, int]):
    """Input-crop pixels -> grid_sample coordinates in [-1, 1] (align_corners=False)."""
    x = (xy[..., 0] + 0.5) * (2.0 / input_size[0]) - 1.0
    y = (xy[..., 1] + 0.5) * (2.0 / input_size[1]) - 1.0
    return _stack(xy, x, y)


def normalized_to_input(uv, input_size: tuple[int, int]):
    """grid_sample coordinates in [-1, 1] -> input-crop pixels."""
    x = (uv[..., 0] + 1.0) * (input_size[0] / 2.0) - 0.5
    y = (uv[..., 1] + 1.0) * (input_size[1] / 2.0) - 0.5
    return _stack(uv, x, y)
