"""Converting the YOLO network occlupose loads into OpenVINO IR (fp32, or int8 by NNCF), into the cache.

The IR takes rectangular letterboxed inputs of any size (``[1, 3, ?, ?]``): the head rebuilds its anchor
grid from the input's shape (Ultralytics' ``dynamic`` head), so one conversion serves every frame size;
:mod:`.openvino_backend` compiles it per input shape. Conversion is ``openvino.convert_model`` on the
traced module, the way Ultralytics' own exporter does it; int8 is ``nncf.quantize`` with the head's decoding
(box distribution, sigmoids, anchor arithmetic) kept in float, as Ultralytics' int8 export keeps it, and the
pose head's keypoint branch too (:func:`head_float_scope`).
"""

from __future__ import annotations

import contextlib
import copy
import os
import time
import warnings
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch

from . import cache

POLICY = "dynamic-hw"  # one IR for any letterboxed input size; compiled per shape
INT8_RECIPE = "float-decode+keypoint-branch"  # head_float_scope


class _Outputs(torch.nn.Module):
    """The network as a traceable module: the head's decoded output ``float[1, 4 + classes + K * 3, anchors]``,
    then, with ``neck``, the three maps the head reads (P3, P4, P5)."""

    def __init__(self, net: torch.nn.Module, neck: bool):
        super().__init__()
        self.net = net
        self.neck = neck
        self._maps: list[torch.Tensor] = []
        if neck:
            net.model[-1].register_forward_pre_hook(self._catch)

    def _catch(self, module, args) -> None:
        self._maps = list(args[0])  # the head rewrites its input list in place; keep the neck's tensors

    def forward(self, x: torch.Tensor):
        y = self.net(x)
        y = y[0] if isinstance(y, (list, tuple)) else y
        return (y, *self._maps) if self.neck else y


@contextlib.contextmanager
def no_telemetry():
    """OpenVINO's converter sends usage telemetry unless the user opted out or it runs in CI; occlupose
    converts offline and sends nothing, so the conversion runs as in CI (its documented off switch)."""
    before = os.environ.get("CI")
    os.environ["CI"] = "true"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("CI", None)
        else:
            os.environ["CI"] = before


def converter_version() -> str:
    import ultralytics

    return f"ultralytics-{ultralytics.__version__}+torch-{torch.__version__.split('+')[0]}"


def cache_key(weights: Path, precision: str, neck: bool, weights_sha256: str | None = None) -> cache.CacheKey:
    import openvino as ov

    converter = converter_version()
    if precision == "int8":  # what stays float is part of the model: a changed recipe makes a new entry
        from importlib.metadata import version

        converter += f"+nncf-{version('nncf')}+{INT8_RECIPE}"
    return cache.CacheKey(weights_sha256 or cache.file_sha256(Path(weights)), POLICY,
                          "int8" if precision == "int8" else "fp32", "head+neck" if neck else "head",
                          ov.get_version(), converter)


def convert(net: torch.nn.Module, example: torch.Tensor, neck: bool = False):
    """``openvino.Model`` of a fused YOLO network (``AutoBackend.model``, left untouched: a copy is
    converted), input ``float[1, 3, H, W]`` in 0..1 with H and W free."""
    import openvino as ov

    net = copy.deepcopy(net).float().eval()
    net.model[-1].dynamic = True  # anchors from the traced input shape, not baked-in constants
    module = _Outputs(net, neck)
    with warnings.catch_warnings(), torch.inference_mode(), no_telemetry():
        warnings.simplefilter("ignore")  # tracer warnings about Python values taken as constants: intended
        traced = torch.jit.trace(module, example.float(), strict=False, check_trace=False)
        return ov.convert_model(traced, input=[ov.PartialShape([1, 3, -1, -1])], example_input=example.float())


def head_float_scope(model):
    """``nncf.IgnoredScope`` of what stays in float in an int8 model, in the head found as Ultralytics' int8
    exporter finds it (the last Sigmoid's scope):

    * the decoding ops (int8 there costs box and keypoint accuracy, not speed), as Ultralytics keeps them;
    * the keypoint branch (the pose head's ``cv4`` convolutions, about a seventh of YOLO11n-pose's
      operations at 640): joints are regressed as pixel offsets, and int8 there made two thirds of int8's
      COCO-mini keypoint AP loss (0.4175 with it in int8, 0.4502 in float, 0.4664 fp32; README, "Runtime")."""
    import nncf

    ops = model.get_ordered_ops()
    sigmoids = [op.get_friendly_name() for op in ops if op.get_type_name() == "Sigmoid"]
    if not sigmoids:
        return None
    head = sigmoids[-1].split("/", 1)[0]
    kept = (f"{head}/", f"{head}.dfl", f"{head}.cv4.")
    return nncf.IgnoredScope(names=[op.get_friendly_name() for op in ops
                                    if op.get_type_name() == "Sigmoid" or op.get_friendly_name().startswith(kept)],
                             validate=False)


def quantize(model, inputs: Iterable[np.ndarray], count: int):
    """int8 ``openvino.Model`` from an fp32 one by NNCF post-training quantization on ``inputs``
    (letterboxed float32[1, 3, H, W] in 0..1, as the detector feeds the network)."""
    import logging

    import nncf
    from nncf.common.logging import nncf_logger

    nncf_logger.setLevel(logging.WARNING)  # one INFO line per operation otherwise
    data = nncf.Dataset(list(inputs))
    return nncf.quantize(model, data, preset=nncf.QuantizationPreset.MIXED, subset_size=count,
                         ignored_scope=head_float_scope(model))


def build(net: torch.nn.Module, example: torch.Tensor, key: cache.CacheKey, neck: bool,
          calibration: list[np.ndarray] | None = None, extra: dict | None = None) -> cache.Entry:
    """Convert (and quantize, for an int8 key) and store the entry; meta records how long it took."""
    import openvino as ov

    t0 = time.perf_counter()
    model = convert(net, example, neck)
    if key.precision == "int8":
        if not calibration:
            raise ValueError("int8 needs calibration frames")
        model = quantize(model, calibration, len(calibration))
    seconds = time.perf_counter() - t0
    return cache.store(key, lambda folder: ov.save_model(model, folder / "model.xml", compress_to_fp16=False),
                       {"convert_s": round(seconds, 2), **(extra or {})})
