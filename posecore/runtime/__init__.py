"""Where the networks run: PyTorch, or OpenVINO IR converted once from the same weights and cached.

``runtime: auto | torch | openvino`` picks the engine (auto: OpenVINO on CPU when the ``openvino`` package
works, PyTorch on CUDA and MPS, where OpenVINO's CPU plugin would be the slower choice), and ``precision:
fp32 | bf16 | int8`` what OpenVINO computes in (bf16 only where the CPU has it; int8 from a model made
beforehand by ``occlupose export --precision int8``).
"""

from __future__ import annotations

import sys
from functools import lru_cache
from typing import Literal

Runtime = Literal["auto", "torch", "openvino"]
Precision = Literal["fp32", "bf16", "int8"]
RUNTIMES: tuple[str, ...] = ("auto", "torch", "openvino")
PRECISIONS: tuple[str, ...] = ("fp32", "bf16", "int8")


@lru_cache(maxsize=1)
def openvino_problem() -> str | None:
    """Why OpenVINO cannot run here (None when it can): the package is missing or finds no CPU device."""
    try:
        import openvino as ov

        if "CPU" not in ov.Core().available_devices:
            return "OpenVINO finds no CPU device"
    except Exception as e:  # an import or plugin failure: any of them means "use PyTorch"
        return f"OpenVINO is not usable ({type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''})"
    return None


def resolve_runtime(runtime: str, device_type: str) -> str:
    """'torch' or 'openvino' for a setting and the torch device type the model would run on.

    An explicit ``openvino`` on a machine without it falls back to torch with one line on stderr."""
    runtime = (runtime or "auto").lower()
    if runtime == "torch" or device_type != "cpu":
        return "torch"  # OpenVINO here runs on the CPU only; an accelerator the user chose wins
    problem = openvino_problem()
    if problem is None:
        return "openvino"
    if runtime == "openvino":
        print(f"occlupose: {problem}; running PyTorch", file=sys.stderr)
    return "torch"
