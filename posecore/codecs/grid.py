"""Conversions between input-crop pixels, heatmap pixels and grid_sample's normalised coordinates.

See :mod:`posecore.codecs` for the pixel convention. Every function works on numpy arrays and on
torch tensors (differentiably), with ``xy`` of shape ``[..., 2]`` and sizes given as ``(W, H)``.
"""

from __future__ import annotations


def _scale(src: tuple[int, int], dst: tuple[int, int], xy):
    sx = dst[0] / src[0]
    sy = dst[1] / src[1]
    x = (xy[..., 0] + 0.5) * sx - 0.5
    y = (xy[..., 1] + 0.5) * sy - 0.5
    return _stack(xy, x, y)


def _stack(like, x, y):
    if hasattr(like, "new_empty"):  # torch
        import torch

        return torch.stack((x, y), dim=-1)
    import numpy as np

    return np.stack((x, y), axis=-1).astype(like.dtype, copy=False)


def input_to_heatmap(xy, input_size: tuple[int, int], heatmap_size: tuple[int, int]):
    """Input-crop pixels -> heatmap pixels."""
    return _scale(input_size, heatmap_size, xy)


def heatmap_to_input(xy, input_size: tuple[int, int], heatmap_size: tuple[int, int]):
    """Heatmap pixels -> input-crop pixels."""
    return _scale(heatmap_size, input_size, xy)


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
