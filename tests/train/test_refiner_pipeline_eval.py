"""``fit`` with ``distill:`` and ``eval-pipeline``: a tiny end-to-end run on real images, and the comparison."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch
import yaml

from posecore.models import build_model
from posecore.refine import YoloRefiner
from posecore.weights import read_checkpoint
from tests.conftest import shared_path
from train.distill import base_detector
from train.config import DistillConfig, HeldOutSplit
from train.pipeline_eval import decide, load_heldout, score_set


@pytest.fixture(scope="module")
def base():
    return base_detector(DistillConfig(student_imgsz=320))


def _heldout() -> list[HeldOutSplit]:
    return [HeldOutSplit(name="coco", format="coco", ann_file=shared_path("coco_sample", "test_coco.json"),
                         img_dir=shared_path("coco_sample"), images=[785, 40083]),
            HeldOutSplit(name="crowdpose", format="crowdpose",
                         ann_file=shared_path("crowdpose_sample", "test_crowdpose.json"),
                         img_dir=shared_path("crowdpose_sample"))]


def test_the_evaluations_base_is_the_pipelines_detector(base):
    """eval-pipeline scores exactly what the pipeline's detector and yolo backend produce."""
    from posecore.detector import Detector

    frame = cv2.imread(str(shared_path("coco_sample", "000000197388.jpg")))
    ours = base.detect(frame)
    theirs = Detector(imgsz=320, device="cpu").detect(frame)
    assert len(ours) == len(theirs) > 0 and ours.features is not None and theirs.features is None
    np.testing.assert_allclose(ours.boxes, theirs.boxes, atol=0.05)
    np.testing.assert_allclose(ours.keypoints, theirs.keypoints, atol=0.05)


def test_an_untrained_refiner_scores_exactly_the_base_and_a_changed_one_does_not(base):
    sets = load_heldout(_heldout())
    assert [s.name for s in sets] == ["coco", "crowdpose"] and sets[1].kind == "crowdpose"
    fresh = YoloRefiner(build_model({"name": "yolo_refiner"}))
    scores = score_set(sets[0], base, fresh)
    assert scores["base"] == scores["refined"]
    assert 0 < scores["base"]["AP"] <= 1 and "occluded.AP" in scores["base"]
    net = build_model({"name": "yolo_refiner"})
    torch.manual_seed(0)
    with torch.no_grad():
        for p in net.fgmh.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    moved = score_set(sets[0], base, YoloRefiner(net))
    assert moved["refined"]["AP"] != moved["base"]["AP"]


def test_the_default_rule_needs_occluded_ap_up_and_ap_kept():
    def s(ap, occ):
        return {"AP": ap, "occluded.AP": occ}

    assert decide({"coco": {"base": s(0.5, 0.3), "refined": s(0.5, 0.31)}})[0]
    assert not decide({"coco": {"base": s(0.5, 0.3), "refined": s(0.49, 0.35)}})[0]
    assert not decide({"coco": {"base": s(0.5, 0.3), "refined": s(0.6, 0.3)}})[0]
    assert not decide({"ochuman": {"base": s(0.5, 0.3), "refined": s(0.6, 0.4)}})[0]


def test_fit_distils_ships_and_eval_pipeline_prints_the_table(tmp_path, capsys):
    from train.__main__ import main

    heldout = [{"name": h.name, "format": h.format, "ann_file": str(h.ann_file), "img_dir": str(h.img_dir),
                "images": h.images} for h in _heldout()]
    shipped = tmp_path / "shipped.pt"
    cfg = {
        "model": {"params": {"name": "yolo_refiner", "local_hidden": 8, "gcn": {"hidden": 16, "stages": 1},
                             "couple": {"hidden": 8, "blocks": 0}}},
        "distill": {"student_imgsz": 320, "teacher_imgsz": 416, "copies": 2,
                    "sources": [{"kind": "images", "path": str(shared_path("images_multi", "mmpose_mhp"))}],
                    "heldout": heldout, "ship_to": str(shipped)},
        "optim": {"name": "adamw", "lr": 0.005},
        "schedule": {"name": "cosine", "warmup_iters": 1},
        "solver": {"epochs": 2, "batch_size": 2, "device": "cpu", "progress": False},
        "output_dir": str(tmp_path / "run"),
    }
    config = tmp_path / "refiner.yaml"
    config.write_text(yaml.safe_dump(cfg))
    assert main(["fit", "--config", str(config)]) == 0
    err = capsys.readouterr().err
    assert "training copies" in err and "shipped" in err
    ckpt = read_checkpoint(shipped)
    assert ckpt.config["name"] == "yolo_refiner" and isinstance(ckpt.extra["enabled_by_default"], bool)
    assert ckpt.extra["training"]["copies"] > 0 and ckpt.extra["speed"]["pipeline_s"] > 0
    report = json.loads((tmp_path / "run" / "pipeline_eval.json").read_text())
    assert set(report["scores"]) == {"coco", "crowdpose"}
    assert report["enabled_by_default"] == ckpt.extra["enabled_by_default"]
    # The cache holds every frame: the data is not made again.
    assert len(list((tmp_path / "run" / "cache").rglob("*.pt"))) == 2

    assert main(["eval-pipeline", "--config", str(config), "--no-speed", "--output", str(tmp_path / "ev")]) == 0
    out = capsys.readouterr().out.splitlines()
    rows = [line.split() for line in out if line.startswith(("coco", "crowdpose"))]
    expected = [[s.name, str(s.people), str(len(s.paths)), which] for s in load_heldout(_heldout())
                for which in ("base", "refined")]
    assert [r[:4] for r in rows] == expected
    assert all(0.0 <= float(v) <= 1.0 for r in rows for v in r[4:] if v != "n/a")
    assert out[-1].startswith("default: ")


def test_eval_pipeline_without_a_heldout_split_is_a_one_line_error(tmp_path, capsys):
    from train.__main__ import main

    config = tmp_path / "plain.yaml"
    config.write_text(yaml.safe_dump({"model": {"params": {"name": "yolo_refiner"}}}))
    assert main(["eval-pipeline", "--config", str(config), "--no-speed"]) == 2
    assert "distill" in capsys.readouterr().err
