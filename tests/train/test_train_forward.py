"""What the trainer feeds a pose model: the visibility mask before and after its warm-up, and ADAM's body centre."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from posecore.codecs.grid import normalized_to_input
from posecore.errors import ConfigError
from posecore.models import build_model
from train.build import PoseForward, pose_forward
from train.config import TrainConfig
from train.trainer import TrainState
from train.transforms.targets import body_center


def _dag(visibility: bool = True):
    torch.manual_seed(0)
    return build_model({"name": "dag_hrnet_small", "input_size": [64, 64],
                        "visibility": {"enabled": visibility, "dim": 32}}).eval()


def _at_epoch(forward: PoseForward, epoch: int) -> PoseForward:
    forward.trainer = SimpleNamespace(state=TrainState(epoch=epoch))
    forward.before_epoch()
    return forward


def _record_visibility(model) -> list[dict]:
    """Every call of the visibility reasoning: its joint features, the mask it was given, its logits and the
    masked features that enter its transformer."""
    calls: list[dict] = []
    vis = model.gcn.visibility
    vis.register_forward_pre_hook(lambda m, args: calls.append({"feats": args[0], "visible": args[1]}))
    vis.proj.register_forward_pre_hook(lambda m, args: calls[-1].update(masked=args[0]))
    vis.register_forward_hook(lambda m, args, out: calls[-1].update(logits=out[1]))
    return calls


def test_visibility_mask_is_the_ground_truth_during_the_warm_up_then_the_prediction():
    model = _dag()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        first_logits = model(x)["visibility_logits"]
    calls = _record_visibility(model)
    # Labels that contradict VisNet's first-stage guess on every joint, so the two masks cannot agree.
    flags = torch.where(first_logits >= 0, 1.0, 2.0)
    flags[0, 0] = 0.0  # an unlabelled joint is masked like an occluded one
    batch = {"image": x, "flags": flags}
    forward = PoseForward(teacher_epochs=2)

    with torch.no_grad():
        _at_epoch(forward, 1)(model, batch)
    gt_mask = torch.where(flags == 2, 1.0, 0.01)
    assert len(calls) == 2  # one per GCN stage
    for c in calls:
        torch.testing.assert_close(c["visible"], (flags == 2).float())
        torch.testing.assert_close(c["masked"], c["feats"] * gt_mask[..., None])

    calls.clear()
    with torch.no_grad():
        _at_epoch(forward, 2)(model, batch)
    for c in calls:
        assert c["visible"] is None
        predicted = torch.where(torch.sigmoid(c["logits"]) >= 0.5, 1.0, 0.01)
        torch.testing.assert_close(c["masked"], c["feats"] * predicted[..., None])
    first_stage = torch.where(torch.sigmoid(calls[0]["logits"]) >= 0.5, 1.0, 0.01)
    assert (first_stage != gt_mask)[flags > 0].all()  # so the check above could tell the masks apart


def test_no_warm_up_means_the_prediction_from_the_first_step():
    model = _dag()
    calls = _record_visibility(model)
    with torch.no_grad():
        _at_epoch(PoseForward(teacher_epochs=0), 0)(model, {"image": torch.randn(1, 3, 64, 64),
                                                            "flags": torch.full((1, 17), 2.0)})
    assert calls and all(c["visible"] is None for c in calls)


def test_body_centre_is_the_mean_of_the_visible_joints_else_the_box_centre():
    joints = np.array([[10, 10], [20, 30], [30, 20], [100, 100], [0, 0]], np.float32)
    flags = np.array([2, 2, 2, 1, 0], np.float32)  # occluded and unlabelled joints do not count
    box = np.array([0, 0, 40, 80], np.float32)
    np.testing.assert_allclose(body_center(joints, flags, box, min_visible=3), [20, 20])
    np.testing.assert_allclose(body_center(joints, flags, box, min_visible=4), [20, 40])


def test_body_centre_reaches_adam_and_moves_its_output():
    model = _dag(visibility=False)
    seen = []
    model.adam.channel.register_forward_pre_hook(lambda m, args: seen.append(args[1]))
    x = torch.randn(1, 3, 64, 64)
    centre = torch.tensor([[12.0, 40.0]])
    batch = {"image": x, "flags": torch.zeros(1, 17), "body_center": centre}
    with torch.no_grad():
        at_joints = PoseForward(0, centers=True)(model, batch)
        moved = PoseForward(0, centers=True)(model, {**batch, "body_center": torch.tensor([[40.0, 12.0]])})
        at_box = PoseForward(0, centers=False)(model, batch)
        at_crop_centre = PoseForward(0, centers=True)(model, {**batch, "body_center": torch.tensor([[31.5, 31.5]])})
    # ADAM gets the centre where it was given (in its grid_sample coordinates), and none without the setting.
    torch.testing.assert_close(normalized_to_input(seen[0], (64, 64)), centre)
    assert seen[2] is None
    assert not torch.allclose(at_joints["heatmaps"], moved["heatmaps"])
    # Without a centre ADAM reads at the crop centre, pixel (31.5, 31.5) of a 64 x 64 crop.
    torch.testing.assert_close(at_crop_centre["heatmaps"], at_box["heatmaps"])


def test_body_centre_setting_needs_a_model_with_adam():
    cfg = TrainConfig()
    cfg.model.body_center.source = "visible_joints"
    with pytest.raises(ConfigError, match="model.body_center.source"):
        pose_forward(cfg, build_model({"name": "hrnet_small", "input_size": [64, 64]}))
    forward = pose_forward(cfg, _dag())
    assert forward.centers and forward.takes_visible and forward.teacher_epochs == cfg.solver.visibility_teacher_epochs
