"""Distilling the YOLO-feature refiner: frame augmentation, targets, matching, held-out split, losses."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from posecore.models import build_model
from posecore.skeleton import COCO17
from posecore.types import Detections
from tests.conftest import shared_path
from train.distill import CopyRecord, heldout_paths, match_people, paste_pool, source_frames, teacher_people
from train.config import DistillConfig, DistillLossConfig, FrameAugmentConfig, FrameSource, HeldOutSplit
from train.distill_fit import CopyEvaluator, DistillLoss, collate_copies, distill_forward, feature_stats
from train.transforms.frame import FrameOcclusion, FramePeople

K = COCO17.num_joints


def _person(x: float, y: float, h: float = 120.0) -> tuple[np.ndarray, np.ndarray]:
    """A standing figure: keypoints float32[K, 3] (weight 1) and its box, with its left side at larger x."""
    rel = np.array([[0, 0], [-3, -3], [3, -3], [-6, 0], [6, 0], [-12, 20], [12, 20], [-16, 45], [16, 45],
                    [-18, 65], [18, 65], [-8, 65], [8, 65], [-8, 95], [8, 95], [-8, 118], [8, 118]], np.float32)
    rel[:, 0] *= -1  # the person faces us: their left is on the image's right
    kp = np.concatenate([rel * h / 120 + (x, y), np.ones((K, 1), np.float32)], -1)
    box = np.array([kp[:, 0].min() - 5, kp[:, 1].min() - 10, kp[:, 0].max() + 5, kp[:, 1].max() + 5], np.float32)
    return kp, box


def _people(*xy) -> FramePeople:
    made = [_person(x, y) for x, y in xy]
    return FramePeople(np.stack([m[0] for m in made]), np.stack([m[1] for m in made]), np.zeros(len(made), bool))


@pytest.mark.parametrize("seed", range(6))
def test_a_copy_moves_every_joint_with_its_pixels(seed):
    """A dot drawn at each joint ends up where the copy says the joint is (zoom, shift and mirror alike)."""
    image = np.zeros((240, 320, 3), np.uint8)
    people = _people((120, 60), (210, 70))
    for x, y, _ in people.keypoints[:, [0, 9, 16]].reshape(-1, 3):  # nose, left wrist, right ankle
        image[int(y), int(x)] = 255  # the pixel whose span holds the continuous point
    aug = FrameOcclusion(FrameAugmentConfig(occlude_prob=0.0, flip_prob=0.5), COCO17).augment(
        image, people, np.random.default_rng(seed))
    bright = aug.image.max(-1).astype(np.float32)
    mirrored = aug.matrix[0, 0] < 0  # then the dot of a left joint is the right joint's place, and back
    for p in range(len(aug.people)):
        for j in (COCO17.flip_index[[0, 9, 16]] if mirrored else (0, 9, 16)):
            x, y, w = aug.people.keypoints[p, j]
            if w == 0 or not (3 <= x < 317 and 3 <= y < 237):
                continue
            win = bright[int(y) - 3:int(y) + 4, int(x) - 3:int(x) + 4]
            assert win.max() > 20, f"no dot near joint {j} of person {p} at ({x:.1f}, {y:.1f})"
            ys, xs = np.nonzero(win > 0.3 * win.max())
            cx = (xs * win[ys, xs]).sum() / win[ys, xs].sum() + int(x) - 3 + 0.5
            cy = (ys * win[ys, xs]).sum() / win[ys, xs].sum() + int(y) - 3 + 0.5
            assert abs(cx - x) < 1.0 and abs(cy - y) < 1.0


def test_a_mirrored_copy_swaps_the_sides():
    people = _people((150, 60))
    cfg = FrameAugmentConfig(occlude_prob=0.0, flip_prob=1.0, zoom_range=[1.0, 1.0])
    aug = FrameOcclusion(cfg, COCO17).augment(np.zeros((240, 320, 3), np.uint8), people, np.random.default_rng(0))
    kp, new = people.keypoints[0], aug.people.keypoints[0]
    np.testing.assert_allclose(new[5, :2], [320 - kp[6, 0], kp[6, 1]], atol=1e-4)  # left shoulder <- right
    assert new[5, 0] > new[6, 0]  # still facing us: the left shoulder on the image's right


def test_occlusions_mark_the_joints_they_cover_and_pasted_people_join_labelled():
    ann = shared_path("coco_mini_train2017", "annotations", "person_keypoints_train2017.json")
    img_dir = shared_path("coco_mini_train2017", "train2017")
    cfg = DistillConfig(sources=[FrameSource(kind="coco", path=img_dir, ann_file=ann)])
    pool = paste_pool(cfg)
    assert pool is not None and len(pool) > 10
    rng = np.random.default_rng(1)
    image = rng.integers(0, 255, (360, 480, 3), dtype=np.uint8)
    people = _people((150, 80), (330, 90))
    aug_cfg = FrameAugmentConfig(occlude_prob=1.0, kind_weights=[0.0, 0.0, 1.0], flip_prob=0.0, zoom_range=[1.0, 1.0])
    aug = FrameOcclusion(aug_cfg, COCO17, pool).augment(image, people, rng)
    assert len(aug.people) > 2 and aug.people.labelled[2:].all() and not aug.people.labelled[:2].any()
    assert aug.occluded[:2].any(), "a person pasted over someone hides some of their joints"
    changed = (aug.image != image).any(-1)
    for p, j in zip(*np.nonzero(aug.occluded)):
        x, y = aug.people.keypoints[p, j, :2]
        assert changed[int(y), int(x)]
    # Their own targets stay those of the clean frame.
    np.testing.assert_allclose(aug.people.keypoints[:2], people.keypoints)


def test_labelled_people_replace_the_teachers_guess_of_them():
    kp, box = _person(100, 50)
    teacher = Detections(np.stack([box, box + 200]), np.array([0.9, 0.8]),
                         np.stack([kp * [1, 1, 0.3], kp * [1, 1, 0.9]]))
    labelled = FramePeople(kp[None] + [3, 0, 0], box[None], np.ones(1, bool))
    people = teacher_people(teacher, labelled, min_conf=0.5)
    assert len(people) == 2 and people.labelled.tolist() == [True, False]
    np.testing.assert_allclose(people.keypoints[1, :, 2], 1.0)  # the other person's joints, confident enough
    low = teacher_people(teacher, None, min_conf=0.5)
    assert low.keypoints[0, :, 2].max() == 0.0  # joints under the threshold are no targets


def test_matching_pairs_each_detection_with_its_own_person():
    people = _people((100, 50), (160, 50), (400, 60))
    order = [2, 0, 1]
    noisy = people.keypoints[order].copy()
    noisy[..., :2] += np.random.default_rng(0).normal(0, 2, noisy[..., :2].shape)
    det = Detections(people.boxes[order] + 2, np.ones(3), noisy)
    np.testing.assert_array_equal(match_people(det, people, 0.4, COCO17.sigmas_array), order)
    far = Detections(people.boxes[:1] + 500, np.ones(1), noisy[:1])
    assert match_people(far, people, 0.4, COCO17.sigmas_array).tolist() == [-1]


def test_held_out_images_are_never_training_frames_or_paste_material():
    ann = shared_path("coco_mini_train2017", "annotations", "person_keypoints_train2017.json")
    img_dir = shared_path("coco_mini_train2017", "train2017")
    held = [370162, 227000]  # the two with most people
    cfg = DistillConfig(sources=[FrameSource(kind="coco", path=img_dir, ann_file=ann)],
                        heldout=[HeldOutSplit(name="coco", ann_file=ann, img_dir=img_dir, images=held)])
    skip = heldout_paths(cfg.heldout)
    assert len(skip) == 2
    frames = source_frames(cfg)
    names = {f.name for f in frames}
    assert len(frames) == 78 and not any(str(i) in n for i in held for n in names)
    pool = paste_pool(cfg)
    assert not {inst.image_id for inst in pool.instances} & set(held)


def _records(n_copies: int = 3, seed: int = 0) -> list[CopyRecord]:
    rng = np.random.default_rng(seed)
    out = []
    for c in range(n_copies):
        people = _people((100 + 30 * c, 50), (115 + 30 * c, 55), (400, 60))
        n = len(people)
        kp = people.keypoints.copy()
        kp[..., :2] += rng.normal(0, 3, kp[..., :2].shape)
        kp[..., 2] = rng.uniform(0.2, 1.0, (n, K))
        out.append(CopyRecord(kp.astype(np.float32), people.boxes, rng.normal(size=(n, K, 448)).astype(np.float16),
                              rng.normal(size=(n, K, 25, 64)).astype(np.float16), np.full(n, 4.0, np.float32),
                              people.keypoints[..., :2], np.ones((n, K), np.float32), np.full(n, 60.0, np.float32),
                              rng.random((n, K)) < 0.2, np.zeros(n, bool)))
    return out


def test_batches_pair_people_within_a_copy_only():
    recs = _records()
    batch = collate_copies(recs, iou_threshold=0.1)
    assert batch["keypoints"].shape == (9, K, 3) and batch["grid"].dtype == torch.float32
    copy_of = np.repeat(np.arange(3), 3)
    pairs = batch["pairs"].numpy()
    assert len(pairs) >= 3 and (copy_of[pairs[:, 0]] == copy_of[pairs[:, 1]]).all()


def test_loss_is_zero_on_the_targets_and_the_check_compares_before_and_after():
    recs = _records()
    batch = collate_copies(recs, 0.1)
    loss = DistillLoss(DistillLossConfig())
    exact = {"local": batch["target"], "stages": [batch["target"]] * 2,
             "couple": batch["target"][batch["pairs"]]}
    assert float(loss(exact, batch).total) == 0.0
    model = build_model({"name": "yolo_refiner", "feat_dim": 8, "couple": {"hidden": 16}})
    model.set_feature_stats(*feature_stats(recs))
    fresh = loss(distill_forward(model, batch), batch)
    assert float(fresh.total.detach()) > 0 and set(fresh.parts) == {"l0", "l1", "l2", "lc"}
    metrics = CopyEvaluator(recs, 0.1, say=lambda m: None)(model)
    assert metrics["val.oks"] == pytest.approx(metrics["val.oks_base"], abs=1e-5)  # untrained: no change
    assert 0 < metrics["val.oks_base"] < 1
