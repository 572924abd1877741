"""Fixtures for the training tests: the real data samples, and overrides that make runs tiny.

Each fixture hands out a function, so a test can ask for several samples; a sample that is absent
skips the test.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import ROOT, shared_path

CPU_CONFIG = ROOT / "configs" / "train" / "coco_mini_cpu.yaml"

SAMPLES = {
    # name: (format, annotation file, image folder) under the shared data folder
    "coco": ("coco", ("coco_sample", "test_coco.json"), ("coco_sample",)),
    "crowdpose": ("crowdpose", ("crowdpose_sample", "test_crowdpose.json"), ("crowdpose_sample",)),
    "ochuman": ("ochuman", ("ochuman_sample", "test_ochuman.json"), ("ochuman_sample",)),
    "coco_mini": ("coco", ("coco_mini_train2017", "annotations", "person_keypoints_train2017.json"),
                  ("coco_mini_train2017", "train2017")),
}


def _sample_paths(name: str) -> tuple[str, Path, Path]:
    fmt, ann, img = SAMPLES[name]
    return fmt, shared_path(*ann), shared_path(*img)


def _load_gt(name: str) -> dict:
    return json.loads(_sample_paths(name)[1].read_text())


def _tiny_overrides(out_dir: Path, **extra) -> list[str]:
    """A run that takes seconds: 64x64 crops, a few people, one step per epoch, no workers."""
    fmt, ann, img = _sample_paths("coco_mini")
    vfmt, vann, vimg = _sample_paths("coco")
    items = {
        "data.train.ann_file": str(ann), "data.train.img_dir": str(img), "data.train.max_people": 8,
        "data.val.ann_file": str(vann), "data.val.img_dir": str(vimg), "data.val.max_people": 4,
        "data.num_workers": 0, "model.params.input_size": "[64, 64]",
        "solver.batch_size": 2, "solver.max_iters_per_epoch": 1, "solver.epochs": 2, "solver.progress": "false",
        "schedule.warmup_iters": 1, "eval.batch_size": 4, "eval.flip_test": "false", "output_dir": str(out_dir),
    }
    items.update(extra)
    return [f"{k}={v}" for k, v in items.items()]


@pytest.fixture
def sample_paths():
    """name -> (format, annotation file, image folder) of a real data sample."""
    return _sample_paths


@pytest.fixture
def load_gt():
    """name -> the sample's annotation JSON as a dict."""
    return _load_gt


@pytest.fixture
def tiny_overrides():
    """(output folder, **more) -> key=value overrides for a run of a few seconds."""
    return _tiny_overrides


@pytest.fixture
def cpu_config() -> Path:
    return CPU_CONFIG
