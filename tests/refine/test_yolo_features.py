"""The feature tap: hooks catch the head's inputs, image points land on the right cells of the maps."""

from __future__ import annotations

import copy
import threading

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from posecore.ultralytics_env import import_ultralytics
from posecore.yolo_features import Letterbox, YoloFeatures, YoloFeatureTap, local_grid

import_ultralytics()  # before the Ultralytics modules below: our settings folder, not ~/.config/Ultralytics


class _Head(nn.Module):
    def forward(self, x):
        x[0] = x[0] * 0  # the real head rewrites its input list in place; the tap must keep the neck's maps
        return torch.cat([m.flatten(2) for m in x], 2)


class _Net(nn.Module):
    """Stands in for a YOLO pose model: ``.model`` ends with the head, fed maps at strides 8, 16, 32."""

    def __init__(self):
        super().__init__()
        self.model = nn.Sequential(nn.Identity(), _Head())

    def forward(self, x):
        maps = [F.avg_pool2d(x, s) for s in (8, 16, 32)]
        return self.model[-1](maps)


def _letterboxed(frame: np.ndarray, imgsz: int = 640) -> torch.Tensor:
    """The frame as Ultralytics' predictor feeds it (its own LetterBox, rectangular, stride 32)."""
    from ultralytics.data.augment import LetterBox

    im = LetterBox((imgsz, imgsz), auto=True, stride=32)(image=frame)
    return torch.from_numpy(np.ascontiguousarray(im.transpose(2, 0, 1)))[None].float()


def _ramp(h: int, w: int) -> np.ndarray:
    """float32[h, w, 3]: channel 0 holds each pixel centre's x, channel 1 its y (continuous coordinates)."""
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32) + 0.5
    return np.stack([xs, ys, np.zeros_like(xs)], -1)


@pytest.mark.parametrize("h, w", [(333, 500), (500, 333), (1080, 1920), (360, 480)])
def test_sampled_features_come_from_the_letterboxed_location_of_each_image_point(h, w):
    """Maps that hold the image's own coordinates give those coordinates back wherever they are read: the
    image -> letterbox -> map -> grid_sample chain is exact, whatever the frame's shape and padding."""
    net = _Net()
    tap = YoloFeatureTap(net)
    x = _letterboxed(_ramp(h, w))
    net(x)
    feats = tap.take()
    assert feats is not None and feats.input_hw == tuple(x.shape[-2:]) and feats.channels == (3, 3, 3)
    rng = np.random.default_rng(0)
    margin = 40 / feats.letterbox((h, w)).gain_x  # away from the edges, where resizing clamps
    pts = np.stack([rng.uniform(margin, w - margin, 50), rng.uniform(margin, h - margin, 50)], -1)
    got = feats.sample(pts.reshape(5, 10, 2), (h, w)).numpy()  # [5, 10, 9]: 3 channels x 3 maps
    for level in range(3):
        np.testing.assert_allclose(got[..., 3 * level:3 * level + 2].reshape(-1, 2), pts, atol=0.05)


def test_the_local_grid_is_read_around_each_point_in_input_pixel_steps():
    h, w = 333, 500
    net = _Net()
    tap = YoloFeatureTap(net)
    net(_letterboxed(_ramp(h, w)))
    feats = tap.take()
    pts = np.array([[[120.0, 150.0], [300.5, 200.25]]])
    grid, step = feats.sample_grid(pts, (h, w), radius=2, step=4.0)
    assert grid.shape == (1, 2, 25, 3)
    lb = feats.letterbox((h, w))
    assert step == pytest.approx(4.0 / lb.gain_x, rel=1e-3)
    offsets = local_grid(2).numpy() * step  # image pixels
    np.testing.assert_allclose(grid[0, :, :, :2].numpy(), pts[0][:, None] + offsets[None], atol=0.05)


def test_letterbox_inverts_ultralytics_scale_boxes():
    from ultralytics.utils import ops

    rng = np.random.default_rng(1)
    for _ in range(20):
        fh, fw = int(rng.integers(50, 2000)), int(rng.integers(50, 2000))
        ih, iw = _letterboxed(np.zeros((fh, fw, 3), np.uint8), 640).shape[-2:]
        lb = Letterbox.from_shapes((ih, iw), (fh, fw))
        pts = torch.tensor(rng.uniform(0, [fw, fh], (8, 2)), dtype=torch.float32)
        back = ops.scale_coords((ih, iw), lb.to_input(pts).clone(), (fh, fw))
        np.testing.assert_allclose(back.numpy(), pts.numpy(), atol=1e-3)


def test_a_pass_without_the_head_leaves_nothing_and_take_forgets():
    net = _Net()
    tap = YoloFeatureTap(net)
    assert tap.take() is None
    net(torch.zeros(1, 3, 64, 64))
    assert tap.take() is not None and tap.take() is None
    tap.close()
    net(torch.zeros(1, 3, 64, 64))
    assert tap.take() is None


def test_a_deep_copy_made_after_the_tap_reports_to_it():
    """Ultralytics' predictor runs a deep copy of the model: the copy's passes must reach the tap."""
    net = _Net()
    tap = YoloFeatureTap(net)
    twin = copy.deepcopy(net)
    twin(torch.zeros(1, 3, 96, 64))
    got = tap.take()
    assert got is not None and got.input_hw == (96, 64)


def test_each_thread_takes_its_own_frame():
    net = _Net()
    tap = YoloFeatureTap(net)
    sizes = {0: (64, 96), 1: (128, 64), 2: (96, 96)}
    seen: dict[int, tuple[int, int] | None] = {}
    barrier = threading.Barrier(len(sizes))

    def work(i: int) -> None:
        net(torch.zeros(1, 3, *sizes[i]))
        barrier.wait()  # every thread has run before any takes
        got = tap.take()
        seen[i] = None if got is None else got.input_hw

    threads = [threading.Thread(target=work, args=(i,)) for i in sizes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == sizes


def test_traced_graph_returns_the_same_maps_and_record_stores_them():
    net = _Net().eval()
    tap = YoloFeatureTap(net)
    x = torch.rand(1, 3, 64, 96)
    net(x)
    eager = tap.take()
    graph = torch.jit.freeze(torch.jit.trace(tap.traceable(net).eval(), x, check_trace=False).eval())
    assert tap.take() is None  # tracing is not a frame
    out = graph(x)
    assert len(out) == 4
    tap.record(out[1:], x.shape)
    traced = tap.take()
    assert traced.input_hw == eager.input_hw
    for a, b in zip(traced.maps, eager.maps):
        torch.testing.assert_close(a, b)


def test_sample_reads_the_border_for_points_off_the_input():
    m = torch.arange(16, dtype=torch.float32).reshape(1, 1, 4, 4)
    feats = YoloFeatures((m,), (32, 32))
    got = feats.sample(np.array([[-100.0, 4.0], [100.0, 4.0]]), (32, 32))
    assert got[0, 0].item() == 0.0 and got[1, 0].item() == 3.0
