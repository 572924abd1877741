import numpy as np
import torch

from posecore.models import build_model
from posecore.models.couplegraph import assign_pairs, box_iou, couple_adjacency, select_pairs
from posecore.skeleton import COCO17


def test_couple_adjacency_joins_corresponding_joints():
    a = couple_adjacency(COCO17.adjacency)
    k = 17
    assert a.shape == (34, 34) and np.array_equal(a, a.T)
    np.testing.assert_array_equal(a[:k, :k], COCO17.adjacency)
    np.testing.assert_array_equal(a[k:, k:], COCO17.adjacency)
    np.testing.assert_array_equal(a[:k, k:], np.eye(k))
    assert a.sum() == 2 * COCO17.adjacency.sum() + 2 * k


def _randomise(model):
    torch.manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)  # also moves the zero-initialised output layer
    return model


def _pair_inputs(p=4, k=17, c=5):
    torch.manual_seed(0)
    kp = torch.rand(p, 2, k, 3) * torch.tensor([200.0, 300.0, 1.0])
    boxes = torch.cat((kp[..., :2].amin(2) - 5, kp[..., :2].amax(2) + 5), -1)
    return kp, boxes, torch.randn(p, 2, k, c)


def test_swapping_the_two_people_swaps_the_result():
    model = _randomise(build_model({"name": "couplegraph", "feat_channels": 5, "hidden": 32}))
    kp, boxes, feats = _pair_inputs()
    swap = [1, 0]
    for mode in (model.train, model.eval):
        mode()
        out = model(kp, boxes, feats)
        out_swapped = model(kp[:, swap], boxes[:, swap], feats[:, swap])
        torch.testing.assert_close(out_swapped, out[:, swap], rtol=1e-5, atol=1e-4)
    assert not torch.allclose(out, kp[..., :2])  # it does move joints


def test_fresh_couplegraph_keeps_the_poses_and_missing_features_read_as_zeros():
    model = build_model({"name": "couplegraph", "feat_channels": 5}).eval()
    kp, boxes, _ = _pair_inputs()
    torch.testing.assert_close(model(kp, boxes), kp[..., :2], rtol=1e-5, atol=1e-3)


def test_pairs_by_iou_and_the_one_result_per_person_rule():
    boxes = np.array([
        [0, 0, 100, 100],  # 0
        [10, 0, 110, 100],  # 1: IoU with 0 = 90/110
        [50, 0, 150, 100],  # 2: IoU with 1 = 60/140, with 0 = 50/150
        [500, 500, 600, 600],  # 3: alone
    ], np.float32)
    iou = box_iou(boxes, boxes)
    np.testing.assert_allclose(np.diag(iou), 1)
    pairs, ious = select_pairs(boxes, iou_threshold=0.3)
    assert pairs.tolist() == [[0, 1], [1, 2], [0, 2]]
    np.testing.assert_allclose(ious, [90 / 110, 60 / 140, 50 / 150], rtol=1e-5)
    best, slot = assign_pairs(pairs, ious, 4)
    # 0 and 1 keep their mutual pair (largest IoU); 2 keeps (1, 2) in the second slot; 3 is unpaired.
    assert best.tolist() == [0, 0, 1, -1]
    assert slot.tolist() == [0, 1, 1, 0]
    assert select_pairs(boxes, 0.5)[0].tolist() == [[0, 1]]
    assert select_pairs(boxes, 0.3, max_pairs=1)[0].tolist() == [[0, 1]]
    assert select_pairs(boxes[:1], 0.3)[0].shape == (0, 2)
