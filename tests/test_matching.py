import pytest
import torch

from raygm.core.config import RunConfig
from raygm.core.matching import (batched_class_gradients, class_gradient, class_match_losses,
                            match_loss)
from raygm.core.models import build_model


def tiny_nets():
    yield "MLP", build_model("MLP", 1, 3, (6, 6))
    yield "ConvNet", build_model("ConvNet", 1, 3, (6, 6),
                                 RunConfig(net_width=4, net_depth=1, net_act="sigmoid").net)


@pytest.mark.parametrize("distance", ["ours", "mse", "cos"])
@pytest.mark.parametrize("name, net", list(tiny_nets()))
def test_gradient_wrt_synthetic_images_matches_finite_differences(distance, name, net):
    torch.manual_seed(0)
    net = net.double()
    params = list(net.parameters())
    real = torch.randn(5, 1, 6, 6, dtype=torch.float64)
    g_real = class_gradient(net, real, 1, params)
    syn = torch.randn(2, 1, 6, 6, dtype=torch.float64, requires_grad=True)

    def loss(s):
        return match_loss(class_gradient(net, s, 1, params, create_graph=True), g_real, distance)

    assert torch.autograd.gradcheck(loss, (syn,), eps=1e-6, atol=1e-5, rtol=1e-4)


def test_ours_ignores_biases_and_is_zero_for_equal_gradients():
    a = [torch.randn(4, 3, 3, 3), torch.randn(4)]
    assert match_loss(a, a, "ours").item() == pytest.approx(0, abs=1e-5)
    b = [a[0], torch.randn(4)]  # differs only in the 1-D tensor
    assert match_loss(b, a, "ours").item() == pytest.approx(0, abs=1e-5)
    # opposite conv rows: 1 - cos = 2 for each of the 4 output rows
    assert match_loss([-a[0], a[1]], a, "ours").item() == pytest.approx(8, rel=1e-4)


def test_mse_and_cos_on_known_values():
    r = [torch.tensor([[1.0, 0.0]]), torch.tensor([0.0])]
    s = [torch.tensor([[0.0, 1.0]]), torch.tensor([0.0])]
    assert match_loss(s, r, "mse").item() == pytest.approx(2.0)
    assert match_loss(s, r, "cos").item() == pytest.approx(1.0, rel=1e-5)


def test_unknown_distance():
    with pytest.raises(ValueError, match="ours, mse, cos"):
        match_loss([torch.ones(2, 2)], [torch.ones(2, 2)], "l1")


@pytest.mark.parametrize("distance", ["ours", "mse", "cos"])
@pytest.mark.parametrize("name, net", list(tiny_nets()))
def test_batched_classes_give_each_class_its_own_gradient_loss_and_image_gradient(distance, name,
                                                                                  net):
    """Lever batched_classes: one vmapped call gives what the per-class passes give, down to
    the gradient of the summed match losses with respect to the synthetic images (float64,
    so that the two summation orders agree to 1e-10)."""
    torch.manual_seed(0)
    net = net.double()
    params = list(net.parameters())
    real = torch.randn(3, 5, 1, 6, 6, dtype=torch.float64)
    syn = torch.randn(3, 2, 1, 6, 6, dtype=torch.float64, requires_grad=True)
    per_class = [match_loss(class_gradient(net, syn[k], k, params, create_graph=True),
                            class_gradient(net, real[k], k, params), distance) for k in range(3)]
    (expected,) = torch.autograd.grad(sum(per_class), syn)
    gradients = batched_class_gradients(net)
    with torch.no_grad():
        g_real = gradients(real)
    assert not any(g.requires_grad for g in g_real)
    for k in range(3):
        for batched, alone in zip(g_real, class_gradient(net, real[k], k, params)):
            torch.testing.assert_close(batched[k], alone, rtol=1e-10, atol=1e-12)
    losses = class_match_losses(gradients(syn), g_real, distance)
    torch.testing.assert_close(losses, torch.stack(per_class).detach(), rtol=1e-10, atol=1e-12)
    (batched,) = torch.autograd.grad(losses.sum(), syn)
    torch.testing.assert_close(batched, expected, rtol=1e-8, atol=1e-10)
    assert batched.abs().max() > 0
