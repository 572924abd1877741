"""Torch datasets of person crops: one item per person box, for training (augmented) and evaluation.

An image that cannot be read at run time (deleted or corrupt after the annotations were checked) yields
``None``; :func:`collate_people` drops it and the batch goes on, so an epoch never stops for one file.
"""

from __future__ import annotations

import logging
from typing import Callable, Sequence

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset, default_collate

from ..transforms.base import Compose, Sample
from .base import KeypointAnnotations, PersonRecord

log = logging.getLogger("train.data")


def _xyxy(box_xywh: np.ndarray) -> np.ndarray:
    x, y, w, h = (float(v) for v in box_xywh)
    return np.asarray([x, y, x + w, y + h], np.float32)


def read_image(path) -> np.ndarray | None:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        log.warning("skipping unreadable image %s", path)
    return image


class TopDownDataset(Dataset):
    """Crops of ``people`` (annotated people or detection boxes) through ``pipeline`` then ``finish``.

    Randomness comes from ``numpy.random.default_rng([seed, epoch, index])``: call :meth:`set_epoch`
    before each epoch (worker processes are started per epoch, so they see it).
    """

    def __init__(self, annotations: KeypointAnnotations, people: Sequence[PersonRecord], pipeline: Compose,
                 finish: Callable[[Sample], dict], seed: int = 0, with_others: bool = True):
        self.ann = annotations
        self.people = list(people)
        self.pipeline = pipeline
        self.finish = finish
        self.seed = int(seed)
        self.epoch = 0
        self.with_others = with_others
        self.num_joints = annotations.skeleton.num_joints

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.people)

    def make_sample(self, index: int) -> Sample | None:
        """The person's uncropped sample (image, keypoints, others, box), or None if its image is unreadable."""
        person = self.people[index]
        image = read_image(self.ann.image_path(person.image_id))
        if image is None:
            return None
        k = self.num_joints
        kpts = person.keypoints.copy() if person.keypoints is not None else np.zeros((k, 3), np.float32)
        others = self.ann.others(person).copy() if self.with_others else np.zeros((0, k, 3), np.float32)
        meta = {"image_id": person.image_id, "ann_id": person.ann_id, "score": person.score,
                "area": person.area, "box": np.asarray(person.box, np.float32), "index": index}
        return Sample(image, kpts, others, _xyxy(person.box), meta=meta)

    def __getitem__(self, index: int):
        sample = self.make_sample(index)
        if sample is None:
            return None
        rng = np.random.default_rng([self.seed, self.epoch, index])
        return self.finish(self.pipeline(sample, rng))


def collate_people(batch: list) -> dict[str, torch.Tensor] | None:
    """Default collation without the people whose image could not be read; None if nobody is left."""
    batch = [b for b in batch if b is not None]
    if not batch:
        return None
    return default_collate(batch)
