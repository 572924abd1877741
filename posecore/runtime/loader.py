"""The detector's way in: the cached IR for its weights, converted on first use, or None (PyTorch).

Messages go to stderr, one line each: that a damaged entry is rebuilt, and why OpenVINO is not used when
conversion fails (the detector then runs PyTorch). How long a conversion took is a note on the
``occlupose.runtime`` logger (INFO): the command line shows it unless ``--quiet``, so that a scripted run
that meets bad input still prints exactly one line.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import torch

from . import cache
from .openvino_backend import OpenVinoNet, supports_bf16

log = logging.getLogger("occlupose.runtime")


def _say(message: str) -> None:
    print(f"occlupose: {message}", file=sys.stderr)


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return f"{type(e).__name__}: {text.splitlines()[0]}" if text else type(e).__name__


def load_openvino(weights: Path, net: torch.nn.Module, example: torch.Tensor, precision: str, neck: bool,
                  concurrency: tuple[int, int] = (1, 1)) -> OpenVinoNet | None:
    """An :class:`OpenVinoNet` for ``net`` (the fused network loaded from ``weights``), from the cache or
    converted now; ``example`` is a letterboxed input. None, after one line on stderr, when it fails."""
    from .export import build, cache_key

    if precision == "bf16" and not supports_bf16():
        _say("this CPU has no bf16 support in OpenVINO; running fp32")
        precision = "fp32"
    try:
        sha = cache.file_sha256(Path(weights))
        if precision == "int8":
            entry, damage = cache.lookup(cache_key(weights, "int8", neck, sha))
            if entry is None:
                why = f"the int8 model is damaged ({damage})" if damage else "no int8 model has been made"
                _say(f"{why}; run `occlupose export --precision int8`; running fp32 meanwhile")
                precision = "fp32"
        if precision != "int8":
            key = cache_key(weights, "fp32", neck, sha)
            entry, damage = cache.lookup(key)
            if damage:
                _say(f"cached OpenVINO model {key.folder()} is damaged ({damage}); converting again")
            if entry is None:
                entry = build(net, example, key, neck)
                log.info(f"converted {Path(weights).name} to OpenVINO in {entry.meta['convert_s']:.1f} s "
                         f"(cached in {entry.path.parent})")
        return OpenVinoNet(entry.xml, precision, *concurrency, compiled_cache=cache.cache_root() / "compiled")
    except Exception as e:  # any failure of conversion or loading means: keep running, on PyTorch
        _say(f"OpenVINO conversion failed ({_first_line(e)}); running PyTorch")
        return None


def export_model(detector, precision: str, calibration: list | None = None, neck: bool = False,
                 sources: list[str] | None = None) -> cache.Entry:
    """Convert ``detector``'s network for ``precision`` ('fp32' or 'int8', the latter quantized on the
    BGR frames ``calibration``) into the cache, replacing an entry there; returns the entry."""
    import numpy as np

    from .calibration import calibration_inputs
    from .export import build, cache_key

    example = detector.letterbox(calibration[0] if calibration else np.zeros((480, 640, 3), np.uint8))
    key = cache_key(detector.weights, precision, neck)
    inputs = calibration_inputs(calibration, detector.letterbox) if precision == "int8" else None
    extra = {"calibration_frames": len(inputs), "calibration_sources": sources or []} if inputs else {}
    return build(detector.network, example, key, neck, inputs, extra)
