"""Evaluation geometry end to end: a model that outputs the ground truth of each crop must score AP 1.

This checks the eval crop, flip test (heatmaps and poses flipped back with left/right swapped), heatmap
decoding, the way back to image pixels, rescoring, OKS-NMS and the AP computation together.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

from posecore.codecs import HeatmapCodec
from train.build import eval_inputs, eval_pipeline
from train.config import EvalConfig
from train.datasets import open_annotations
from train.datasets.topdown import TopDownDataset, collate_people
from train.evaluate import eval_kind
from train.inference import Evaluator, flip_back_coords, flip_back_heatmaps, predict

SIZE = (192, 256)


class Oracle(nn.Module):
    """Returns, for each crop in loader order, the heatmaps (and poses) of its ground truth.

    With flip test the second call of each batch is the mirrored crops: it answers with the mirrored
    ground truth, as a perfect network would.
    """

    def __init__(self, crops_kp: list[np.ndarray], flip_index, flip_test: bool, with_coords: bool, shift: float = 0.0):
        super().__init__()
        self.codec = HeatmapCodec(SIZE, (SIZE[0] // 4, SIZE[1] // 4))
        self.input_size, self.num_joints = SIZE, crops_kp[0].shape[0]
        self.kp, self.flip_index, self.flip_test = crops_kp, np.asarray(flip_index), flip_test
        self.with_coords, self.shift = with_coords, shift
        self.pos, self.pending = 0, None

    def forward(self, images):
        b = len(images)
        if self.pending is None:
            kps = [k.copy() for k in self.kp[self.pos:self.pos + b]]
            self.pos += b
            if self.flip_test:
                self.pending = [k.copy() for k in kps]
        else:
            kps = []
            for k in self.pending:
                f = k[self.flip_index].copy()
                f[:, 0] = SIZE[0] - 1 - f[:, 0]
                kps.append(f)
            self.pending = None
        sign = -1.0 if (self.flip_test and self.pending is None) else 1.0  # mirrored crops shift the other way
        for k in kps:
            k[:, 0] += sign * self.shift
        hm = np.stack([self.codec.encode(k[:, :2], k[:, 2])[0] for k in kps])
        out = {"heatmaps": torch.from_numpy(hm)}
        if self.with_coords:
            out["coords"] = [torch.from_numpy(np.stack([k[:, :2] for k in kps]))]
        return out


def setup(name, sample_paths, flip_test):
    fmt, ann_file, img_dir = sample_paths(name)
    ann = open_annotations(fmt, ann_file, img_dir)
    pipe = eval_pipeline(SIZE, 1.25)
    crops = TopDownDataset(ann, ann.people, pipe, lambda s: s.keypoints.copy(), with_others=False)
    kps = [crops[i] for i in range(len(crops))]  # ground truth in crop pixels, v = 0 outside the crop
    data = TopDownDataset(ann, ann.people, pipe, eval_inputs, with_others=False)
    loader = DataLoader(data, batch_size=3, collate_fn=collate_people)
    sk = ann.skeleton
    evaluator = Evaluator(ann.raw, loader, sk.sigmas, sk.flip_index.tolist(), EvalConfig(flip_test=flip_test),
                          eval_kind(fmt), torch.device("cpu"))
    return ann, kps, loader, evaluator


@pytest.mark.parametrize("name", ["coco", "crowdpose", "ochuman"])
@pytest.mark.parametrize("flip_test,with_coords", [(True, False), (False, True), (True, True)])
def test_a_perfect_model_lands_on_every_joint_in_its_crop(name, flip_test, with_coords, sample_paths):
    ann, kps, loader, _ = setup(name, sample_paths, flip_test)
    sk = ann.skeleton
    pred = predict(Oracle(kps, sk.flip_index, flip_test, with_coords), loader, sk.flip_index.tolist(), flip_test)
    assert pred["ann_id"].tolist() == [p.ann_id for p in ann.people]
    checked = 0
    for person, crop_kp, kp in zip(ann.people, kps, pred["keypoints"]):
        inside = crop_kp[:, 2] > 0  # labelled and inside the crop
        err = np.abs(kp[inside, :2] - person.keypoints[inside, :2]).max()
        assert err < 0.05 if with_coords else err < 0.5
        assert (kp[inside, 2] > 0.9).all()
        checked += int(inside.sum())
    assert checked > 40


@pytest.mark.parametrize("name", ["coco", "ochuman"])  # (in the CrowdPose sample some joints lie outside their box)
@pytest.mark.parametrize("flip_test", [True, False])
def test_a_perfect_model_scores_one(name, flip_test, sample_paths):
    ann, kps, loader, evaluator = setup(name, sample_paths, flip_test)
    sk = ann.skeleton
    assert all(((k[:, 2] > 0) == (p.keypoints[:, 2] > 0)).all() for k, p in zip(kps, ann.people))
    assert evaluator(Oracle(kps, sk.flip_index, flip_test, False))["AP"] > 0.99
    # Ten crop pixels to the right loses AP: the score is sensitive to the geometry.
    assert evaluator(Oracle(kps, sk.flip_index, flip_test, False, shift=10.0))["AP"] < 0.8


def test_flip_back_undoes_a_mirror():
    flip_index = [0, 2, 1, 4, 3]
    hm = torch.rand(2, 5, 8, 6)
    mirrored = hm[:, flip_index].flip(-1)
    assert torch.equal(flip_back_heatmaps(mirrored, flip_index), hm)
    xy = torch.rand(2, 5, 2) * 40
    m = xy[:, flip_index].clone()
    m[..., 0] = 47 - m[..., 0]
    assert torch.allclose(flip_back_coords(m, flip_index, 48), xy)
