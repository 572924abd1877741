import numpy as np
import torch

from posecore.codecs import HeatmapCodec, IntegralCodec

INPUT, HEATMAP = (192, 256), (48, 64)


def test_soft_argmax_recovers_gaussian_centres():
    rng = np.random.default_rng(0)
    kp = rng.uniform([12, 12], [180, 244], size=(17, 2)).astype(np.float32)
    hm = HeatmapCodec(INPUT, HEATMAP).encode(kp, np.ones(17))[0]
    coords, scores = IntegralCodec(INPUT, HEATMAP).decode(torch.from_numpy(hm)[None])
    err_hm = (coords[0].numpy() - kp) * HEATMAP[0] / INPUT[0]
    assert np.abs(err_hm).max() < 0.25
    assert scores.shape == (1, 17)


def test_decode_is_differentiable_and_pulls_towards_the_target():
    codec = IntegralCodec(INPUT, HEATMAP)
    hm = torch.zeros(1, 1, 64, 48, requires_grad=True)
    coords, _ = codec.decode(hm)
    np.testing.assert_allclose(coords.detach().numpy()[0, 0], [95.5, 127.5], atol=1e-3)  # flat map: the centre
    target = torch.tensor([[[20.0, 30.0]]])
    (coords - target).abs().sum().backward()
    g = hm.grad[0, 0]
    # Descending the gradient raises the heatmap near the target.
    assert g[30 // 4, 20 // 4] < 0 < g[60, 44]


def test_numpy_in_numpy_out_and_encode_weights():
    codec = IntegralCodec(INPUT, HEATMAP)
    coords, scores = codec.decode(np.zeros((2, 3, 64, 48), np.float32))
    assert isinstance(coords, np.ndarray) and coords.shape == (2, 3, 2) and scores.shape == (2, 3)
    target, w = codec.encode(np.array([[1, 2], [500, 2], [3, 4]], np.float32), np.array([1, 1, 0]))
    assert w.tolist() == [1, 0, 0]
    assert target[0].tolist() == [1, 2]
