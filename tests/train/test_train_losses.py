"""The loss terms: what each one sees, what it ignores, and how the structure weight grows."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from posecore.skeleton import COCO17, CROWDPOSE14
from train.config import LossConfig, StructureLossConfig
from train.losses import (PoseLoss, joints_mse, limb_graph, masked_l1, structure_alpha, structure_heatmaps,
                          visibility_loss)


def test_joints_mse_ignores_zero_weight_joints():
    pred, target = torch.rand(2, 3, 8, 6), torch.rand(2, 3, 8, 6)
    w = torch.tensor([[1.0, 0.0, 1.0], [1.0, 1.0, 0.0]])
    moved = pred.clone()
    moved[0, 1] += 5.0
    moved[1, 2] -= 5.0
    assert joints_mse(moved, target, w) == pytest.approx(float(joints_mse(pred, target, w)))
    assert joints_mse(pred, target) == pytest.approx(0.5 * float(((pred - target) ** 2).mean()))


@pytest.mark.parametrize("skeleton", [COCO17, CROWDPOSE14])
def test_limb_graphs_are_the_two_chains(skeleton):
    joints, adj = limb_graph(skeleton)
    assert len(joints) == 12
    name = skeleton.joints
    neighbours = {name[j]: {name[k] for k in np.flatnonzero(row) if k != j} for j, row in zip(joints, adj)}
    assert neighbours["left_shoulder"] == {"left_elbow", "right_shoulder"}
    assert neighbours["right_wrist"] == {"right_elbow"}
    assert neighbours["left_hip"] == {"left_knee", "right_hip"}
    assert neighbours["right_ankle"] == {"right_knee"}
    assert all(adj[r, j] == 1 for r, j in enumerate(joints))  # each row includes the joint itself


def test_structure_heatmap_is_the_sum_over_neighbours():
    joints, adj = limb_graph(COCO17)
    hm = torch.rand(1, 17, 4, 3)
    w = torch.ones(1, 17)
    s = structure_heatmaps(hm, w, torch.from_numpy(adj))
    ls = COCO17.index("left_shoulder")
    row = list(joints).index(ls)
    want = hm[0, ls] + hm[0, COCO17.index("left_elbow")] + hm[0, COCO17.index("right_shoulder")]
    assert torch.allclose(s[0, row], want)
    w[0, COCO17.index("left_elbow")] = 0  # an unlabelled neighbour adds nothing
    s2 = structure_heatmaps(hm, w, torch.from_numpy(adj))
    assert torch.allclose(s2[0, row], want - hm[0, COCO17.index("left_elbow")])


def test_structure_weight_schemes():
    def alphas(scheme):
        cfg = StructureLossConfig(enabled=True, scheme=scheme, weight=2.0, start=0.4)
        return [structure_alpha(cfg, t) for t in np.linspace(0, 1, 11)]

    assert alphas("constant") == [2.0] * 11
    step = alphas("step")
    assert step[:4] == [0.0] * 4 and step[4:] == [2.0] * 7
    lin = alphas("linear")
    assert lin[0] == 0.0 and lin[-1] == pytest.approx(2.0) and lin[5] == pytest.approx(1.0)
    exp = alphas("exponential")
    assert all(b >= a for a, b in zip(exp, exp[1:])) and exp[-1] == pytest.approx(2.0) and exp[0] < 0.02
    assert exp[5] < lin[5]  # a slower start than linear
    assert structure_alpha(StructureLossConfig(enabled=False), 1.0) == 0.0


def test_masked_l1_counts_only_labelled_joints():
    target = torch.zeros(1, 3, 2)
    pred = torch.tensor([[[2.0, 4.0], [100.0, 100.0], [0.0, 0.0]]])
    mask = torch.tensor([[1.0, 0.0, 1.0]])
    size = torch.tensor([4.0, 8.0])
    # joint 0: |2|/4 + |4|/8 = 1.0; joint 2: 0; averaged over 2 joints x 2 coordinates
    assert masked_l1(pred, target, mask, size) == pytest.approx(0.25)


def fake_output(b=2, k=17, h=16, w=12, stages=2, visibility=True):
    out = {"heatmaps": torch.rand(b, k, h, w, requires_grad=True),
           "multi_heatmaps": torch.rand(b, k, h, w, requires_grad=True),
           "coords_init": (torch.rand(b, k, 2) * 40).requires_grad_(),
           "coords": [(torch.rand(b, k, 2) * 40).requires_grad_() for _ in range(stages)]}
    if visibility:
        out["visibility_logits"] = torch.randn(b, k, requires_grad=True)
    return out


def fake_batch(b=2, k=17, h=16, w=12):
    flags = torch.randint(0, 3, (b, k)).float()
    return {"target_heatmaps": torch.rand(b, k, h, w), "multi_heatmaps": torch.rand(b, k, h, w),
            "target_weight": (flags > 0).float(), "joints": torch.rand(b, k, 2) * 40, "flags": flags}


def test_total_is_the_weighted_sum_and_every_output_gets_a_gradient():
    cfg = LossConfig(multi_weight=0.5, target_weight=2.0, pose_weight=0.1, visibility_weight=0.3,
                     structure=StructureLossConfig(enabled=True, scheme="linear", weight=1.0))
    loss = PoseLoss(cfg, COCO17, (48, 64))
    out, batch = fake_output(), fake_batch()
    res = loss(out, batch, progress=0.5)
    p = res.parts
    want = 0.5 * p["lm"] + 2.0 * p["lt"] + 0.1 * p["lp"] + 0.5 * p["ls"] + 0.3 * p["lvis"]
    assert float(res.total.detach()) == pytest.approx(float(want.detach()), rel=1e-6)
    res.total.backward()
    for key in ("heatmaps", "multi_heatmaps", "coords_init", "visibility_logits"):
        assert out[key].grad is not None and out[key].grad.abs().sum() > 0
    assert all(c.grad is not None for c in out["coords"])


def test_plain_heatmap_model_gets_only_the_heatmap_terms():
    loss = PoseLoss(LossConfig(), COCO17, (48, 64))
    res = loss({"heatmaps": torch.rand(2, 17, 16, 12)}, fake_batch())
    assert set(res.parts) == {"lt"}


def test_occluded_weight_scales_occluded_joints():
    batch = fake_batch()
    batch["flags"][:] = 1
    batch["target_weight"][:] = 1
    loss = PoseLoss(LossConfig(occluded_weight=0.0), COCO17, (48, 64))
    assert float(loss.joint_weight(batch).sum()) == 0.0


def test_too_few_stage_weights_is_a_config_error():
    loss = PoseLoss(LossConfig(pose_stage_weights=[1.0]), COCO17, (48, 64))
    with pytest.raises(Exception, match="pose_stage_weights"):
        loss(fake_output(stages=3), fake_batch())


def test_visibility_loss_leaves_unlabelled_joints_out():
    flags = torch.tensor([[2.0, 1.0, 0.0, 2.0]])
    logits = torch.tensor([[1.0, -0.5, 0.3, 2.0]])
    base = float(visibility_loss(logits, flags))
    moved_unlabelled = logits.clone()
    moved_unlabelled[0, 2] = -7.0
    assert float(visibility_loss(moved_unlabelled, flags)) == pytest.approx(base, abs=0)
    moved_occluded = logits.clone()
    moved_occluded[0, 1] = 3.0  # an occluded (v = 1) joint now predicted visible: the loss grows
    assert float(visibility_loss(moved_occluded, flags)) > base + 0.5
    # The mean is over the three labelled joints: v = 2 -> label 1, v = 1 -> label 0.
    want = sum(float(F.binary_cross_entropy_with_logits(torch.tensor(x), torch.tensor(y)))
               for x, y in ((1.0, 1.0), (-0.5, 0.0), (2.0, 1.0))) / 3
    assert base == pytest.approx(want, rel=1e-6)


def test_visibility_loss_of_a_crop_without_labels_is_zero_not_nan():
    logits = torch.randn(2, 5, requires_grad=True)
    loss = visibility_loss(logits, torch.zeros(2, 5))
    loss.backward()
    assert float(loss.detach()) == 0.0 and logits.grad.abs().max() == 0
