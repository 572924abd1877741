"""The CoupleGraph refiner: pairs from real annotations, synthetic initial poses, training and scoring."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from posecore.models import build_model
from posecore.models.couplegraph import CoupleGraph, box_iou
from posecore.weights import load_checkpoint
from train import commands
from train.datasets import open_annotations
from train.datasets.pairs import PairDataset, build_pairs, match_predictions, synthetic_initial
from train.evaluate import evaluate_keypoints, gt_as_results
from train.refiner import CoupleLoss, RefinerEvaluator, refine_results


@pytest.fixture
def mini(sample_paths):
    fmt, ann_file, img_dir = sample_paths("coco_mini")
    return open_annotations(fmt, ann_file, img_dir)


def test_pairs_are_the_overlapping_people_of_an_image(mini):
    pairs = build_pairs(mini, iou_threshold=0.3)
    want = 0
    by_image = {}
    for p in mini.people:
        by_image.setdefault(p.image_id, []).append(p)
    for people in by_image.values():
        boxes = np.asarray([[p.box[0], p.box[1], p.box[0] + p.box[2], p.box[1] + p.box[3]] for p in people])
        iou = box_iou(boxes, boxes)
        want += int((np.triu(iou, 1) >= 0.3).sum())
    assert len(pairs) == want > 0
    for pair in pairs:
        assert box_iou(pair.boxes[:1], pair.boxes[1:])[0, 0] >= 0.3
        ids = [p.ann_id for p in mini.people if p.image_id == pair.image_id]
        assert set(pair.ann_ids) <= set(ids)


def test_synthetic_initial_poses_make_the_errors_asked_for(mini):
    pair = build_pairs(mini)[0]
    sig = mini.skeleton.sigmas_array
    rng = np.random.default_rng(0)
    exact = synthetic_initial(pair.target, pair.boxes, sig, rng, noise=0.0, swap_prob=0.0, miss_prob=0.0)
    lab = pair.target[..., 2] > 0
    assert np.allclose(exact[..., :2][lab], pair.target[..., :2][lab]) and (exact[..., 2][lab] > 0.79).all()
    swapped = synthetic_initial(pair.target, pair.boxes, sig, rng, noise=0.0, swap_prob=1.0, miss_prob=0.0)
    both = lab[0] & lab[1]
    assert both.any()
    assert np.allclose(swapped[0, both, :2], pair.target[1, both, :2])
    assert np.allclose(swapped[1, both, :2], pair.target[0, both, :2])
    item = PairDataset([pair], sig)[0]
    assert item["keypoints"].shape == (2, 17, 3) and item["mask"].sum() == lab.sum()


def test_predictions_match_their_people(mini):
    matched = match_predictions(mini, gt_as_results(mini.raw), mini.skeleton.sigmas_array)
    assert set(matched) == {p.ann_id for p in mini.people}
    for p in mini.people:
        lab = p.keypoints[:, 2] > 0
        assert np.allclose(matched[p.ann_id][lab, :2], p.keypoints[lab, :2])


def test_couple_loss_is_zero_on_the_truth_and_ignores_unlabelled(mini):
    item = PairDataset(build_pairs(mini), mini.skeleton.sigmas_array)[0]
    batch = {k: torch.from_numpy(v)[None] for k, v in item.items()}
    truth = batch["target"].clone()
    assert float(CoupleLoss()(truth, batch).total) == 0.0
    truth[batch["mask"] == 0] += 50.0
    assert float(CoupleLoss()(truth, batch).total) == 0.0
    assert float(CoupleLoss()(truth + 3.0, batch).total) > 0.0


def test_an_untrained_refiner_changes_nothing(load_gt):
    gt = load_gt("coco")
    rng = np.random.default_rng(0)
    results = gt_as_results(gt)
    for r in results:
        kp = np.asarray(r["keypoints"]).reshape(-1, 3)
        kp[:, :2] += rng.normal(0, 4, (len(kp), 2))
        r["keypoints"] = kp.reshape(-1).tolist()
    model = build_model({"name": "couplegraph", "hidden": 16, "blocks": 1})  # the output layer starts at zero
    refined = refine_results(model, results, iou_threshold=0.1)
    assert all(np.allclose(a["keypoints"], b["keypoints"], atol=1e-3) for a, b in zip(refined, results))
    ev = RefinerEvaluator(gt, results, [0.079] * 17, "coco", 0.1, torch.device("cpu"), visibility_split=False)
    m = ev(model)
    assert m["AP"] == pytest.approx(m["initial.AP"], abs=1e-6)
    assert m["AP"] == pytest.approx(evaluate_keypoints(gt, results, [0.079] * 17, "coco", False)["AP"])


def test_fit_and_eval_a_couplegraph(tmp_path, cpu_config, tiny_overrides, load_gt, capsys):
    gt = load_gt("coco")
    preds = tmp_path / "val_predictions.json"
    results = gt_as_results(gt)
    for r, a in zip(results, [a for a in gt["annotations"] if a["num_keypoints"] > 0]):
        r["bbox"] = a["bbox"]
    preds.write_text(json.dumps(results))
    out = tmp_path / "couple"
    args = tiny_overrides(out, **{"model.config": "null", "model.params": "{name: couplegraph, hidden: 16, blocks: 1}",
                                  "refiner.val_predictions": str(preds), "solver.max_iters_per_epoch": 2,
                                  "solver.batch_size": 2, "data.train.max_people": "null", "data.val.max_people": "null"})
    state = commands.fit(cpu_config, args)
    assert (state.epoch, state.iteration) == (2, 4)
    assert "pairs of overlapping people" in capsys.readouterr().err
    row = state.history[-1]
    assert row["loss.lc"] > 0 and row["initial.AP"] == pytest.approx(1.0)
    assert isinstance(load_checkpoint(out / "last.pt")[0], CoupleGraph)  # what training wrote loads back
    printed: list[str] = []
    metrics = commands.evaluate(cpu_config, args, weights=out / "last.pt", out=printed.append, note=lambda s: None)
    assert metrics["initial.AP"] == pytest.approx(1.0) and 0.0 <= metrics["AP"] <= 1.0
    assert any(line.startswith("before refinement: AP 1.0000") for line in printed)


@pytest.mark.parametrize("fine_tune", [False, True])
def test_couplegraph_on_the_dag_trains_the_dag_only_when_fine_tuning(fine_tune):
    from train.refiner import DagPairNet

    torch.manual_seed(0)
    dag = build_model({"name": "dag_hrnet_small", "input_size": [64, 64]})
    couple = build_model({"name": "couplegraph", "feat_channels": dag.feature_channels, "hidden": 16, "blocks": 1})
    with torch.no_grad():  # as after a first step: a fresh output layer is zero and passes no gradient back
        couple.regressor.output.weight.normal_(0.0, 0.2)
    net = DagPairNet(dag, couple, fine_tune=fine_tune).train()
    assert dag.training == fine_tune  # a frozen DAG keeps its batch-norm statistics
    boxes = torch.tensor([[[0.0, 0.0, 60.0, 60.0], [20.0, 0.0, 80.0, 60.0]]])
    centers = (boxes[..., :2] + boxes[..., 2:]) / 2
    out = net(torch.randn(1, 2, 3, 64, 64), boxes, centers, torch.full((1, 2, 2), 75.0))
    assert out.shape == (1, 2, 17, 2)
    out.sum().backward()
    assert all(p.grad is not None for p in couple.parameters())
    dag_grads = [p.grad is not None and bool(p.grad.abs().sum() > 0) for p in dag.backbone.parameters()]
    assert any(dag_grads) == fine_tune
