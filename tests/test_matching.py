import pytest
import torch

from raygm.config import RunConfig
from raygm.matching import class_gradient, match_loss
from raygm.models import build_model


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
