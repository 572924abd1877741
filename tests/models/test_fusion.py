import copy

import torch

from posecore.models import build_model
from posecore.models.fusion import fuse_conv_bn


def test_folding_batchnorm_keeps_the_outputs():
    torch.manual_seed(0)
    model = build_model({"name": "dag_hrnet_small", "input_size": [64, 64]})
    with torch.no_grad():  # non-trivial running statistics
        for _ in range(3):
            model(torch.randn(4, 3, 64, 64) * 2 + 1)
    model.eval()
    fused = fuse_conv_bn(copy.deepcopy(model))
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.modules())
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        a, b = model(x), fused(x)
    for key in ("multi_heatmaps", "heatmaps", "coords_init"):
        torch.testing.assert_close(b[key], a[key], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(b["coords"][-1], a["coords"][-1], rtol=1e-4, atol=1e-3)
