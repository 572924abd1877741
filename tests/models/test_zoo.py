"""Every registered model runs forward and backward (small inputs keep this fast)."""

import numpy as np
import pytest
import torch

from posecore.errors import ConfigError
from posecore.models import build_model, list_models
from posecore.models.base import TopDownPoseModel
from posecore.models.couplegraph import CoupleGraph
from posecore.models.gcn import FGMHGCN
from posecore.models.yolo_refiner import YoloRefinerNet

SMALL_INPUT = {"hrnet_w48": [32, 64], "dag_hrnet_w48": [32, 64]}  # (W, H)


def _loss(out) -> torch.Tensor:
    if isinstance(out, torch.Tensor):
        return out.square().mean()
    if isinstance(out, dict):
        return sum(_loss(v) for v in out.values())
    return sum(_loss(v) for v in out)


def _run(model):
    torch.manual_seed(0)
    if isinstance(model, TopDownPoseModel):
        w, h = model.input_size
        b = 1 if "w48" in model.config["name"] else 2  # the 64 M-parameter nets: keep the backward pass cheap
        out = model(torch.randn(b, 3, h, w))
        assert out["heatmaps"].shape == (b, model.num_joints, h // 4, w // 4)
        return out
    if isinstance(model, FGMHGCN):
        k = model.num_joints
        fmap = torch.randn(2, model.feat_channels, 16, 12) if model.feat_channels else None
        out = model(torch.rand(2, k, 2) * 2 - 1, fmap, scores=torch.rand(2, k))
        assert out["coords"][-1].shape == (2, k, 2)
        return out
    if isinstance(model, CoupleGraph):
        k = model.num_joints
        kp = torch.rand(3, 2, k, 3) * 100
        boxes = torch.tensor([[[0.0, 0, 60, 100], [30, 10, 100, 110]]]).repeat(3, 1, 1)
        out = model(kp, boxes)
        assert out.shape == (3, 2, k, 2)
        return out
    if isinstance(model, YoloRefinerNet):
        k, n = model.num_joints, 3
        kp = torch.cat([torch.rand(n, k, 2) * 100, torch.rand(n, k, 1)], -1)
        boxes = torch.tensor([[0.0, 0, 60, 100], [30, 10, 100, 110], [200, 0, 260, 100]])
        grid = torch.randn(n, k, (2 * model.radius + 1) ** 2, model.in_channels[0])
        feats = torch.randn(n, k, sum(model.in_channels))
        out = model(kp, boxes, feats, grid, torch.full((n,), 4.0), torch.tensor([[0, 1]]))
        assert out["stages"][-1].shape == (n, k, 2) and out["couple"] is None  # couple off by default
        return out["stages"]
    raise AssertionError(f"no test input for {type(model).__name__}")


def test_the_parametrized_list_is_every_model():
    """Importing posecore.models registers every builder, so this file collects the same models alone as
    in the whole suite."""
    assert set(list_models()) == {"hrnet_w32", "hrnet_w48", "hrnet_small", "dag_hrnet_w32", "dag_hrnet_w48",
                                  "dag_hrnet_small", "fgmh_gcn", "couplegraph", "yolo_refiner"}


@pytest.mark.parametrize("name", list_models())
def test_forward_and_backward(name):
    cfg = {"name": name}
    if name.startswith(("hrnet", "dag")):
        cfg["input_size"] = SMALL_INPUT.get(name, [64, 64])
    model = build_model(cfg).train()
    assert model.config == cfg
    _loss(_run(model)).backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads), "a parameter got no gradient"


@pytest.mark.parametrize("skeleton,k", [("coco17", 17), ("crowdpose14", 14)])
def test_dag_outputs_follow_the_contract(skeleton, k):
    model = build_model({"name": "dag_hrnet_small", "skeleton": skeleton, "input_size": [64, 96],
                         "visibility": {"enabled": True, "dim": 32}}).eval()
    assert (model.num_joints, model.input_size, model.heatmap_size) == (k, (64, 96), (16, 24))
    with torch.no_grad():
        out = model(torch.randn(3, 3, 96, 64))
    assert out["multi_heatmaps"].shape == out["heatmaps"].shape == (3, k, 24, 16)
    assert out["coords_init"].shape == (3, k, 2)
    assert len(out["coords"]) == 2 and all(c.shape == (3, k, 2) for c in out["coords"])
    assert out["visibility_logits"].shape == (3, k)
    # A fresh GCN starts from the initial pose (zero-initialised offsets), all in crop pixels.
    torch.testing.assert_close(out["coords"][-1], out["coords_init"])
    assert ((out["coords_init"] >= -0.5) & (out["coords_init"] <= 95.5)).all()


def test_dag_body_centre_reaches_the_channel_attention():
    model = build_model({"name": "dag_hrnet_small", "input_size": [64, 64]}).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        a = model(x)["heatmaps"]
        b = model(x, centers=torch.tensor([[5.0, 50.0]]))["heatmaps"]
    assert not torch.allclose(a, b)


def test_config_errors_name_the_key():
    with pytest.raises(ConfigError, match="model.colour"):
        build_model({"name": "dag_hrnet_small", "colour": "red"})
    with pytest.raises(ConfigError, match="model.gcn.hops"):
        build_model({"name": "dag_hrnet_small", "gcn": {"hops": 0}})
    with pytest.raises(ConfigError, match="unknown model"):
        build_model({"name": "resnet9000"})
    with pytest.raises(ConfigError, match="input_size"):
        build_model({"name": "hrnet_small", "input_size": [190, 256]})
    with pytest.raises(ConfigError, match="skeleton"):
        build_model({"name": "hrnet_small", "skeleton": "mpii"})


def test_every_model_config_file_builds(tmp_path):
    from posecore.models import available_configs, load_model_config

    names = available_configs()
    expected = {f"dag_hrnet_{v}_{ds}" for v in ("w32_256x192", "w48_384x288") for ds in ("coco", "crowdpose", "ochuman")}
    assert expected | {"dag_hrnet_small_256x192_coco"} <= set(names)
    for name in names:
        cfg = load_model_config(name)
        with torch.device("meta"):  # shapes only: building W48 for real would take seconds
            model = build_model(cfg)
        expected_k = 14 if "crowdpose" in name else 17
        assert model.num_joints == expected_k, name
        if name in expected:  # the paper reproductions reason with visibility; the CPU-sized DAG does not
            assert model.gcn.visibility is not None, name
        elif name.startswith("dag_hrnet_small"):
            assert model.gcn.visibility is None, name
        w, h = model.input_size
        assert f"{h}x{w}" in name, name
        assert np.isclose(w / h, 0.75)
