"""The torchvision CPU shim's box ops agree with brute-force references (tested from its source tree,
so it runs whether or not the shim is the installed torchvision)."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

SHIM = Path(__file__).resolve().parents[2] / "compat" / "torchvision-cpu-shim" / "torchvision"


@pytest.fixture(scope="module")
def ops():
    spec = importlib.util.spec_from_file_location("shim_boxes", SHIM / "ops" / "boxes.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _iou_ref(a, b):
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union


def _nms_ref(boxes, scores, thr):
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    keep = []
    for i in order:
        if all(_iou_ref(boxes[i], boxes[k]) <= thr for k in keep):
            keep.append(i)
    return keep


def _random_boxes(rng, n):
    xy = rng.uniform(0, 100, (n, 2))
    wh = rng.uniform(1, 40, (n, 2))
    return np.concatenate([xy, xy + wh], 1).astype(np.float32)


@pytest.mark.parametrize("seed", range(8))
def test_nms_matches_brute_force(ops, seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 200))
    boxes = _random_boxes(rng, n)
    scores = rng.permutation(n).astype(np.float32) / n  # distinct scores: the order is unambiguous
    thr = float(rng.uniform(0.2, 0.8))
    got = ops.nms(torch.from_numpy(boxes), torch.from_numpy(scores), thr).tolist()
    assert got == _nms_ref(boxes.tolist(), scores.tolist(), thr)


def test_batched_nms_keeps_categories_apart(ops):
    boxes = torch.tensor([[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10.0]])
    scores = torch.tensor([0.9, 0.8, 0.7])
    idxs = torch.tensor([0, 1, 0])
    assert ops.batched_nms(boxes, scores, idxs, 0.5).tolist() == [0, 1]


def test_batched_nms_matches_per_class_reference(ops):
    rng = np.random.default_rng(1)
    boxes = _random_boxes(rng, 120)
    scores = rng.permutation(120).astype(np.float32)
    idxs = rng.integers(0, 3, 120)
    got = set(ops.batched_nms(torch.from_numpy(boxes), torch.from_numpy(scores), torch.from_numpy(idxs), 0.4).tolist())
    want = set()
    for c in range(3):
        m = np.flatnonzero(idxs == c)
        want |= {int(m[i]) for i in _nms_ref(boxes[m].tolist(), scores[m].tolist(), 0.4)}
    assert got == want


def test_box_iou_and_area(ops):
    rng = np.random.default_rng(2)
    a, b = _random_boxes(rng, 7), _random_boxes(rng, 5)
    iou = ops.box_iou(torch.from_numpy(a), torch.from_numpy(b)).numpy()
    ref = np.array([[_iou_ref(x, y) for y in b.tolist()] for x in a.tolist()])
    np.testing.assert_allclose(iou, ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ops.box_area(torch.from_numpy(a)).numpy(), (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]),
                               rtol=1e-6)


def test_empty_input(ops):
    assert ops.nms(torch.zeros((0, 4)), torch.zeros((0,)), 0.5).numel() == 0


def test_installed_torchvision_works_with_ultralytics():
    """Whichever torchvision is installed (real or shim), Ultralytics' NMS path must run."""
    import torchvision

    keep = torchvision.ops.nms(torch.tensor([[0, 0, 1, 1.0], [0, 0, 1, 1.0]]), torch.tensor([1.0, 0.5]), 0.5)
    assert keep.tolist() == [0]
    if getattr(torchvision, "IS_OCCLUPOSE_SHIM", False):
        from importlib.metadata import version

        assert version("torchvision").endswith("+occlupose.cpushim")
        assert "torchvision" in sys.modules
