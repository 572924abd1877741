"""A CPU-sized DAG learns 8 real COCO people: targets, losses and decoding agree.

The people are cropped and the targets built with the same code the estimator and the codec use at
inference; after a short training the estimator, run on the original images with the annotated
boxes, must put > 90 % of the labelled joints within 0.05 x the box size (PCK@0.05).
"""

import json
import time

import cv2
import numpy as np
import pytest
import torch

from posecore.estimators.crops import box_to_center_scale, image_to_crop, warp_crops
from posecore.estimators.topdown import TopDownEstimator, preprocess_crops
from posecore.models import build_model
from posecore.skeleton import COCO17
from posecore.types import Detections
from train.config import LossConfig
from train.losses import PoseLoss

INPUT = (96, 128)  # (W, H): a quarter of 256x192 keeps the test short on a CPU
STEPS = 70


def _people(root, n=8):
    data = json.loads((root / "annotations" / "person_keypoints_train2017.json").read_text())
    files = {i["id"]: i["file_name"] for i in data["images"]}
    labelled = [a for a in data["annotations"] if a["num_keypoints"] > 0]
    candidates = [a for a in labelled if a["num_keypoints"] >= 12 and not a["iscrowd"]]
    chosen = sorted(candidates, key=lambda a: -a["area"])[:n]  # the largest, most completely labelled people
    people = []
    for a in chosen:
        image = cv2.imread(str(root / "train2017" / files[a["image_id"]]))
        x, y, w, h = a["bbox"]
        others = np.array([o["keypoints"] for o in labelled if o["image_id"] == a["image_id"]], np.float32)
        people.append((image, np.array([x, y, x + w, y + h], np.float32),
                       np.array(a["keypoints"], np.float32).reshape(17, 3), others.reshape(-1, 17, 3)))
    return people


@pytest.mark.slow
def test_cpu_dag_overfits_eight_people(shared_data):
    root = shared_data / "coco_mini_train2017"
    if not root.exists():
        pytest.skip("coco_mini_train2017 not available")
    people = _people(root)
    assert len(people) == 8
    torch.manual_seed(0)
    model = build_model({"name": "dag_hrnet_small", "input_size": list(INPUT)})
    codec = model.codec

    crops, kps, multis = [], [], []
    for image, box, kp, others in people:
        c, s = box_to_center_scale(box[None], INPUT)
        crops.append(warp_crops(image, c, s, INPUT)[0])
        kps.append(np.concatenate((image_to_crop(kp[None, :, :2], c, s, INPUT)[0], kp[:, 2:]), -1))
        oc = image_to_crop(others[..., :2], np.repeat(c, len(others), 0), np.repeat(s, len(others), 0), INPUT)
        multis.append(codec.encode_multi(oc, others[..., 2]))
    targets = [codec.encode(k[:, :2], k[:, 2]) for k in kps]
    x = preprocess_crops(np.stack(crops))
    target = torch.from_numpy(np.stack([t[0] for t in targets]))
    weight = torch.from_numpy(np.stack([t[1] for t in targets]))
    multi = torch.from_numpy(np.stack(multis))
    kp = torch.from_numpy(np.stack(kps)[..., :2])
    # The training's own loss: l_m + l_t + lambda * l_p (eq. 4), every pose stage weighted alike. With only
    # 70 steps, lambda is small enough that the heatmaps (checked below on their own) learn as fast as
    # the coordinates: l_p is in units of the input size, the heatmap terms are mean squared errors.
    criterion = PoseLoss(LossConfig(pose_weight=0.015, pose_stage_weights=[1.0, 1.0], pose_init_weight=1.0,
                                    visibility_weight=0.0), COCO17, INPUT)
    batch = {"target_heatmaps": target, "target_weight": weight, "multi_heatmaps": multi, "joints": kp,
             "flags": torch.from_numpy(np.stack(kps)[..., 2])}

    start = time.perf_counter()
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(STEPS):
        loss = criterion(model(x), batch).total
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    est = TopDownEstimator(model, device="cpu")

    # The full inference path: crop from the original image, forward, decode, map back.
    hits, total = 0, 0
    for (image, box, gt, _), w in zip(people, weight.numpy()):
        poses = est.estimate(image, Detections(box[None], np.ones(1)))
        size = max(box[2] - box[0], box[3] - box[1])
        d = np.linalg.norm(poses.keypoints[0, :, :2] - gt[:, :2], axis=-1)
        labelled = w > 0
        hits += int((d[labelled] < 0.05 * size).sum())
        total += int(labelled.sum())
    pck = hits / total
    # The target heatmaps alone, through the codec (box size in the crop: its height / 1.25 padding).
    with torch.inference_mode():
        heat_coords, _ = codec.decode(model(x)["heatmaps"])
    d_heat = np.linalg.norm(heat_coords - kp.numpy(), axis=-1)[weight.numpy() > 0]
    pck_heat = float((d_heat < 0.05 * INPUT[1] / 1.25).mean())
    print(f"\nPCK@0.05 after {STEPS} steps ({time.perf_counter() - start:.0f} s): DAG {pck:.3f} (image space), "
          f"heatmap decode {pck_heat:.3f} (crop space), {total} joints")
    assert pck > 0.9
    assert pck_heat > 0.9
