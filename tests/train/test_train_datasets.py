"""Reading the three datasets in their native formats, and skipping what is broken without stopping."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from torch.utils.data import DataLoader

from posecore.codecs import HeatmapCodec
from train.datasets import DatasetError, open_annotations
from train.datasets.topdown import TopDownDataset, collate_people
from train.transforms import AffineCrop, CenterScale, Compose, EncodeTargets


def usable(gt: dict) -> list[dict]:
    return [a for a in gt["annotations"] if not a.get("iscrowd") and any(v > 0 for v in a["keypoints"][2::3])]


@pytest.mark.parametrize("name,joints", [("coco", 17), ("crowdpose", 14), ("ochuman", 17), ("coco_mini", 17)])
def test_samples_read_in_native_format(name, joints, sample_paths, load_gt):
    fmt, ann_file, img_dir = sample_paths(name)
    ann = open_annotations(fmt, ann_file, img_dir)
    gt = load_gt(name)
    want = usable(gt)
    assert ann.skeleton.num_joints == joints
    assert [p.ann_id for p in ann.people] == [a["id"] for a in want]
    for p, a in zip(ann.people, want):
        assert (p.keypoints.reshape(-1) == np.asarray(a["keypoints"], np.float32)).all()
    # Each person's "others" are exactly the other usable people of its image.
    for p in ann.people:
        same = [a for a in want if a["image_id"] == p.image_id and a["id"] != p.ann_id]
        assert len(ann.others(p)) == len(same)
    if fmt == "crowdpose":
        indices = {img["id"]: img["crowdIndex"] for img in gt["images"]}
        assert all(rec.crowd_index == indices[i] for i, rec in ann.images.items())
        assert all(p.area == pytest.approx(0.53 * p.box[2] * p.box[3]) for p in ann.people)


def broken_copy(tmp_path, sample_paths, load_gt):
    """The COCO sample with one image file missing and a few bad annotations added."""
    fmt, ann_file, img_dir = sample_paths("coco")
    gt = load_gt("coco")
    for img in gt["images"]:
        shutil.copy(img_dir / img["file_name"], tmp_path / img["file_name"])
    missing = gt["images"][0]
    (tmp_path / missing["file_name"]).unlink()
    good = usable(gt)
    template = good[-1]
    bad = [
        {**template, "id": 9001, "keypoints": template["keypoints"][:-3]},  # 50 numbers
        {**template, "id": 9002, "bbox": "wide"},
        {**template, "id": 9003, "keypoints": [0] * 51, "num_keypoints": 0},  # nobody labelled
        {**template, "id": 9004, "image_id": 123456789},  # no such image
        {**template, "id": 9005, "keypoints": [1, 1, 7] * 17},  # flags not 0/1/2
        "not an annotation",
    ]
    gt["annotations"] += bad
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(gt))
    return path, gt, missing, good


def test_broken_entries_are_reported_and_skipped(tmp_path, sample_paths, load_gt):
    path, gt, missing, good = broken_copy(tmp_path, sample_paths, load_gt)
    ann = open_annotations("coco", path, tmp_path)
    expected = [a["id"] for a in good if a["image_id"] != missing["id"]]
    assert [p.ann_id for p in ann.people] == expected
    skipped = ann.report.skipped
    assert skipped["people whose image is missing"] == sum(a["image_id"] == missing["id"] for a in good)
    assert skipped["malformed annotations"] == 4
    assert skipped["annotations of unknown images"] == 1
    assert skipped["people without labelled joints"] == 1 + sum(
        1 for a in gt["annotations"][:-6] if not any(v > 0 for v in a["keypoints"][2::3]))
    summary = ann.report.summary()
    assert "missing" in summary and "malformed" in summary


def test_an_image_unreadable_mid_epoch_is_dropped_from_its_batch(tmp_path, sample_paths, load_gt):
    path, gt, missing, good = broken_copy(tmp_path, sample_paths, load_gt)
    ann = open_annotations("coco", path, tmp_path)
    victim = ann.people[0]
    ann.image_path(victim.image_id).write_bytes(b"not a jpeg")  # corrupt after the files were checked
    size = (64, 64)
    ds = TopDownDataset(ann, ann.people, Compose([CenterScale(size), AffineCrop(size)]),
                        EncodeTargets(HeatmapCodec(size, (16, 16))))
    seen = 0
    for batch in DataLoader(ds, batch_size=4, collate_fn=collate_people):
        if batch is None:
            continue
        seen += len(batch["image_id"])
        assert victim.image_id not in batch["image_id"].tolist()
    lost = sum(p.image_id == victim.image_id for p in ann.people)
    assert seen == len(ann.people) - lost


@pytest.mark.parametrize("content,needle", [
    (None, "not found"),
    ("{ not json", "not valid JSON"),
    ("[1, 2]", "not a COCO keypoint file"),
])
def test_unusable_annotation_files_raise_one_clear_error(tmp_path, content, needle):
    path = tmp_path / "ann.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(DatasetError, match=needle):
        open_annotations("coco", path, tmp_path)


def test_a_file_of_another_skeleton_is_refused(sample_paths):
    fmt, ann_file, img_dir = sample_paths("crowdpose")
    with pytest.raises(DatasetError, match="14 keypoints"):
        open_annotations("coco", ann_file, img_dir)  # CrowdPose read as COCO-17
