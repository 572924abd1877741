"""Gaussian heatmap codec: training targets and their decoding, in one object.

Coordinates follow the pixel convention of :mod:`posecore.codecs`: keypoints are in input-crop
pixels, the Gaussian is centred on the exact (sub-pixel) heatmap position of the joint and decoding
returns input-crop pixels again. Decoding takes the argmax and refines it to sub-pixel precision
with a second-order Taylor step on the log heatmap (DARK, Zhang et al. CVPR 2020), which is exact
for a Gaussian; an optional blur first makes noisy predicted heatmaps closer to that shape.
"""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from .grid import heatmap_to_input, input_to_heatmap

_EPS = 1e-10


def _to_numpy(heatmaps) -> np.ndarray:
    if hasattr(heatmaps, "detach"):
        heatmaps = heatmaps.detach().float().cpu().numpy()
    return np.asarray(heatmaps, dtype=np.float32)


class HeatmapCodec:
    """Encode keypoints as Gaussian heatmaps; decode heatmaps back to keypoints.

    Args:
        input_size: (W, H) of the input crop, e.g. (192, 256).
        heatmap_size: (w, h) of the heatmaps, e.g. (48, 64).
        sigma: Gaussian standard deviation in heatmap pixels.
        refine: "dark" for the Taylor sub-pixel step, "none" for the plain argmax.
        blur_kernel: odd kernel size of a Gaussian blur before the Taylor step, which steadies noisy
            predictions far from the border (DARK uses 11 for sigma 2); 0 = no blur, exact on
            Gaussians everywhere, including joints on the crop's edge.
    """

    def __init__(self, input_size: tuple[int, int] = (192, 256), heatmap_size: tuple[int, int] = (48, 64),
                 sigma: float = 2.0, refine: Literal["dark", "none"] = "dark", blur_kernel: int = 0) -> None:
        if sigma <= 0:
            raise ValueError(f"sigma must be > 0, got {sigma}")
        if blur_kernel and blur_kernel % 2 == 0:
            raise ValueError(f"blur_kernel must be odd or 0, got {blur_kernel}")
        if refine not in ("dark", "none"):
            raise ValueError(f"refine must be 'dark' or 'none', got {refine!r}")
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.heatmap_size = (int(heatmap_size[0]), int(heatmap_size[1]))
        self.sigma = float(sigma)
        self.refine = refine
        self.blur_kernel = int(blur_kernel)

    def __repr__(self) -> str:
        return (f"HeatmapCodec(input_size={self.input_size}, heatmap_size={self.heatmap_size}, "
                f"sigma={self.sigma}, refine={self.refine!r}, blur_kernel={self.blur_kernel})")

    def to_config(self) -> dict:
        return {"input_size": list(self.input_size), "heatmap_size": list(self.heatmap_size),
                "sigma": self.sigma, "refine": self.refine, "blur_kernel": self.blur_kernel}

    # ------------------------------------------------------------------ encode
    def in_bounds(self, keypoints: np.ndarray) -> np.ndarray:
        """bool[...]: the joint lies inside the crop's area [-0.5, W-0.5] x [-0.5, H-0.5]."""
        kp = np.asarray(keypoints, np.float32)
        w, h = self.input_size
        x, y = kp[..., 0], kp[..., 1]
        return np.isfinite(x) & np.isfinite(y) & (x >= -0.5) & (x <= w - 0.5) & (y >= -0.5) & (y <= h - 0.5)

    def _gaussians(self, keypoints: np.ndarray, keep: np.ndarray) -> np.ndarray:
        w, h = self.heatmap_size
        mu = input_to_heatmap(np.where(keep[..., None], keypoints, 0.0).astype(np.float32),
                              self.input_size, self.heatmap_size)
        k = 1.0 / (2.0 * self.sigma**2)
        gx = np.exp(-k * (np.arange(w, dtype=np.float32) - mu[..., 0:1]) ** 2)  # [..., w]
        gy = np.exp(-k * (np.arange(h, dtype=np.float32) - mu[..., 1:2]) ** 2)  # [..., h]
        hm = gy[..., :, None] * gx[..., None, :]
        return (hm * keep[..., None, None]).astype(np.float32)

    def encode(self, keypoints: np.ndarray, visible: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Targets for one person.

        keypoints: float[K, 2] in input-crop pixels; visible: float[K], a joint counts when > 0
        (0/1 flags or COCO's v in {0, 1, 2}).
        Returns heatmaps float32[K, h, w] and weights float32[K] (0 for unlabelled or out-of-crop joints).
        """
        kp = np.asarray(keypoints, np.float32).reshape(-1, 2)
        vis = np.asarray(visible, np.float32).reshape(-1)
        if len(vis) != len(kp):
            raise ValueError(f"visible: {len(vis)} flags for {len(kp)} keypoints")
        keep = (vis > 0) & self.in_bounds(kp)
        return self._gaussians(kp, keep), keep.astype(np.float32)

    def encode_multi(self, keypoints: np.ndarray, visible: np.ndarray) -> np.ndarray:
        """Multi-joint target: every person's joints inside the crop, max over people.

        keypoints: float[P, K, 2]; visible: float[P, K]. Returns float32[K, h, w].
        """
        kp = np.asarray(keypoints, np.float32)
        vis = np.asarray(visible, np.float32)
        if kp.ndim != 3 or vis.shape != kp.shape[:2]:
            raise ValueError(f"expected keypoints [P, K, 2] and visible [P, K], got {kp.shape} and {vis.shape}")
        w, h = self.heatmap_size
        if kp.shape[0] == 0:
            return np.zeros((kp.shape[1], h, w), np.float32)
        keep = (vis > 0) & self.in_bounds(kp)
        return self._gaussians(kp, keep).max(axis=0)

    # ------------------------------------------------------------------ decode
    def decode(self, heatmaps) -> tuple[np.ndarray, np.ndarray]:
        """Keypoints from heatmaps.

        heatmaps: float[B, K, h, w] (numpy or torch; [K, h, w] also accepted).
        Returns coords float32[B, K, 2] in input-crop pixels and scores float32[B, K] (heatmap maxima);
        without the batch axis when the input had none.
        """
        hm = _to_numpy(heatmaps)
        single = hm.ndim == 3
        if single:
            hm = hm[None]
        if hm.ndim != 4:
            raise ValueError(f"heatmaps: expected [B, K, h, w], got shape {hm.shape}")
        b, k, h, w = hm.shape
        flat = hm.reshape(b, k, -1)
        idx = flat.argmax(-1)
        scores = np.take_along_axis(flat, idx[..., None], -1)[..., 0].astype(np.float32)
        xy = np.stack((idx % w, idx // w), -1).astype(np.float32)
        if self.refine == "dark" and h >= 3 and w >= 3:
            xy += self._taylor_offsets(hm, idx)
        coords = heatmap_to_input(xy, self.input_size, (w, h)).astype(np.float32)
        return (coords[0], scores[0]) if single else (coords, scores)

    def _blur(self, hm: np.ndarray) -> np.ndarray:
        """Separable Gaussian blur with zero padding (cv2's sigma for the kernel size)."""
        if not self.blur_kernel:
            return hm
        b, k, h, w = hm.shape
        ks = self.blur_kernel
        g = cv2.getGaussianKernel(ks, 0).astype(np.float32).reshape(-1)
        x = torch.from_numpy(np.ascontiguousarray(hm)).reshape(b * k, 1, h, w)
        with torch.no_grad():
            x = F.conv2d(x, torch.from_numpy(g).view(1, 1, 1, ks), padding=(0, ks // 2))
            x = F.conv2d(x, torch.from_numpy(g).view(1, 1, ks, 1), padding=(ks // 2, 0))
        return x.reshape(b, k, h, w).numpy()

    def _taylor_offsets(self, hm: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """float32[B, K, 2] sub-pixel offsets from a Newton step on log(heatmap) near the argmax.

        The 3x3 stencil is centred on the argmax, moved one pixel inwards at the border; the step is
        taken from the stencil centre, which is exact for a Gaussian wherever the stencil sits.
        """
        b, k, h, w = hm.shape
        blurred = self._blur(hm).reshape(b, k, -1)
        x = idx % w
        y = idx // w
        xc = np.clip(x, 1, w - 2)
        yc = np.clip(y, 1, h - 2)

        def at(dx: int, dy: int) -> np.ndarray:
            v = np.take_along_axis(blurred, ((yc + dy) * w + (xc + dx))[..., None], -1)[..., 0]
            return np.log(np.maximum(v, _EPS))

        c = at(0, 0)
        gx = 0.5 * (at(1, 0) - at(-1, 0))
        gy = 0.5 * (at(0, 1) - at(0, -1))
        hxx = at(1, 0) - 2 * c + at(-1, 0)
        hyy = at(0, 1) - 2 * c + at(0, -1)
        hxy = 0.25 * (at(1, 1) - at(-1, 1) - at(1, -1) + at(-1, -1))
        det = hxx * hyy - hxy**2
        both = (hxx < 0) & (det > 1e-12)
        safe_det = np.where(both, det, 1.0)
        dx2 = -(hyy * gx - hxy * gy) / safe_det
        dy2 = -(-hxy * gx + hxx * gy) / safe_det
        # Where the Hessian is not negative definite, fall back to 1-D steps per axis (or none).
        dx1 = np.where(hxx < 0, -gx / np.where(hxx < 0, hxx, -1.0), 0.0)
        dy1 = np.where(hyy < 0, -gy / np.where(hyy < 0, hyy, -1.0), 0.0)
        px = xc + np.where(both, dx2, dx1)
        py = yc + np.where(both, dy2, dy1)
        # Stay within one pixel of the argmax: a larger jump means the peak is not Gaussian-like.
        ox = np.clip(px - x, -1.0, 1.0)
        oy = np.clip(py - y, -1.0, 1.0)
        return np.stack((ox, oy), -1).astype(np.float32)
