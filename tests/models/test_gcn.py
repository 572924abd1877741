import numpy as np
import pytest
import torch

from posecore.models.gcn import (FGMHGCN, GCNConfig, MultiHopGraphConv, hop_distances, hop_matrices,
                                 multi_hop_adjacency, normalize_adjacency, sample_joint_features)
from posecore.skeleton import COCO17

# A small tree: 0-1-2-3 with a branch 1-4.
#      0
#      |
#  4 - 1 - 2 - 3
EDGES = [(0, 1), (1, 2), (2, 3), (1, 4)]
A = np.zeros((5, 5), np.float32)
for i, j in EDGES:
    A[i, j] = A[j, i] = 1


def test_hop_matrices_by_hand():
    assert hop_distances(A).tolist() == [
        [0, 1, 2, 3, 2],
        [1, 0, 1, 2, 1],
        [2, 1, 0, 1, 2],
        [3, 2, 1, 0, 3],
        [2, 1, 2, 3, 0],
    ]
    h1, h2, h3 = hop_matrices(A, 3)
    np.testing.assert_array_equal(h1, A)
    np.testing.assert_array_equal(h2, [
        [0, 0, 1, 0, 1],
        [0, 0, 0, 1, 0],
        [1, 0, 0, 0, 1],
        [0, 1, 0, 0, 0],
        [1, 0, 1, 0, 0],
    ])
    np.testing.assert_array_equal(h3, [
        [0, 0, 0, 1, 0],
        [0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0],
        [1, 0, 0, 0, 1],
        [0, 0, 0, 1, 0],
    ])


def test_symmetric_normalisation_without_self_loops_by_hand():
    # Degrees of the 1-hop graph: 1, 3, 2, 1, 1 -> entry (i, j) = 1 / sqrt(d_i d_j).
    n1 = normalize_adjacency(A)
    s3, s2, s6 = 1 / np.sqrt(3), 1 / np.sqrt(2), 1 / np.sqrt(6)
    np.testing.assert_allclose(n1, [
        [0, s3, 0, 0, 0],
        [s3, 0, s6, 0, s3],
        [0, s6, 0, s2, 0],
        [0, 0, s2, 0, 0],
        [0, s3, 0, 0, 0],
    ], rtol=1e-6)
    assert np.all(np.diag(n1) == 0)
    # 3-hop graph: node 1 and node 2 have no neighbour at distance 3 and keep zero rows.
    n3 = multi_hop_adjacency(A, 3)[2]
    np.testing.assert_allclose(n3[0, 3], 1 / np.sqrt(1 * 2))
    np.testing.assert_array_equal(n3[1], 0)
    np.testing.assert_array_equal(n3[2], 0)


def test_power_mode_is_the_matrix_power():
    n1 = normalize_adjacency(A)
    np.testing.assert_allclose(multi_hop_adjacency(A, 3, "power"), np.stack([n1, n1 @ n1, n1 @ n1 @ n1]), atol=1e-6)


def test_graph_conv_matches_equation_3():
    torch.manual_seed(0)
    conv = MultiHopGraphConv(4, 6, A, hops=3)
    with torch.no_grad():
        conv.modulation.normal_()
        conv.bias.normal_()
    x = torch.randn(2, 5, 4)
    adj = torch.from_numpy(multi_hop_adjacency(A, 3))
    w0, w1 = conv.weight
    # Column form of the paper, M in R^{D x N}: sum_k w_k * (W0 M + W1 M A_k).
    ref = []
    for b in range(2):
        m = x[b].T  # [D_in, N]
        out = sum(conv.modulation[k].T * (w0.T @ m + w1.T @ m @ adj[k].T) for k in range(3))
        ref.append(out.T + conv.bias)
    torch.testing.assert_close(conv(x), torch.stack(ref), rtol=1e-5, atol=1e-5)


def test_fgmh_gcn_reads_features_at_the_joints_and_refines_in_stages():
    torch.manual_seed(0)
    fmap = torch.zeros(1, 3, 8, 6)
    fmap[0, :, 2, 4] = torch.tensor([1.0, 2.0, 3.0])
    # Pixel (x=4, y=2) of a 6x8 map sits at normalised ((4 + 0.5) / 3 - 1, (2 + 0.5) / 4 - 1).
    uv = torch.tensor([[[4.5 / 3 - 1, 2.5 / 4 - 1], [-1.0, -1.0]]])
    feats = sample_joint_features(fmap, uv)
    torch.testing.assert_close(feats[0, 0], torch.tensor([1.0, 2.0, 3.0]))
    assert feats[0, 1].abs().max() < 1e-6

    gcn = FGMHGCN(COCO17.adjacency, feat_channels=3, cfg=GCNConfig(hidden=16, stages=3, blocks=1))
    coords = torch.rand(2, 17, 2) * 2 - 1
    out = gcn(coords, torch.randn(2, 3, 8, 6), scores=torch.rand(2, 17))
    assert len(out["coords"]) == 3
    torch.testing.assert_close(out["coords"][-1], coords)  # zero-initialised offsets: unchanged at first
    with pytest.raises(ValueError, match="feature_map"):
        gcn(coords)
