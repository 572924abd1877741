import numpy as np
import pytest

from posecore.skeleton import COCO17, CROWDPOSE14, coco17_to_crowdpose14, crowdpose14_to_coco17, get_skeleton


@pytest.mark.parametrize("sk", [COCO17, CROWDPOSE14])
def test_flip_pairs_are_left_right_partners(sk):
    for a, b in sk.flip_pairs:
        na, nb = sk.joints[a], sk.joints[b]
        assert na.startswith("left_") and nb == "right_" + na[len("left_"):]
    # every left_/right_ joint has a partner, and flipping twice is the identity
    sided = [n for n in sk.joints if n.startswith(("left_", "right_"))]
    assert len(sided) == 2 * len(sk.flip_pairs)
    np.testing.assert_array_equal(sk.flip_index[sk.flip_index], np.arange(sk.num_joints))


@pytest.mark.parametrize("sk", [COCO17, CROWDPOSE14])
def test_limbs_connect_the_whole_body(sk):
    # the bone graph is connected: every joint reachable from joint 0
    adj = sk.adjacency
    assert (adj == adj.T).all() and (np.diag(adj) == 0).all()
    seen, todo = {0}, [0]
    while todo:
        for j in np.flatnonzero(adj[todo.pop()]):
            if j not in seen:
                seen.add(int(j))
                todo.append(int(j))
    assert seen == set(range(sk.num_joints))


def test_oks_sigmas_match_coco_and_crowdpose():
    # CrowdPose body joints share COCO's sigmas
    np.testing.assert_allclose(CROWDPOSE14.sigmas_array[:12], COCO17.sigmas_array[5:])
    assert COCO17.sigmas_array[COCO17.index("nose")] == pytest.approx(0.026)
    assert COCO17.sigmas_array[COCO17.index("left_hip")] == pytest.approx(0.107)


def test_mapping_between_skeletons():
    rng = np.random.default_rng(0)
    coco = rng.uniform(0, 100, (3, 17, 3)).astype(np.float32)
    coco[..., 2] = rng.uniform(0.1, 1, (3, 17))
    cp = coco17_to_crowdpose14(coco)
    for j, name in enumerate(CROWDPOSE14.joints[:12]):
        np.testing.assert_array_equal(cp[:, j], coco[:, COCO17.index(name)])
    np.testing.assert_allclose(cp[:, 13, :2], coco[:, 5:7, :2].mean(1))  # neck = shoulders' midpoint
    # the head lies beyond the face centre, away from the neck
    face = coco[:, :5, :2].mean(1)
    assert (np.linalg.norm(cp[:, 12, :2] - cp[:, 13, :2], axis=1) > np.linalg.norm(face - cp[:, 13, :2], axis=1)).all()
    back = crowdpose14_to_coco17(cp)
    np.testing.assert_array_equal(back[:, 5:], coco[:, 5:])
    assert (back[:, :5, 2] == 0).all()


def test_unknown_skeleton_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown skeleton"):
        get_skeleton("mpii16")
