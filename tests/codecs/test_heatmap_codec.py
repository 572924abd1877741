import numpy as np
import pytest
import torch

from posecore.codecs import HeatmapCodec, heatmap_to_input, input_to_heatmap, input_to_normalized, normalized_to_input

INPUT, HEATMAP = (192, 256), (48, 64)


def random_joints(rng, n, size=INPUT):
    return rng.uniform([-0.5, -0.5], [size[0] - 0.5, size[1] - 0.5], size=(n, 2)).astype(np.float32)


@pytest.mark.parametrize("sigma", [1.5, 2.0, 3.0])
def test_round_trip_below_quarter_pixel_for_every_in_bounds_joint(sigma):
    rng = np.random.default_rng(0)
    codec = HeatmapCodec(INPUT, HEATMAP, sigma=sigma)
    kp = random_joints(rng, 17 * 40)
    kp[:4] = [[-0.5, -0.5], [191.5, 255.5], [0.0, 128.0], [96.0, 255.4]]  # the crop's very edges
    hms = np.stack([codec.encode(kp[i:i + 17], np.ones(17))[0] for i in range(0, len(kp), 17)])
    coords, scores = codec.decode(hms)
    err_hm = np.abs(coords.reshape(-1, 2) - kp) * (HEATMAP[0] / INPUT[0])
    assert err_hm.max() < 0.25, err_hm.max()
    assert err_hm.mean() < 0.01
    assert scores.min() > 0.5


def test_round_trip_with_blur_far_from_the_border():
    rng = np.random.default_rng(1)
    codec = HeatmapCodec(INPUT, HEATMAP, sigma=2.0, blur_kernel=11)
    kp = rng.uniform([40, 40], [150, 215], size=(17, 2)).astype(np.float32)
    coords, _ = codec.decode(codec.encode(kp, np.ones(17))[0][None])
    assert np.abs(coords[0] - kp).max() * 0.25 < 0.25


def test_plain_argmax_is_worse_than_taylor_refinement():
    rng = np.random.default_rng(2)
    kp = random_joints(rng, 17)
    dark, plain = HeatmapCodec(INPUT, HEATMAP), HeatmapCodec(INPUT, HEATMAP, refine="none")
    hm = dark.encode(kp, np.ones(17))[0][None]
    assert np.abs(dark.decode(hm)[0] - kp).mean() < np.abs(plain.decode(hm)[0] - kp).mean()


def test_weights_drop_unlabelled_and_out_of_crop_joints():
    codec = HeatmapCodec(INPUT, HEATMAP)
    kp = np.array([[10, 10], [50, 60], [-3, 10], [100, 300], [np.nan, 5]], np.float32)
    vis = np.array([2, 0, 1, 1, 1])  # COCO flags: 2 visible, 1 occluded but labelled, 0 unlabelled
    hm, w = codec.encode(kp, vis)
    assert hm.shape == (5, 64, 48) and hm.dtype == np.float32
    assert w.tolist() == [1, 0, 0, 0, 0]
    assert hm[1:].max() == 0 and hm[0].max() > 0.9


def test_encode_multi_is_the_max_over_people():
    codec = HeatmapCodec(INPUT, HEATMAP)
    kp = np.array([[[20, 30]], [[150, 200]]], np.float32)
    multi = codec.encode_multi(kp, np.ones((2, 1)))
    single = [codec.encode(kp[p], np.ones(1))[0] for p in range(2)]
    np.testing.assert_allclose(multi, np.maximum(*single))
    assert codec.encode_multi(np.zeros((0, 17, 2)), np.zeros((0, 17))).shape == (17, 64, 48)


def test_decode_accepts_tensors_and_unbatched_maps():
    codec = HeatmapCodec(INPUT, HEATMAP)
    kp = np.array([[33.3, 77.7], [120.2, 10.9]], np.float32)
    hm = codec.encode(kp, np.ones(2))[0]
    c_np, s_np = codec.decode(hm)
    c_t, s_t = codec.decode(torch.from_numpy(hm)[None].half())
    assert c_np.shape == (2, 2) and c_t.shape == (1, 2, 2)
    np.testing.assert_allclose(c_np, kp, atol=0.05)
    np.testing.assert_allclose(c_t[0], kp, atol=0.3)  # fp16 heatmaps


def test_grid_conventions_agree():
    xy = np.array([[-0.5, -0.5], [191.5, 255.5], [95.5, 127.5]], np.float32)
    np.testing.assert_allclose(input_to_normalized(xy, INPUT), [[-1, -1], [1, 1], [0, 0]], atol=1e-6)
    np.testing.assert_allclose(normalized_to_input(input_to_normalized(xy, INPUT), INPUT), xy, atol=1e-4)
    hm = input_to_heatmap(xy, INPUT, HEATMAP)
    np.testing.assert_allclose(hm, [[-0.5, -0.5], [47.5, 63.5], [23.5, 31.5]], atol=1e-6)
    np.testing.assert_allclose(heatmap_to_input(hm, INPUT, HEATMAP), xy, atol=1e-5)
    t = torch.tensor(xy, requires_grad=True)
    input_to_normalized(t, INPUT).sum().backward()
    assert t.grad is not None


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError):
        HeatmapCodec(sigma=0)
    with pytest.raises(ValueError):
        HeatmapCodec(blur_kernel=4)
    with pytest.raises(ValueError):
        HeatmapCodec().encode(np.zeros((3, 2)), np.ones(2))
