"""HRNet-W32 at 256x192 against the published 28.5 M parameters and 7.1 GFLOPs.

HRNet's own counter sums the multiply-adds of convolutions and linear layers and divides by 1024^3
(lib/utils/utils.py, get_model_summary); that is the unit of its "7.1 GFLOPs". FlopCounterMode
counts 2 FLOPs per multiply-add.
"""

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from posecore.models import build_model


def complexity(name: str, input_size):
    with torch.device("meta"):  # shapes and counts only, no arithmetic
        model = build_model({"name": name, "input_size": list(input_size)})
        x = torch.empty(1, 3, input_size[1], input_size[0])
        with FlopCounterMode(display=False) as counter:
            model(x)
    params = sum(p.numel() for p in model.parameters())
    macs = counter.get_total_flops() / 2
    return params, macs


@pytest.fixture(scope="module")
def measured():
    """complexity(), each (name, size) counted once per module: hrnet_w32 serves two tests."""
    done = {}

    def get(name: str, input_size) -> tuple[int, float]:
        key = (name, tuple(input_size))
        if key not in done:
            done[key] = complexity(name, input_size)
        return done[key]

    return get


@pytest.mark.parametrize("name,size,params_m,gflops", [
    ("hrnet_w32", (192, 256), 28.5, 7.1),
    ("hrnet_w48", (288, 384), 63.6, 32.9),
])
def test_published_parameters_and_flops(measured, name, size, params_m, gflops):
    params, macs = measured(name, size)
    hrnet_gflops = macs / 1024**3
    print(f"\n{name} {size[1]}x{size[0]}: {params / 1e6:.2f} M parameters, {macs / 1e9:.3f} G multiply-adds "
          f"= {hrnet_gflops:.2f} GFLOPs in HRNet's unit (MACs / 1024^3); published {params_m} M / {gflops} GFLOPs")
    assert abs(params / 1e6 - params_m) / params_m < 0.05
    assert abs(hrnet_gflops - gflops) / gflops < 0.05


def test_dag_adds_little_to_its_backbone(measured):
    base, _ = measured("hrnet_w32", (192, 256))
    dag, dag_macs = measured("dag_hrnet_w32", (192, 256))
    print(f"\ndag_hrnet_w32 256x192: {dag / 1e6:.2f} M parameters, {dag_macs / 1e9:.3f} G multiply-adds")
    assert 0 < dag - base < 0.05 * base
