"""Integral regression (soft-argmax, Sun et al. ECCV 2018), as used by OPEC-Net for its initial pose.

The heatmap is turned into a distribution with a softmax and the joint is its expected position,
which is differentiable, so a coordinate loss can train the heatmaps end to end. Heatmaps trained
towards Gaussians of peak 1 have logits in [0, 1]; ``beta`` sharpens them so that the flat
background does not pull the expectation towards the centre (with beta = 20 a Gaussian peak
outweighs the background of a 64x48 map by about 10^5).
"""

from __future__ import annotations

import numpy as np
import torch

from .grid import heatmap_to_input


class IntegralCodec:
    """Soft-argmax decoding of heatmaps into input-crop pixel coordinates.

    Args:
        input_size: (W, H) of the input crop.
        heatmap_size: (w, h) of the heatmaps.
        beta: softmax inverse temperature applied to the heatmap values.
    """

    def __init__(self, input_size: tuple[int, int] = (192, 256), heatmap_size: tuple[int, int] = (48, 64),
                 beta: float = 20.0) -> None:
        if beta <= 0:
            raise ValueError(f"beta must be > 0, got {beta}")
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.heatmap_size = (int(heatmap_size[0]), int(heatmap_size[1]))
        self.beta = float(beta)

    def __repr__(self) -> str:
        return f"IntegralCodec(input_size={self.input_size}, heatmap_size={self.heatmap_size}, beta={self.beta})"

    def to_config(self) -> dict:
        return {"input_size": list(self.input_size), "heatmap_size": list(self.heatmap_size), "beta": self.beta}

    def encode(self, keypoints: np.ndarray, visible: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Coordinate targets: float32[K, 2] input-crop pixels and float32[K] weights (0 = unlabelled or outside)."""
        kp = np.asarray(keypoints, np.float32).reshape(-1, 2)
        vis = np.asarray(visible, np.float32).reshape(-1)
        if len(vis) != len(kp):
            raise ValueError(f"visible: {len(vis)} flags for {len(kp)} keypoints")
        w, h = self.input_size
        x, y = kp[:, 0], kp[:, 1]
        inside = np.isfinite(x) & np.isfinite(y) & (x >= -0.5) & (x <= w - 0.5) & (y >= -0.5) & (y <= h - 0.5)
        keep = (vis > 0) & inside
        return np.where(keep[:, None], kp, 0.0).astype(np.float32), keep.astype(np.float32)

    def decode(self, heatmaps):
        """heatmaps: float[B, K, h, w] tensor (differentiable) or array.

        Returns coords float[B, K, 2] in input-crop pixels and scores float[B, K] (heatmap maxima),
        as tensors for a tensor input and float32 arrays for an array input.
        """
        as_numpy = not isinstance(heatmaps, torch.Tensor)
        hm = torch.as_tensor(np.asarray(heatmaps, np.float32)) if as_numpy else heatmaps
        if hm.ndim != 4:
            raise ValueError(f"heatmaps: expected [B, K, h, w], got shape {tuple(hm.shape)}")
        b, k, h, w = hm.shape
        flat = hm.float().reshape(b, k, h * w)
        prob = torch.softmax(self.beta * flat, dim=-1).reshape(b, k, h, w)
        xs = torch.arange(w, device=hm.device, dtype=prob.dtype)
        ys = torch.arange(h, device=hm.device, dtype=prob.dtype)
        x = (prob.sum(dim=2) * xs).sum(-1)
        y = (prob.sum(dim=3) * ys).sum(-1)
        coords = heatmap_to_input(torch.stack((x, y), -1), self.input_size, (w, h))
        scores = flat.amax(dim=-1)
        if as_numpy:
            return coords.numpy().astype(np.float32), scores.numpy().astype(np.float32)
        return coords, scores
