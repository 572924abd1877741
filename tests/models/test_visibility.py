import torch

from posecore.models.visibility import VisibilityConfig, VisibilityReasoning

K, D = 6, 16


def _module():
    torch.manual_seed(0)
    return VisibilityReasoning(D, K, VisibilityConfig(enabled=True, dim=32, depth=2, heads=4)).eval()


def test_mask_is_one_for_visible_and_a_hundredth_for_occluded():
    m = _module()
    logits = torch.tensor([[3.0, -3.0, 0.0, -0.01, 10.0, -10.0]])
    torch.testing.assert_close(m.mask(logits), torch.tensor([[1.0, 0.01, 1.0, 0.01, 1.0, 0.01]]))
    gt = torch.tensor([[0, 1, 1, 0, 0, 1]])
    torch.testing.assert_close(m.mask(logits, gt), torch.tensor([[0.01, 1.0, 1.0, 0.01, 0.01, 1.0]]))


def test_occluded_features_are_suppressed():
    m = _module()
    x = torch.randn(1, K, D)
    occluded = torch.tensor([[1, 1, 1, 0, 0, 0]])
    all_visible = torch.ones(1, K)
    noise = torch.zeros(1, K, D)
    noise[:, 3:] = torch.randn(1, 3, D)  # different features, of the usual size, on the occluded joints
    with torch.no_grad():
        masked_change = (m(x + noise, occluded)[0] - m(x, occluded)[0])[:, :3].abs().max()
        open_change = (m(x + noise, all_visible)[0] - m(x, all_visible)[0])[:, :3].abs().max()
    # Visible joints barely notice what happens at occluded ones once those are masked.
    assert masked_change < 0.05 * open_change, (masked_change, open_change)


def test_masked_tokens_enter_the_transformer_scaled():
    m = _module()
    seen = {}
    m.proj.register_forward_pre_hook(lambda mod, inp: seen.update(x=inp[0]))
    x = torch.randn(1, K, D)
    with torch.no_grad():
        m(x, torch.tensor([[1, 0, 1, 0, 1, 0]]))
    torch.testing.assert_close(seen["x"], x * torch.tensor([1, 0.01, 1, 0.01, 1, 0.01])[None, :, None])


def test_visnet_gradient_does_not_reach_the_features():
    m = _module().train()
    x = torch.randn(2, K, D, requires_grad=True)
    _, logits = m(x)
    torch.nn.functional.binary_cross_entropy_with_logits(logits, torch.ones_like(logits)).backward()
    assert x.grad is None or x.grad.abs().max() == 0
    assert m.visnet.mlp[0].weight.grad.abs().max() > 0
    x2 = torch.randn(2, K, D, requires_grad=True)
    m(x2)[0].sum().backward()  # the reasoning path does train the features
    assert x2.grad.abs().max() > 0
