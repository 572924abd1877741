"""The YOLO-feature refiner at run time: contract, pairing, features, training signal, shipped weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from posecore.errors import ConfigError, WeightsError
from posecore.models import build_model
from posecore.models.yolo_refiner import YoloRefinerNet
from posecore.refine import YoloRefiner, build_default_refiner, shipped_refiner_path
from posecore.types import Poses
from posecore.weights import read_checkpoint, save_checkpoint
from posecore.yolo_features import YoloFeatures
from tests.refine.scenes import three_people

FRAME = np.zeros((480, 800, 3), np.uint8)
CHANNELS = (64, 128, 256)


def _features(seed: int = 0) -> YoloFeatures:
    g = torch.Generator().manual_seed(seed)
    maps = tuple(torch.randn(1, c, 480 // s, 800 // s, generator=g) for c, s in zip(CHANNELS, (8, 16, 32)))
    return YoloFeatures(maps, (480, 800))


def _poses() -> Poses:
    return three_people(130)


def _net(couple: bool = True) -> YoloRefinerNet:
    return build_model({"name": "yolo_refiner", "feat_dim": 8,
                        "couple": {"hidden": 32, "blocks": 1} if couple else None})


def _perturb(module: torch.nn.Module, seed: int = 3) -> None:
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn_like(p) * 0.05)


def test_a_fresh_refiner_returns_the_base_poses():
    poses = _poses()
    out = YoloRefiner(_net()).refine(FRAME, poses, _features())
    np.testing.assert_allclose(out.keypoints, poses.keypoints, atol=1e-3)
    assert np.array_equal(out.seen, poses.seen) and np.array_equal(out.boxes, poses.boxes)


def test_refined_joints_move_and_everything_else_is_kept():
    net = _net()
    _perturb(net)
    poses = _poses()
    out = YoloRefiner(net).refine(FRAME, poses, _features())
    assert np.abs(out.keypoints[..., :2] - poses.keypoints[..., :2]).max() > 0.5
    np.testing.assert_array_equal(out.keypoints[..., 2], poses.keypoints[..., 2])
    np.testing.assert_array_equal(out.scores, poses.scores)
    assert np.array_equal(out.seen, poses.seen)


def test_the_features_read_at_the_joints_change_the_result():
    net = _net()
    _perturb(net)
    refiner, poses = YoloRefiner(net), _poses()
    a = refiner.refine(FRAME, poses, _features(0)).keypoints
    b = refiner.refine(FRAME, poses, _features(1)).keypoints
    assert np.abs(a - b).max() > 1e-3


def test_couplegraph_results_go_to_the_overlapping_people_only():
    """With the per-person stages left at identity, only the CoupleGraph moves joints: people 0 and 1."""
    net = _net()
    _perturb(net.couple)
    poses = _poses()
    out = YoloRefiner(net, iou_threshold=0.3).refine(FRAME, poses, _features())
    moved = np.abs(out.keypoints - poses.keypoints)[..., :2].max((1, 2))
    assert moved[0] > 0.1 and moved[1] > 0.1 and moved[2] < 1e-3


def test_a_person_in_several_pairs_keeps_its_highest_iou_pair():
    pairs = np.array([[0, 1], [0, 2]])
    ious = np.array([0.4, 0.6], np.float32)
    stages = [torch.zeros(3, 17, 2)]
    couple = torch.stack([torch.full((2, 17, 2), 1.0), torch.full((2, 17, 2), 2.0)])
    couple[1, 1] = 3.0
    final = YoloRefinerNet.assemble({"stages": stages, "couple": couple}, pairs, ious)
    assert final[0, 0, 0] == 2.0 and final[1, 0, 0] == 1.0 and final[2, 0, 0] == 3.0


def test_refine_needs_this_frames_features_with_the_right_channels():
    refiner = YoloRefiner(_net())
    with pytest.raises(ValueError, match="neck maps"):
        refiner.refine(FRAME, _poses(), None)
    wrong = YoloFeatures(tuple(torch.zeros(1, 8, 10, 10) for _ in range(3)), (80, 80))
    with pytest.raises(ValueError, match="channels"):
        refiner.refine(FRAME, _poses(), wrong)
    assert len(refiner.refine(FRAME, Poses.empty(), None)) == 0  # nobody: nothing to read


def test_training_steps_reach_every_part_and_lower_the_error():
    """Forward/backward with features: a few steps on a fixed batch move the projection, the GCN stages
    and the CoupleGraph, and bring the joints closer to their targets."""
    torch.manual_seed(0)
    net = _net()
    net.train()
    poses = _poses()
    kp = torch.from_numpy(poses.keypoints)
    boxes = torch.from_numpy(poses.boxes)
    features = _features()
    feats = features.sample(poses.keypoints[..., :2], FRAME.shape[:2])
    grid, step = features.sample_grid(poses.keypoints[..., :2], FRAME.shape[:2], net.radius, net.grid_step)
    step = torch.full((3,), step)
    target = kp[..., :2] + torch.randn(3, 17, 2) * 5
    pairs = torch.tensor([[0, 1]])
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)

    def loss_of(out):
        couple = (out["couple"] - target[pairs]).abs().mean()
        local = (out["local"] - target).abs().mean()
        return local + sum((s - target).abs().mean() for s in out["stages"]) + couple

    first = float(loss_of(net(kp, boxes, feats, grid, step, pairs)).detach())
    for _ in range(60):
        loss = loss_of(net(kp, boxes, feats, grid, step, pairs))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss_of(net(kp, boxes, feats, grid, step, pairs)).detach()) < 0.8 * first
    changed = {n.split(".")[0] for n, p in net.named_parameters() if not torch.equal(p, before[n])}
    assert {"local", "proj", "fgmh", "couple"} <= changed


def test_the_local_step_moves_a_joint_to_the_grid_point_its_scores_pick():
    """Soft-argmax over the window: a grid point that scores far above the others takes the joint there,
    at that point's offset times the step in image pixels."""
    from posecore.models.yolo_refiner import LocalStep

    local = LocalStep(num_joints=17, channels=4, radius=2, hidden=4)
    with torch.no_grad():
        local.embed[0].weight.copy_(torch.eye(4))
        local.embed[0].bias.zero_()
        local.score[3, 0] = 50.0  # joint 3 reacts to channel 0
    grid = torch.zeros(2, 17, 25, 4)
    grid[:, 3, 7, 0] = 1.0  # grid point 7: row 1, column 2, i.e. one step up (dx = 0, dy = -1)
    offset, peak = local(grid, torch.tensor([2.0, 3.0]))
    torch.testing.assert_close(offset[:, 3], torch.tensor([[0.0, -2.0], [0.0, -3.0]]), atol=1e-4, rtol=0)
    assert torch.all(offset[:, [0, 1, 2, 4]].abs() < 1e-6) and peak[0, 3] > 0.99 and peak[0, 0] < 0.05


def test_saved_refiner_loads_back_with_its_settings(tmp_path):
    net = _net()
    _perturb(net)
    path = save_checkpoint(tmp_path / "r.pt", net, extra={"iou_threshold": 0.5, "enabled_by_default": False})
    back = YoloRefiner.from_checkpoint(path)
    assert back.iou_threshold == 0.5 and back.info["enabled_by_default"] is False
    poses = _poses()
    np.testing.assert_allclose(back.refine(FRAME, poses, _features()).keypoints,
                               YoloRefiner(net, 0.5).refine(FRAME, poses, _features()).keypoints, atol=1e-5)


# -- the shipped weights ---------------------------------------------------------------------------------------
def test_shipped_weights_are_small_safe_and_documented():
    path = shipped_refiner_path()
    assert path.is_file(), "the package ships the refiner's weights"
    assert path.stat().st_size < 20e6
    torch.load(path, map_location="cpu", weights_only=True)  # no code in the file
    ckpt = read_checkpoint(path)
    assert ckpt.config["name"] == "yolo_refiner"
    extra = ckpt.extra
    assert isinstance(extra["enabled_by_default"], bool) and extra["decision"]
    coco = extra["heldout"]["coco"]
    for which in ("base", "refined"):
        assert all(isinstance(coco[which][k], float) for k in ("AP", "occluded.AP", "visible.AP"))
    # The recorded decision is the rule applied to the recorded numbers.
    rule = coco["refined"]["occluded.AP"] > coco["base"]["occluded.AP"] and coco["refined"]["AP"] >= coco["base"]["AP"]
    assert extra["enabled_by_default"] == rule
    assert (path.parent / "NOTICE.md").is_file()


@pytest.fixture(scope="module")
def detector():
    from posecore.detector import Detector

    return Detector(device="cpu")


def test_default_refiner_follows_the_mode_and_the_measured_decision(detector):
    assert build_default_refiner(detector, "off") is None and not detector.captures_features
    on = build_default_refiner(detector, "on")
    assert isinstance(on, YoloRefiner) and on.in_channels == CHANNELS == detector.neck_channels
    assert detector.captures_features  # the neck maps now come with each detection
    auto = build_default_refiner(detector, "auto")
    assert (auto is not None) == read_checkpoint(shipped_refiner_path()).extra["enabled_by_default"]


def test_refine_on_says_why_it_cannot_run(detector, tmp_path):
    """``pose.refine: on`` is never a silent no-op: missing weights or weights for another neck are errors;
    ``auto`` then stays off."""
    with pytest.raises(WeightsError, match="refiner weights not found"):
        build_default_refiner(detector, "on", weights=tmp_path / "missing.pt")
    net = build_model({"name": "yolo_refiner", "in_channels": [32, 64, 128], "couple": None})
    path = save_checkpoint(tmp_path / "other.pt", net, extra={"enabled_by_default": True})
    with pytest.raises(ConfigError, match=r"reads neck maps of \(32, 64, 128\) channels"):
        build_default_refiner(detector, "on", weights=path)
    assert build_default_refiner(detector, "auto", weights=path) is None


def test_refine_on_needs_a_pose_detector(detector, monkeypatch):
    monkeypatch.setattr(detector, "task", "detect")
    with pytest.raises(ConfigError, match="pose model"):
        build_default_refiner(detector, "on")
    assert build_default_refiner(detector, "auto") is None


def test_the_refiner_runs_on_the_detectors_device(detector, monkeypatch):
    # "meta" exists on every machine and is not the CPU: the refiner must follow the detector there
    # (CUDA when the detector is on CUDA), not stay on the CPU.
    monkeypatch.setattr(detector, "device", torch.device("meta"))
    refiner = build_default_refiner(detector, "on")
    assert refiner.device == torch.device("meta")
    assert next(refiner.net.parameters()).device.type == "meta"
