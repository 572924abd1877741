"""The DAG path end to end on CPU: a small DAG and its image-guided CoupleGraph trained here for a few steps on
COCO-mini, saved, then run by ``occlupose process --pose dag`` on the hug clip where the two people overlap.

Behaviour, not accuracy: CoupleGraph ran on the overlapping pair (the poses differ from the DAG's alone, and
are what the saved pair stage makes of the DAG's output), and swapping the pair swaps its output.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from app.cli import main as occlupose
from posecore.assets import demo_clip
from posecore.boxes import box_iou
from posecore.estimators.topdown import TopDownEstimator
from posecore.pair_stage import PairStage
from posecore.types import Detections
from train import commands

from .conftest import ROOT

PAIR_CONFIG = ROOT / "configs" / "train" / "couplegraph_dag_coco_mini_cpu.yaml"
HUG_FRAMES = range(34, 36)  # the people's boxes overlap with IoU >= 0.3 here (0.34, 0.35)


def _hug_frames(folder: Path) -> list[np.ndarray]:
    """The hug clip's overlapping frames, as lossless images (the pipeline then sees exactly these pixels)."""
    cap = cv2.VideoCapture(str(demo_clip()))
    frames = []
    for i in range(HUG_FRAMES.stop):
        ok, image = cap.read()
        assert ok
        if i in HUG_FRAMES:
            frames.append(image)
            cv2.imwrite(str(folder / f"{i:04d}.png"), image)
    cap.release()
    return frames


def _poses(out: Path) -> list[dict]:
    return [json.loads(line)["poses"] for line in (out / "hug.jsonl").read_text().splitlines()]


def test_dag_and_its_couplegraph_trained_here_refine_the_hug_in_occlupose_process(
        tmp_path, cpu_config, tiny_overrides, sample_paths, capsys):
    # A DAG for one step, then CoupleGraph on its frozen features for two, from real and pasted pairs.
    commands.fit(cpu_config, tiny_overrides(tmp_path / "dag", **{"solver.epochs": 1, "solver.eval_every": 0}),
                 out=lambda m: None)
    _, ann, img = sample_paths("coco_mini")
    _, vann, vimg = sample_paths("coco")
    pair_overrides = [f"data.train.ann_file={ann}", f"data.train.img_dir={img}", f"data.val.ann_file={vann}",
                      f"data.val.img_dir={vimg}", "data.val.max_people=4", "refiner.pasted_pairs=4",
                      "solver.batch_size=4", "solver.max_iters_per_epoch=2", "solver.eval_every=0", "optim.lr=0.01",
                      "solver.progress=false", f"output_dir={tmp_path / 'pair'}"]
    state = commands.fit(PAIR_CONFIG, pair_overrides, out=lambda m: None, init=tmp_path / "dag" / "last.pt")
    assert state.iteration == 2
    dag_pair = tmp_path / "pair" / "last.pt"  # the DAG with its pair stage inside

    # python -m train eval: AP without and with the pair stage, two rows.
    capsys.readouterr()
    commands.evaluate(PAIR_CONFIG, pair_overrides, weights=dag_pair, note=lambda m: None)
    rows = capsys.readouterr().out
    assert "without pair stage: AP" in rows and "with pair stage:    AP" in rows

    clip = tmp_path / "hug"
    clip.mkdir()
    frames = _hug_frames(clip)
    common = ["--pose", "dag", "--no-video", "-q", "--quality", "fast", "--runtime", "torch", "--device", "cpu",
              "--set", "stills=false"]
    assert occlupose(["process", str(clip), "-o", str(tmp_path / "paired"), "--weights", str(dag_pair), *common]) == 0
    assert occlupose(["process", str(clip), "-o", str(tmp_path / "alone"), "--weights", str(dag_pair), *common,
                      "--set", "pose.refine=off"]) == 0
    paired, alone = _poses(tmp_path / "paired"), _poses(tmp_path / "alone")
    assert len(paired) == len(alone) == len(HUG_FRAMES)

    estimator = TopDownEstimator.from_checkpoint(dag_pair, device="cpu")
    stage = PairStage.from_checkpoint(dag_pair)
    for image, p, a in zip(frames, paired, alone):
        boxes = np.asarray(p["boxes"], np.float32)
        assert len(boxes) == 2 and box_iou(boxes, boxes)[0, 1] >= stage.iou_threshold
        np.testing.assert_array_equal(boxes, np.asarray(a["boxes"], np.float32))
        kp_p, kp_a = np.asarray(p["keypoints"]), np.asarray(a["keypoints"])
        assert np.abs(kp_p[..., :2] - kp_a[..., :2]).max() > 0.05  # CoupleGraph moved the pair's joints
        np.testing.assert_allclose(kp_p[..., 2], kp_a[..., 2], atol=1e-3)  # and left the confidences

        # What the pipeline wrote is the saved pair stage applied to the DAG's output; swapped, it swaps.
        dets = Detections(boxes, np.asarray(p["scores"], np.float32))
        poses, feats = estimator.estimate_features(image, dets)
        np.testing.assert_allclose(poses.keypoints[..., :2], kp_a[..., :2], atol=0.05)
        refined = stage.refine(image, poses, feats)
        assert stage.pairs_last == 1
        np.testing.assert_allclose(refined.keypoints[..., :2], kp_p[..., :2], atol=0.05)
        order = [1, 0]
        poses_sw, feats_sw = estimator.estimate_features(image, Detections(boxes[order], dets.scores[order]))
        swapped = stage.refine(image, poses_sw, feats_sw)
        np.testing.assert_allclose(swapped.keypoints[order], refined.keypoints, atol=1e-3)
