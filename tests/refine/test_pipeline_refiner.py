"""The shipped refiner inside the real pipeline: `pose.refine` switches it, it receives the detector's
own neck features in both the serial and the overlapped path, and `auto` follows the measured decision."""

import numpy as np
import pytest

from app.run.pipeline import Pipeline, PipelineConfig
from posecore.assets import demo_clip
from posecore.io.sources import open_source
from posecore.refine import shipped_refiner_path
from posecore.weights import read_checkpoint

FRAMES = 6


def _pipeline(refine: str, workers: int) -> Pipeline:
    cfg = PipelineConfig()
    cfg.pose.refine = refine
    cfg.passes.flip = False  # the refiner runs on the single pass: the base to compare with is that pass
    cfg.workers = workers
    cfg.detector.device = "cpu"
    return Pipeline.from_config(cfg)


def _run(refine: str, workers: int):
    p = _pipeline(refine, workers)
    results = [r for _, r in zip(range(FRAMES), p.stream(open_source(str(demo_clip()))))]
    return p, results


@pytest.fixture(scope="module")
def base():
    return _run("off", 1)


@pytest.mark.parametrize("workers", [1, 2])
def test_refiner_gets_features_and_moves_joints(base, workers):
    p, results = _run("on", workers)
    assert p.refiner is not None and p.detector.captures_features
    seen_features = []
    original = p.refiner.refine

    def spy(frame, poses, features):
        seen_features.append(features)
        return original(frame, poses, features)

    p.refiner.refine = spy
    more = [r for _, r in zip(range(3), p.stream(open_source(str(demo_clip()))))]
    assert len(seen_features) == 3 and all(f is not None for f in seen_features)
    assert all(r.timings["refine"] > 0 for r in results)
    # same detections as the base pipeline, joints refined by a few pixels at most
    for r, b in zip(results, base[1]):
        np.testing.assert_allclose(r.poses.boxes, b.poses.boxes, atol=1e-3)
        shift = np.abs(r.poses.keypoints[..., :2] - b.poses.keypoints[..., :2])
        assert shift.max() < 0.1 * (b.poses.boxes[:, 3] - b.poses.boxes[:, 1]).max()
    assert any(np.abs(r.poses.keypoints[..., :2] - b.poses.keypoints[..., :2]).max() > 0.01
               for r, b in zip(results, base[1]))
    assert len(more) == 3


def test_auto_follows_the_measured_decision(base):
    decided = bool(read_checkpoint(shipped_refiner_path()).extra.get("enabled_by_default", False))
    p = _pipeline("auto", 1)  # built, not run: whether it has a refiner is the question
    assert (p.refiner is not None) == decided
    assert base[0].refiner is None and not base[0].detector.captures_features
