import numpy as np
import pytest
import torch
import torch.nn as nn

from posecore.estimators.crops import box_to_center_scale
from posecore.estimators.topdown import TopDownEstimator
from posecore.models import build_model
from posecore.models.base import TopDownPoseModel
from posecore.skeleton import COCO17
from posecore.types import Detections
from posecore.weights import save_checkpoint

SIZE = (192, 256)


def _offsets() -> torch.Tensor:
    """Crop-pixel offset of each joint from the blob: mirror-consistent, left and right apart."""
    off = torch.zeros(17, 2)
    off[0] = torch.tensor([0.0, -20.0])
    for i, (a, b) in enumerate(COCO17.flip_pairs):
        off[a] = torch.tensor([6.0 + i, 4.0 * i])
        off[b] = torch.tensor([-6.0 - i, 4.0 * i])
    return off


class BlobModel(TopDownPoseModel):
    """A stand-in network that 'sees' the brightest blob and puts joint j at blob + offset_j.

    It behaves like a perfect pose model: mirroring the crop mirrors the pose with left and right swapped.
    """

    def __init__(self, with_coords: bool):
        super().__init__("coco17", SIZE)
        self.unused = nn.Parameter(torch.zeros(()))
        self.with_coords = with_coords

    def forward(self, x):
        v = x.float().sum(1)
        v = (v - v.amin((1, 2), keepdim=True)) ** 2  # squared: background at zero dominates less
        ys, xs = torch.meshgrid(torch.arange(v.shape[1]), torch.arange(v.shape[2]), indexing="ij")
        total = v.sum((1, 2))
        centroid = torch.stack(((v * xs).sum((1, 2)) / total, (v * ys).sum((1, 2)) / total), -1)
        coords = centroid[:, None] + _offsets()
        hms = np.stack([self.codec.encode(c, np.ones(17))[0] for c in coords.numpy()])
        out = {"heatmaps": torch.from_numpy(hms)}
        if self.with_coords:
            out["coords"] = [coords + 100, coords]  # only the last stage counts
        return out


def _frame_with_blob(center=(123.4, 156.7), sigma=2.0):
    ys, xs = np.mgrid[:300, :400]
    blob = np.exp(-((xs - center[0]) ** 2 + (ys - center[1]) ** 2) / (2 * sigma**2))
    return np.repeat((blob * 255).round().astype(np.uint8)[..., None], 3, -1)


@pytest.mark.parametrize("with_coords", [False, True])
@pytest.mark.parametrize("flip_test", [False, True])
def test_poses_land_where_they_are_in_the_image(with_coords, flip_test):
    frame = _frame_with_blob()
    boxes = np.array([[60, 70, 210, 270], [100, 140, 160, 180]], np.float32)  # two crops, two zooms
    est = TopDownEstimator(BlobModel(with_coords), device="cpu", flip_test=flip_test)
    poses = est.estimate(frame, Detections(boxes, np.array([0.9, 0.8])))
    assert poses.keypoints.shape == (2, 17, 3) and poses.skeleton == "coco17"
    _, scales = box_to_center_scale(boxes, SIZE)
    expected = np.array([123.4, 156.7]) + _offsets().numpy()[None] * (scales / np.array(SIZE))[:, None]
    np.testing.assert_allclose(poses.keypoints[..., :2], expected, atol=0.35)
    np.testing.assert_allclose(poses.scores, [0.9, 0.8])
    assert poses.seen.all() and (poses.keypoints[..., 2] > 0.9).all()


def test_seen_threshold_and_empty_frames():
    est = TopDownEstimator(BlobModel(False), device="cpu", seen_threshold=1.01)
    poses = est.estimate(_frame_with_blob(), Detections(np.array([[60, 70, 210, 270]]), np.array([1.0])))
    assert not poses.seen.any()
    empty = est.estimate(_frame_with_blob(), Detections.empty())
    assert len(empty) == 0 and empty.keypoints.shape == (0, 17, 3)


def test_a_checkpoint_runs_on_a_real_image(tmp_path, shared_data):
    import cv2
    import json

    folder = shared_data / "coco_sample"
    if not folder.exists():
        pytest.skip("coco_sample not available")
    anns = json.loads((folder / "test_coco.json").read_text())
    image = next(i for i in anns["images"] if (folder / i["file_name"]).exists())
    frame = cv2.imread(str(folder / image["file_name"]))
    boxes = [a["bbox"] for a in anns["annotations"] if a["image_id"] == image["id"]]
    boxes = np.array([[x, y, x + w, y + h] for x, y, w, h in boxes], np.float32)
    torch.manual_seed(0)
    model = build_model({"name": "dag_hrnet_small", "input_size": [96, 128]})
    path = save_checkpoint(tmp_path / "dag.pt", model)
    est = TopDownEstimator.from_checkpoint(path, device="cpu", flip_test=True, seen_threshold=0.2)
    poses = est.estimate(frame, Detections(boxes, np.ones(len(boxes))))
    assert poses.keypoints.shape == (len(boxes), 17, 3) and np.isfinite(poses.keypoints).all()
    centers, scales = box_to_center_scale(boxes, (96, 128))
    inside = np.abs(poses.keypoints[..., :2] - centers[:, None]) <= scales[:, None] / 2 + 1
    assert inside.all()  # every joint within its person's crop region
