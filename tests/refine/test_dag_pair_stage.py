"""The dag backend's pair stage: where its weights come from, the errors when they do not fit, and what it does."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from app.run.pipeline import PoseConfig, build_estimator, build_pair_stage
from posecore.errors import ConfigError, WeightsError
from posecore.models import build_model
from posecore.pair_stage import PairStage, pair_stage_extra
from posecore.types import Poses
from posecore.weights import save_checkpoint


def _couple(skeleton: str = "coco17", feat_channels: int = 16, seed: int = 0):
    torch.manual_seed(seed)
    net = build_model({"name": "couplegraph", "skeleton": skeleton, "feat_channels": feat_channels, "hidden": 16,
                       "blocks": 1})
    with torch.no_grad():  # a fresh CoupleGraph's output layer is zero: give it weights that move joints
        for p in net.parameters():
            p.normal_(0.0, 0.2)
    return net.eval()


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    d = tmp_path_factory.mktemp("pair_stage")
    torch.manual_seed(0)
    dag = build_model({"name": "dag_hrnet_small", "input_size": [64, 64]})
    assert dag.feature_channels > 0
    paths = {"dag": save_checkpoint(d / "dag.pt", dag),
             "dag_pair": save_checkpoint(d / "dag_pair.pt", dag, extra={"pair_stage": pair_stage_extra(
                 _couple(feat_channels=dag.feature_channels), 0.3)}),
             "pair": save_checkpoint(d / "pair.pt", _couple(feat_channels=dag.feature_channels), extra={
                 "iou_threshold": 0.25}),
             "pair_wrong_channels": save_checkpoint(d / "pair7.pt", _couple(feat_channels=7)),
             "pair_crowdpose": save_checkpoint(d / "pair_cp.pt", _couple("crowdpose14", dag.feature_channels)),
             "pair_coords_only": save_checkpoint(d / "pair0.pt", _couple(feat_channels=0)),
             "missing": d / "nothing_here.pt"}
    (d / "junk.pt").write_bytes(b"PK\x03\x04 not really a zip")
    paths["junk"] = d / "junk.pt"
    return paths


@pytest.fixture(scope="module")
def estimator(ckpts):
    return build_estimator(PoseConfig(backend="dag", weights=str(ckpts["dag"])), "cpu")


def _stage(ckpts, estimator, weights: str, pair: str | None = None, **kw):
    """The pair stage of a DAG run of ``weights``: the shared ``estimator`` is the "dag" checkpoint's, so
    for another DAG checkpoint the estimator is that one's, as a run builds it."""
    cfg = PoseConfig(backend="dag", weights=str(ckpts[weights]), pair_weights=None if pair is None else str(ckpts[pair]),
                     **kw)
    if weights != "dag":
        estimator = build_estimator(cfg, "cpu")
    return build_pair_stage(cfg, estimator)


def test_pair_stage_from_inside_the_dag_checkpoint(ckpts, estimator):
    stage = _stage(ckpts, estimator, "dag_pair")
    assert isinstance(stage, PairStage) and stage.iou_threshold == 0.3 and stage.feat_channels == 16
    want = _couple(feat_channels=16).state_dict()
    assert all(torch.equal(v, want[k]) for k, v in stage.net.state_dict().items())


def test_pair_weights_setting_wins_over_the_stage_inside(ckpts, estimator):
    stage = _stage(ckpts, estimator, "dag_pair", pair="pair")
    assert stage.iou_threshold == 0.25  # the file given by pose.pair_weights, not the DAG's own
    assert _stage(ckpts, estimator, "dag", pair="dag_pair").iou_threshold == 0.3  # a DAG checkpoint holding one also works
    assert _stage(ckpts, estimator, "dag", pair="pair_coords_only").feat_channels == 0  # coordinates only: fits any DAG


def test_a_dag_without_pair_stage_runs_alone_and_says_so_once(ckpts, estimator, caplog):
    with caplog.at_level(logging.INFO, logger="occlupose.pipeline"):
        assert _stage(ckpts, estimator, "dag") is None
    lines = [r.getMessage() for r in caplog.records if "DAG runs alone" in r.getMessage()]
    assert len(lines) == 1 and "pair_weights" in lines[0]
    with pytest.raises(ConfigError, match="holds no pair stage"):
        _stage(ckpts, estimator, "dag", refine="on")
    assert _stage(ckpts, estimator, "dag_pair", refine="off") is None


@pytest.mark.parametrize("pair, needle", [
    ("missing", "not found"),
    ("junk", "corrupt"),
    ("pair_wrong_channels", "reads 7 feature channels, the DAG's feature map has 16"),
    ("pair_crowdpose", "skeleton crowdpose14"),
    ("dag", "not a CoupleGraph pair stage"),
])
def test_pair_weights_that_cannot_serve_are_one_clear_error(ckpts, estimator, pair, needle):
    with pytest.raises(WeightsError, match=needle) as e:
        _stage(ckpts, estimator, "dag", pair=pair)
    assert "\n" not in str(e.value)


def test_pair_weights_need_the_dag_backend(ckpts):
    cfg = PoseConfig(backend="yolo", pair_weights=str(ckpts["pair"]))
    with pytest.raises(ConfigError, match="only for the dag backend"):
        build_pair_stage(cfg, None)


def test_refine_moves_paired_people_only_and_swaps_with_them():
    stage = PairStage(_couple(feat_channels=4), iou_threshold=0.3)
    boxes = np.array([[0, 0, 100, 200], [30, 0, 130, 200], [400, 0, 500, 200]], np.float32)  # 0-1 overlap
    rng = np.random.default_rng(0)
    kp = np.concatenate([rng.uniform(0, 130, (3, 17, 2)), rng.uniform(0.2, 1, (3, 17, 1))], -1).astype(np.float32)
    kp[2, :, 0] += 400
    feats = rng.standard_normal((3, 17, 4)).astype(np.float32)
    poses = Poses(boxes, np.ones(3), kp)
    out = stage.refine(np.zeros((8, 8, 3), np.uint8), poses, feats)
    assert stage.pairs_last == 1
    assert np.abs(out.keypoints[:2, :, :2] - kp[:2, :, :2]).max() > 0.1  # the pair moved
    np.testing.assert_array_equal(out.keypoints[2], kp[2])  # the lone person did not
    np.testing.assert_array_equal(out.keypoints[..., 2], kp[..., 2])  # confidences kept
    order = [1, 0, 2]
    swapped = stage.refine(np.zeros((8, 8, 3), np.uint8), Poses(boxes[order], np.ones(3), kp[order]), feats[order])
    np.testing.assert_allclose(swapped.keypoints[order], out.keypoints, atol=1e-3)
    with pytest.raises(ValueError, match="reads 4 feature channels"):
        stage.refine(np.zeros((8, 8, 3), np.uint8), poses, None)


def test_process_with_missing_pair_weights_is_one_line_and_a_failure(ckpts, demo_clip, tmp_path, capsys):
    from app.cli import main

    code = main(["process", str(demo_clip), "-o", str(tmp_path / "out"), "--pose", "dag", "--weights",
                 str(ckpts["dag"]), "--pair-weights", str(ckpts["missing"]), "--max-frames", "1", "--no-video", "-q",
                 "--runtime", "torch", "--device", "cpu"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1 and "not found" in err[0] and "nothing_here.pt" in err[0]
