import torch

from posecore.models.adam import ADAM, ADAMConfig, ChannelAttention, SpatialAttention


def test_spatial_attention_is_equation_2():
    torch.manual_seed(0)
    sa = SpatialAttention(8)
    for conv in (sa.query, sa.key):
        torch.nn.init.normal_(conv.weight, std=0.3)
    f = torch.randn(2, 8, 5, 3)
    q, k, v = (conv(f).flatten(2) for conv in (sa.query, sa.key, sa.value))  # C x N, N = 15
    s = k.transpose(1, 2) @ q  # S = K^T Q, N x N
    ref = (v @ torch.softmax(s, dim=-1).transpose(1, 2)).reshape(2, 8, 5, 3)
    torch.testing.assert_close(sa(f), ref, rtol=1e-5, atol=1e-5)


def test_channel_attention_is_equation_1_at_the_body_centre():
    torch.manual_seed(0)
    ca = ChannelAttention(4)
    fm = torch.randn(1, 4, 6, 8)
    fi = fm[0, :, 2:4, 3:5].mean((1, 2))  # the crop centre of an even-sized map: mean of the middle 4 pixels
    ref = fm * (ca.linear.weight @ fi + ca.linear.bias)[None, :, None, None]
    torch.testing.assert_close(ca(fm), ref)
    # An explicit centre reads that pixel: (x=1, y=4) of an 8x6 map.
    centre = torch.tensor([[(1 + 0.5) / 4 - 1, (4 + 0.5) / 3 - 1]])
    torch.testing.assert_close(ChannelAttention.instance_feature(fm, centre), fm[:, :, 4, 1])


def test_adam_ablations():
    fm = torch.randn(2, 8, 6, 4)
    assert ADAM(8)(fm).shape == fm.shape
    assert ADAM(8, ADAMConfig(channel=False))(fm).shape == fm.shape
    torch.testing.assert_close(ADAM(8, ADAMConfig(channel=False, spatial=False))(fm), fm)
