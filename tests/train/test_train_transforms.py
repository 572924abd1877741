"""Transforms on real images: keypoints move with the pixels, and occlusions are where they say they are."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from posecore.codecs import HeatmapCodec
from train.datasets import open_annotations
from train.datasets.topdown import TopDownDataset
from train.transforms import (AffineCrop, CenterScale, Compose, EncodeTargets, HalfBody, InstancePaste, InstancePool,
                              LimbJointAugmentation, MaskJoints, RandomFlip, RandomScaleRotation, Sample)
from train.transforms.geometry import joint_groups
from train.transforms.occlusion import BlockRecord, PasteRecord, limb_joints, segmentation_mask

SIZE = (192, 256)


@pytest.fixture
def coco(sample_paths):
    fmt, ann_file, img_dir = sample_paths("coco")
    return open_annotations(fmt, ann_file, img_dir)


def raw_samples(ann):
    ds = TopDownDataset(ann, ann.people, Compose([]), lambda s: s)
    return [ds.make_sample(i) for i in range(len(ds))]


def cropped(sample: Sample, rng=None) -> Sample:
    return Compose([CenterScale(SIZE), AffineCrop(SIZE)])(sample, rng or np.random.default_rng(0))


def joint_colours(k: int) -> np.ndarray:
    return np.stack([30 + 12 * np.arange(k), 250 - 11 * np.arange(k), 60 + 9 * np.arange(k)], -1).astype(np.uint8)


def test_flip_moves_keypoints_onto_the_flipped_pixels(coco):
    flip_index = coco.skeleton.flip_index
    for sample in raw_samples(coco)[:4]:
        before = sample.image.copy()
        kp0, box0 = sample.keypoints.copy(), sample.box.copy()
        w = before.shape[1]
        out = RandomFlip(coco.skeleton, prob=1.0)(sample, np.random.default_rng(0))
        assert out.flipped
        for i in range(len(kp0)):
            src = kp0[flip_index[i]]  # the joint that becomes joint i (left <-> right)
            if src[2] == 0:
                assert out.keypoints[i, 2] == 0
                continue
            x, y = out.keypoints[i, :2]
            assert (x, y) == (w - 1 - src[0], src[1])
            assert (out.image[int(y), int(x)] == before[int(src[1]), int(src[0])]).all()
        assert out.box[0] == pytest.approx(w - 1 - box0[2]) and out.box[2] == pytest.approx(w - 1 - box0[0])


def test_crop_with_scale_rotation_and_flip_keeps_joints_on_their_markers(coco):
    """Paint a distinct colour under every joint, augment, and read the colour back at each new joint."""
    k = coco.skeleton.num_joints
    colours = joint_colours(k)
    pipeline = Compose([CenterScale(SIZE), RandomScaleRotation(0.2, 30.0, rotation_prob=1.0),
                        RandomFlip(coco.skeleton, prob=0.5), AffineCrop(SIZE)])
    checked = 0
    for n, sample in enumerate(raw_samples(coco)):
        kp = sample.keypoints
        labelled = kp[:, 2] > 0
        # Joints whose markers would touch another marker are painted but not checked.
        d = np.linalg.norm(kp[:, None, :2] - kp[None, :, :2], axis=-1) + np.eye(k) * 1e9
        isolated = labelled & (np.where(labelled[None], d, 1e9).min(1) > 12)
        for j in np.flatnonzero(labelled):
            x, y = int(kp[j, 0]), int(kp[j, 1])
            cv2.rectangle(sample.image, (x - 4, y - 4), (x + 4, y + 4), colours[j].tolist(), -1)
        out = pipeline(sample, np.random.default_rng(n))
        assert out.rotation != 0.0
        src_of = coco.skeleton.flip_index if out.flipped else np.arange(k)
        for i in range(k):
            j = src_of[i]
            if out.keypoints[i, 2] == 0 or not isolated[j]:
                continue
            x, y = np.round(out.keypoints[i, :2]).astype(int)
            pixel = out.image[y, x].astype(int)
            nearest = np.abs(colours.astype(int) - pixel).sum(1).argmin()
            assert nearest == j, f"sample {n}: joint {i} reads the colour of joint {nearest}, expected {j}"
            checked += 1
    assert checked > 40


def test_half_body_crops_to_one_half_that_stays_inside(coco):
    upper, lower = joint_groups(coco.skeleton)
    for n, sample in enumerate(raw_samples(coco)):
        if (sample.keypoints[:, 2] > 0).sum() <= 8:
            continue
        full = cropped(Sample(sample.image, sample.keypoints.copy(), sample.others, sample.box.copy())).scale
        out = Compose([CenterScale(SIZE), HalfBody(coco.skeleton, SIZE, prob=1.0, min_joints=8), AffineCrop(SIZE)])(
            sample, np.random.default_rng(n))
        assert out.scale[1] < full[1]
        inside = out.keypoints[:, 2] > 0
        labelled = sample.keypoints[:, 2] > 0  # (the sample was cropped in place: flags as before)
        halves = [g[labelled[g]] for g in (upper, lower)]
        assert any(len(g) >= 2 and inside[g].all() for g in halves)


def test_mask_joints_blocks_cover_their_joints_and_relabel_only_covered(coco):
    covered_any = False
    for n, sample in enumerate(raw_samples(coco)):
        s = cropped(sample)
        before_img, before_kp = s.image.copy(), s.keypoints.copy()
        out = MaskJoints(prob=1.0, max_joints=4, size_range=(0.05, 0.3), fill="random")(s, np.random.default_rng(n))
        blocks = [r for r in out.log if isinstance(r, BlockRecord)]
        assert 1 <= len(blocks) <= 4
        union = np.zeros(out.image.shape[:2], bool)
        for b in blocks:
            x1, y1, x2, y2 = b.rect
            jx, jy = np.round(before_kp[b.joint, :2]).astype(int)
            assert before_kp[b.joint, 2] > 0 and x1 <= jx < x2 and y1 <= jy < y2
            union[y1:y2, x1:x2] = True
        last = blocks[-1]
        x1, y1, x2, y2 = last.rect
        assert (out.image[y1:y2, x1:x2] == np.asarray(last.value, np.uint8)).all()
        assert (out.image[~union] == before_img[~union]).all()
        for j, (x, y, v) in enumerate(before_kp):
            under = v > 0 and union[int(round(y)), int(round(x))]
            expected = 1 if (under and v == 2) else v
            assert out.keypoints[j, 2] == expected
            covered_any |= bool(under and v == 2)
    assert covered_any


def test_limb_joint_augmentation_follows_the_paper(coco):
    limbs = set(limb_joints(coco.skeleton).tolist())
    assert limbs == {coco.skeleton.index(f"{s}_{p}") for s in ("left", "right")
                     for p in ("shoulder", "elbow", "wrist", "hip", "knee", "ankle")}
    for n, sample in enumerate(raw_samples(coco)):
        s = cropped(sample)
        before_kp, before_img = s.keypoints.copy(), s.image.copy()
        visible = [j for j in limbs if before_kp[j, 2] == 2]
        bw, bh = s.box_size()
        out = LimbJointAugmentation(coco.skeleton, prob=1.0, ratio=0.15, block=0.20)(s, np.random.default_rng(n))
        blocks = [r for r in out.log if isinstance(r, BlockRecord)]
        assert len(blocks) == (math.ceil(0.15 * len(visible)) if visible else 0)
        assert len({b.joint for b in blocks}) == len(blocks)
        union = np.zeros(out.image.shape[:2], bool)
        for b in blocks:
            assert b.joint in visible
            x1, y1, x2, y2 = b.rect
            jx, jy = np.round(before_kp[b.joint, :2]).astype(int)
            assert x1 <= jx < x2 and y1 <= jy < y2
            if 0 < x1 and x2 < SIZE[0]:  # not clipped by the crop's edge
                assert x2 - x1 == max(1, round(0.2 * bw))
            if 0 < y1 and y2 < SIZE[1]:
                assert y2 - y1 == max(1, round(0.2 * bh))
            assert b.value[0] == b.value[1] == b.value[2] and 0 <= b.value[0] <= 255
            union[y1:y2, x1:x2] = True
        if blocks:
            x1, y1, x2, y2 = blocks[-1].rect
            assert (out.image[y1:y2, x1:x2] == blocks[-1].value[0]).all()
        assert (out.image[~union] == before_img[~union]).all()
        for j, (x, y, v) in enumerate(before_kp):
            under = v == 2 and union[int(round(y)), int(round(x))]
            assert out.keypoints[j, 2] == (1 if under else v)


def test_instance_pool_cuts_people_with_their_own_polygons(coco):
    pool = InstancePool(coco.pool, coco.image_path, min_area=0, min_keypoints=0)
    anns = {a["id"]: a for a in coco.raw["annotations"]}
    for i in range(len(pool)):
        cut = pool.get(i)
        ann = anns[pool.instances[i].ann_id]
        # The polygon's pixel count is the annotation's area, up to rasterisation at the border.
        assert cut.mask.sum() == pytest.approx(ann["area"], rel=0.08)
        assert cut.pixels.shape[:2] == cut.mask.shape


def test_ochuman_rle_masks_decode_onto_their_people(sample_paths):
    fmt, ann_file, img_dir = sample_paths("ochuman")
    ann = open_annotations(fmt, ann_file, img_dir)
    sizes = {img["id"]: (img["height"], img["width"]) for img in ann.raw["images"]}
    fractions = []
    for a in ann.raw["annotations"]:
        h, w = sizes[a["image_id"]]
        m = segmentation_mask(a["segmentation"], h, w)
        assert 1000 < m.sum() < 0.5 * h * w
        kp = np.asarray(a["keypoints"]).reshape(-1, 3)
        on = [m[int(y), int(x)] for x, y, v in kp if v > 0 and 0 <= x < w and 0 <= y < h]
        fractions.append(np.mean(on))
    # (OCHuman's boxes do not always enclose its masks, but its joints lie on them.)
    assert min(fractions) > 0.6 and np.mean(fractions) > 0.8


def test_instance_paste_relabels_exactly_the_covered_joints(coco, sample_paths):
    fmt, ann_file, img_dir = sample_paths("ochuman")
    targets = open_annotations(fmt, ann_file, img_dir)  # people from other images, pasted over OCHuman crops
    pool = InstancePool(coco.pool, coco.image_path, min_area=2000, min_keypoints=5)
    paste = InstancePaste(pool, prob=1.0, max_instances=2, scale_range=(0.6, 1.0), rotation=30.0)
    covered, uncovered = 0, 0
    for n in range(12):
        sample = raw_samples(targets)[n % len(targets.people)]
        s = cropped(sample)
        before_img, before_kp, before_others = s.image.copy(), s.keypoints.copy(), len(s.others)
        out = paste(s, np.random.default_rng(n))
        rec = [r for r in out.log if isinstance(r, PasteRecord)]
        assert len(rec) == 1
        mask = rec[0].mask
        assert mask.any()
        assert (out.image[~mask] == before_img[~mask]).all()
        assert (out.image[mask] != before_img[mask]).any(-1).mean() > 0.5
        assert len(out.others) == before_others + len(rec[0].instances)
        for j, (x, y, v) in enumerate(before_kp):
            xi, yi = int(round(x)), int(round(y))
            under = v == 2 and 0 <= xi < SIZE[0] and 0 <= yi < SIZE[1] and mask[yi, xi]
            assert out.keypoints[j, 2] == (1 if under else v)
            covered += int(under)
            uncovered += int(v == 2 and not under)
    assert covered > 0 and uncovered > 0


def test_targets_put_heatmap_peaks_on_joints_and_other_people(coco):
    codec = HeatmapCodec(SIZE, (48, 64))
    for sample in raw_samples(coco)[:6]:
        s = cropped(sample)
        t = EncodeTargets(codec)(s)
        labelled = t["flags"] > 0
        assert ((t["target_weight"] > 0) == labelled).all()
        coords, _ = codec.decode(t["target_heatmaps"][None])
        assert np.abs(coords[0][labelled] - s.keypoints[labelled, :2]).max() < 0.5
        # Every other person's joint inside the crop peaks in the multi-person heatmaps.
        for person in s.others:
            for j, (x, y, v) in enumerate(person):
                if v > 0:
                    hx, hy = np.round(((x + 0.5) * 48 / SIZE[0] - 0.5, (y + 0.5) * 64 / SIZE[1] - 0.5)).astype(int)
                    assert t["multi_heatmaps"][j, hy, hx] > 0.7
        assert t["image"].shape == (3, SIZE[1], SIZE[0]) and abs(float(t["image"].mean())) < 3


def test_targets_carry_the_body_centre_of_the_joints_left_visible(coco):
    codec = HeatmapCodec(SIZE, (48, 64))
    rng = np.random.default_rng(3)
    steps = Compose([CenterScale(SIZE), AffineCrop(SIZE), MaskJoints(prob=1.0, max_joints=3)])
    sources = set()
    for sample in raw_samples(coco):
        s = steps(sample, rng)
        t = EncodeTargets(codec, center_min_joints=10)(s)
        visible = t["flags"] == 2  # after the masks: a joint under a block no longer counts
        if visible.sum() >= 10:
            np.testing.assert_allclose(t["body_center"], s.keypoints[visible, :2].mean(0), rtol=1e-5)
            sources.add("joints")
        else:
            np.testing.assert_allclose(t["body_center"], 0.5 * (s.box[:2] + s.box[2:]), rtol=1e-5)
            sources.add("box")
    assert sources == {"joints", "box"}
