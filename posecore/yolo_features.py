"""The YOLO pose model's own neck features, tapped while it detects, and read at image points.

YOLO11-pose's neck hands three maps to the Pose head (``net.model[-1]``): P3, P4 and P5 at strides 8, 16
and 32 of the letterboxed input (64, 128 and 256 channels for YOLO11n). :class:`YoloFeatureTap` catches
them with forward pre-hooks, which fire however the eager model is called (``YOLO.predict``, the
predictor's ``inference``, a plain ``net(x)``). A TorchScript graph runs no Python hooks, so a detector
that traces the network traces :meth:`YoloFeatureTap.traceable` instead, whose graph also returns the
maps, and hands them to :meth:`YoloFeatureTap.record`.

Captures are kept per thread: a detector may run in several threads at once, and
:class:`posecore.detector.Detector` (after ``capture_features()``) takes each frame's maps with
:meth:`YoloFeatureTap.take` in the thread that detected it and hands them on with the detections
(``Detections.features``).

Coordinates: an image point (x, y) lands at x * gain_x + pad_x in the letterboxed input, with the gains
and pads Ultralytics' ``scale_boxes`` undoes (:class:`Letterbox`); YOLO's keypoints are continuous
coordinates (0 = the left edge of the image), and so are the maps' cells: cell j of a stride-s map is
centred at (j + 0.5) * s, which is what ``grid_sample`` with ``align_corners=False`` assumes.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass(frozen=True)
class Letterbox:
    """How a frame of ``frame_hw`` sits in the network input of ``input_hw`` (both (H, W)):
    input = image * (gain_x, gain_y) + (pad_x, pad_y), exactly as Ultralytics' ``scale_boxes`` computes it."""

    gain_x: float
    gain_y: float
    pad_x: float
    pad_y: float
    input_hw: tuple[int, int]

    @classmethod
    def from_shapes(cls, input_hw: tuple[int, int], frame_hw: tuple[int, int]) -> "Letterbox":
        ih, iw = int(input_hw[0]), int(input_hw[1])
        fh, fw = int(frame_hw[0]), int(frame_hw[1])
        gain = min(ih / fh, iw / fw)
        new_h, new_w = max(round(fh * gain), 1), max(round(fw * gain), 1)  # LetterBox rounds each side
        pad_x, pad_y = round((iw - new_w) / 2 - 0.1), round((ih - new_h) / 2 - 0.1)
        return cls(new_w / fw, new_h / fh, float(pad_x), float(pad_y), (ih, iw))

    def to_input(self, xy: torch.Tensor) -> torch.Tensor:
        """Image points float[..., 2] -> input pixels (continuous coordinates)."""
        gain = xy.new_tensor((self.gain_x, self.gain_y))
        pad = xy.new_tensor((self.pad_x, self.pad_y))
        return xy * gain + pad

    def to_grid(self, xy: torch.Tensor) -> torch.Tensor:
        """Image points float[..., 2] -> ``grid_sample`` coordinates of any of the maps (in [-1, 1] inside)."""
        ih, iw = self.input_hw
        return self.to_input(xy) * xy.new_tensor((2.0 / iw, 2.0 / ih)) - 1.0


@dataclass(frozen=True)
class YoloFeatures:
    """The neck maps of one frame: ``maps`` float[1, C_i, H_i, W_i] (finest first), all covering the
    letterboxed input of ``input_hw`` (H, W)."""

    maps: tuple[torch.Tensor, ...]
    input_hw: tuple[int, int]

    @property
    def channels(self) -> tuple[int, ...]:
        return tuple(int(m.shape[1]) for m in self.maps)

    def letterbox(self, frame_hw: tuple[int, int]) -> Letterbox:
        return Letterbox.from_shapes(self.input_hw, frame_hw)

    def sample(self, xy: torch.Tensor | np.ndarray, frame_hw: tuple[int, int]) -> torch.Tensor:
        """float32[..., sum(C_i)]: every map read bilinearly at image points ``xy`` float[..., 2] of a frame
        of ``frame_hw`` (H, W), channels concatenated finest first. Points off the input read the border."""
        device = self.maps[0].device
        xy = torch.as_tensor(xy, dtype=torch.float32, device=device)
        lead = xy.shape[:-1]
        grid = self.letterbox(frame_hw).to_grid(xy.reshape(1, -1, 1, 2))
        out = [F.grid_sample(m.float(), grid, mode="bilinear", padding_mode="border", align_corners=False)
               for m in self.maps]  # each [1, C_i, P, 1]
        return torch.cat(out, 1)[0, :, :, 0].T.reshape(*lead, -1)

    def sample_grid(self, xy: torch.Tensor | np.ndarray, frame_hw: tuple[int, int], radius: int = 2,
                    step: float = 4.0, level: int = 0) -> tuple[torch.Tensor, float]:
        """Map ``level`` (default P3, the finest) read on a square grid around each image point ``xy``
        float[..., 2]: float32[..., (2r + 1)^2, C], grid points ``step`` input pixels apart (in the order
        of :func:`local_grid`); and that step in image pixels."""
        m = self.maps[level]
        lb = self.letterbox(frame_hw)
        xy = torch.as_tensor(xy, dtype=torch.float32, device=m.device)
        lead = xy.shape[:-1]
        offsets = local_grid(radius).to(m.device) * step  # input pixels
        pts = lb.to_input(xy.reshape(-1, 1, 2)) + offsets  # [P, G, 2] input pixels
        ih, iw = lb.input_hw
        grid = pts * pts.new_tensor((2.0 / iw, 2.0 / ih)) - 1.0
        out = F.grid_sample(m.float(), grid.reshape(1, -1, 1, 2), mode="bilinear", padding_mode="border",
                            align_corners=False)[0, :, :, 0].T  # [P * G, C]
        image_step = step * 2.0 / (lb.gain_x + lb.gain_y)
        return out.reshape(*lead, len(offsets), m.shape[1]), image_step


def local_grid(radius: int) -> torch.Tensor:
    """float32[(2r + 1)^2, 2]: the grid's offsets in steps, row by row (x fastest)."""
    r = torch.arange(-radius, radius + 1, dtype=torch.float32)
    gy, gx = torch.meshgrid(r, r, indexing="ij")
    return torch.stack((gx.reshape(-1), gy.reshape(-1)), -1)


def pose_network(model) -> nn.Module:
    """The ``nn.Module`` whose ``.model`` holds the layers (the last being the head): an Ultralytics
    ``YOLO`` object's ``.model``, or that module itself."""
    for candidate in (model, getattr(model, "model", None)):
        if isinstance(candidate, nn.Module) and isinstance(getattr(candidate, "model", None), nn.Sequential):
            return candidate
    raise TypeError("expected a YOLO model (its .model holds the layers, the last being the head)")


def head_channels(head: nn.Module) -> tuple[int, ...]:
    """Input channels of a YOLO head (from its first conv of each level), or () if unknown."""
    try:
        return tuple(int(seq[0].conv.in_channels) for seq in head.cv2)
    except (TypeError, AttributeError, IndexError):
        return ()


class _Traceable(nn.Module):
    """``forward(x) -> (head output, *neck maps)``: the network with its neck maps as graph outputs."""

    def __init__(self, net: nn.Module, local: threading.local):
        super().__init__()
        self.net = net
        self._local = local

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        y = self.net(x)
        y = y[0] if isinstance(y, (list, tuple)) else y
        return (y, *self._local.pending)  # set by the head's pre-hook during this very call


class YoloFeatureTap:
    """Catches the inputs of a YOLO model's head on every forward pass.

    ``tap = YoloFeatureTap(yolo)`` (an Ultralytics ``YOLO`` or its ``.model``); after each detection,
    ``tap.take()`` in the detecting thread returns that frame's :class:`YoloFeatures` (or None when no
    forward ran since the last ``take``). ``tap.close()`` stops it.

    Ultralytics' predictor runs a deep copy of the model. The hooks are plain functions, which a deep
    copy shares rather than copies, so a predictor set up after the tap reports to it too; one that
    already exists is found through ``yolo.predictor`` and hooked as well.
    """

    def __init__(self, model=None) -> None:
        self._local = threading.local()
        self._closed = False
        self._handles: list = []
        self.heads: list[nn.Module] = []  # the head modules hooked
        local = self._local
        tap = self

        def on_input(module: nn.Module, args) -> None:
            if tap._closed:
                return
            local.pending = None
            # While tracing, shapes are graph values; the traced graph's caller records the shape.
            local.input_hw = None if torch.jit.is_tracing() else tuple(int(s) for s in args[0].shape[-2:])

        def on_head(module: nn.Module, args) -> None:
            if tap._closed:
                return
            maps = tuple(args[0])  # the head rewrites its input list in place; keep the neck's tensors
            local.pending = maps
            hw = getattr(local, "input_hw", None)
            if hw is not None and not torch.jit.is_tracing():
                local.captured = YoloFeatures(tuple(m.detach() for m in maps), hw)

        self._on_input, self._on_head = on_input, on_head
        if model is not None:
            self.attach(model)

    def attach(self, model) -> None:
        """Hook the network of ``model`` (a ``YOLO``, its ``.model``, or a predictor's ``AutoBackend``)
        and of its current predictor, unless already hooked."""
        nets = [pose_network(model)]
        predictor = getattr(model, "predictor", None)
        backend = getattr(predictor, "model", None)
        if backend is not None:
            try:
                nets.append(pose_network(getattr(backend, "model", backend)))
            except TypeError:
                pass  # an exported backend (ONNX, ...) has no module to hook
        for net in nets:
            if any(h is self._on_input for h in net._forward_pre_hooks.values()):
                continue
            self._handles += [net.register_forward_pre_hook(self._on_input),
                              net.model[-1].register_forward_pre_hook(self._on_head)]
            self.heads.append(net.model[-1])

    # -- the frozen-graph path ----------------------------------------------------------------------------
    def traceable(self, model) -> nn.Module:
        """``model``'s network as a module returning ``(head output, P3, P4, P5)``, for ``torch.jit.trace``;
        pass the maps its graph returns to :meth:`record`."""
        self.attach(model)
        return _Traceable(pose_network(model), self._local)

    def record(self, maps, input_shape) -> None:
        """Store maps returned by a traced graph, for the input of ``input_shape`` (..., H, W)."""
        hw = (int(input_shape[-2]), int(input_shape[-1]))
        self._local.captured = YoloFeatures(tuple(m.detach() for m in maps), hw)

    # -- results -----------------------------------------------------------------------------------------
    def take(self) -> YoloFeatures | None:
        """This thread's latest capture, which is then forgotten."""
        out = getattr(self._local, "captured", None)
        self._local.captured = None
        return out

    def close(self) -> None:
        """Stop capturing (in deep copies made since, too) and remove the hooks."""
        self._closed = True
        for h in self._handles:
            h.remove()
        self._handles = []

    def __enter__(self) -> "YoloFeatureTap":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
