"""Starting weights and the learning-rate schedule."""

from __future__ import annotations

import pytest
import torch

from posecore.errors import ConfigError
from posecore.models import build_model
from posecore.skeleton import COCO17, CROWDPOSE14
from posecore.weights import save_checkpoint
from train.build import build_net, lr_factor
from train.config import ModelSection, ScheduleConfig


def test_imagenet_style_backbone_weights_load_by_name(tmp_path):
    source = build_model({"name": "hrnet_small", "input_size": [64, 64]})
    bare = {f"module.{k}": v for k, v in source.backbone.state_dict().items()}  # as a DataParallel run saves
    bare["classifier.weight"] = torch.zeros(1000, 16)  # an ImageNet head the pose model does not have
    path = tmp_path / "hrnet_small-imagenet.pth"
    torch.save({"state_dict": bare}, path)
    model = build_net(ModelSection(params={"name": "dag_hrnet_small", "input_size": [64, 64]},
                                   backbone_weights=path), COCO17)
    for k, v in source.backbone.state_dict().items():
        assert torch.equal(model.backbone.state_dict()[k], v), k


def test_backbone_weights_that_fit_nothing_or_run_code_are_refused(tmp_path):
    junk = tmp_path / "junk.pth"
    torch.save({"x": torch.zeros(3)}, junk)
    section = ModelSection(params={"name": "dag_hrnet_small", "input_size": [64, 64]}, backbone_weights=junk)
    with pytest.raises(ConfigError, match="no tensor"):
        build_net(section, COCO17)
    evil = tmp_path / "evil.pth"
    torch.save({"state_dict": {"conv1.weight": torch.zeros(1)}, "hook": ConfigError("x")}, evil)
    with pytest.raises(ConfigError, match="cannot read"):
        build_net(ModelSection(params=section.params, backbone_weights=evil), COCO17)


def test_init_weights_from_another_skeleton_keep_the_shared_layers(tmp_path):
    coco = build_model({"name": "dag_hrnet_small", "input_size": [64, 64]})
    ckpt = save_checkpoint(tmp_path / "coco.pt", coco)
    crowd = build_net(ModelSection(params={"name": "dag_hrnet_small", "input_size": [64, 64]}, init_weights=ckpt),
                      CROWDPOSE14)
    assert torch.equal(crowd.backbone.conv1.weight, coco.backbone.conv1.weight)
    assert crowd.target_head.conv.weight.shape[0] == 14  # the 17-joint head was not forced in


def test_learning_rate_schedules():
    step = ScheduleConfig(name="step", milestones=[2, 4], gamma=0.1, warmup_iters=10, warmup_factor=0.001)
    assert lr_factor(step, 0, 10, 6) == pytest.approx(0.001)
    assert lr_factor(step, 5, 10, 6) == pytest.approx(0.5005)
    assert lr_factor(step, 10, 10, 6) == 1.0 and lr_factor(step, 19, 10, 6) == 1.0
    assert lr_factor(step, 20, 10, 6) == pytest.approx(0.1) and lr_factor(step, 45, 10, 6) == pytest.approx(0.01)
    cos = ScheduleConfig(name="cosine", warmup_iters=0, min_lr_ratio=0.1)
    values = [lr_factor(cos, i, 10, 5) for i in range(0, 51, 5)]
    assert values[0] == 1.0 and values[-1] == pytest.approx(0.1) and values[5] == pytest.approx(0.55)
    assert all(b <= a for a, b in zip(values, values[1:]))
