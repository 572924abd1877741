import numpy as np
import pytest
import torch

from posecore.errors import ConfigError
from posecore.models import build_model
from posecore.refine import Refiner, RefinerConfig
from posecore.weights import save_checkpoint
from tests.refine.scenes import three_people


def _poses():
    return three_people(140)


def _perturbed(model):
    torch.manual_seed(3)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return model


FRAME = np.zeros((480, 800, 3), np.uint8)


def test_fresh_refiners_keep_the_poses_exactly():
    """Zero-initialised offsets: any change would come from the coordinate mappings."""
    poses = _poses()
    features = torch.randn(8, 60, 100)
    refiner = Refiner(build_model({"name": "fgmh_gcn", "feat_channels": 8}),
                      build_model({"name": "couplegraph", "feat_channels": 8}))
    out = refiner.refine(FRAME, poses, features)
    np.testing.assert_allclose(out.keypoints, poses.keypoints, atol=1e-3)
    assert np.array_equal(out.seen, poses.seen) and out.skeleton == poses.skeleton


def test_couplegraph_moves_only_the_overlapping_people():
    poses = _poses()
    refiner = Refiner(couple=_perturbed(build_model({"name": "couplegraph"})), cfg=RefinerConfig(iou_threshold=0.3))
    out = refiner.refine(FRAME, poses)
    moved = np.abs(out.keypoints - poses.keypoints)[..., :2].max((1, 2))
    assert moved[0] > 0.1 and moved[1] > 0.1 and moved[2] == 0  # person 2 overlaps nobody
    np.testing.assert_array_equal(out.keypoints[..., 2], poses.keypoints[..., 2])


def test_fgmh_gcn_with_features_and_from_checkpoints(tmp_path):
    fgmh = _perturbed(build_model({"name": "fgmh_gcn", "feat_channels": 4, "visibility": {"enabled": True, "dim": 16}}))
    path = save_checkpoint(tmp_path / "fgmh.pt", fgmh)
    refiner = Refiner.from_checkpoints(fgmh=path, device="cpu")
    poses = _poses()
    out = refiner.refine(FRAME, poses, np.random.default_rng(0).normal(size=(4, 30, 50)).astype(np.float32))
    assert np.isfinite(out.keypoints).all() and not np.allclose(out.keypoints, poses.keypoints)
    with pytest.raises(ValueError, match="features"):
        refiner.refine(FRAME, poses)
    with pytest.raises(ConfigError, match="not a CoupleGraph"):
        Refiner.from_checkpoints(couple=path)
    with pytest.raises(ConfigError):
        Refiner()
