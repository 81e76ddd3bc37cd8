import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call

from raygm.core.config import ConfigError, RunConfig
from raygm.core.distill import Distillation
from raygm.core.higher_order import (exact_quadratic, gauss_newton_quadratic, higher_order_term,
                                needs_real_graph)
from raygm.core.matching import class_gradient
from raygm.core.models import build_model

MODES = [("curvature", "gauss_newton"), ("curvature", "exact"), ("hvp", "gauss_newton")]


def tiny_net(name):
    torch.manual_seed(0)
    if name == "MLP":
        net = build_model("MLP", 1, 3, (4, 4))
    else:
        net = build_model("ConvNet", 1, 3, (4, 4),
                          RunConfig(net_width=3, net_depth=1, net_act="sigmoid").net)
    return net.double()


@pytest.mark.parametrize("mode, curvature", MODES)
@pytest.mark.parametrize("name", ["MLP", "ConvNet"])
def test_term_gradient_wrt_synthetic_images_matches_finite_differences(mode, curvature, name):
    net = tiny_net(name)
    params = list(net.parameters())
    real = torch.randn(6, 1, 4, 4, dtype=torch.float64)
    syn = torch.randn(1, 1, 4, 4, dtype=torch.float64, requires_grad=True)

    def term(s):
        torch.manual_seed(1)  # the same hvp probes at every evaluation
        g_real = class_gradient(net, real, 2, params,
                                create_graph=needs_real_graph(mode, curvature))
        g_syn = class_gradient(net, s, 2, params, create_graph=True)
        return higher_order_term(mode, curvature, net, params, real, g_real, g_syn, probes=2)

    grad, = torch.autograd.grad(term(syn), syn)
    assert grad.abs().max() > 1e-8  # the term reaches the images (the seed's did not)
    assert torch.autograd.gradcheck(term, (syn,), eps=1e-6, atol=1e-6, rtol=1e-4)


def _flat_loss(net, real, label):
    names = [n for n, _ in net.named_parameters()]
    shapes = [p.shape for p in net.parameters()]

    def loss(flat):
        chunks = torch.split(flat, [s.numel() for s in shapes])
        p = {n: c.view(s) for n, c, s in zip(names, chunks, shapes)}
        logits = functional_call(net, p, (real,))
        return F.cross_entropy(logits, torch.full((len(real),), label))
    return loss, torch.cat([p.detach().flatten() for p in net.parameters()]), shapes


def test_quadratic_forms_equal_explicit_matrices():
    net = tiny_net("ConvNet")
    params = list(net.parameters())
    real = torch.randn(5, 1, 4, 4, dtype=torch.float64)
    loss, flat, shapes = _flat_loss(net, real, 1)
    v_flat = torch.randn_like(flat)
    v = [c.view(s) for c, s in zip(torch.split(v_flat, [s.numel() for s in shapes]), shapes)]
    H = torch.autograd.functional.hessian(loss, flat)
    g_real = class_gradient(net, real, 1, params, create_graph=True)
    assert exact_quadratic(g_real, params, v).item() == pytest.approx((v_flat @ H @ v_flat).item(),
                                                                      rel=1e-8)
    # Gauss-Newton: mean over images of J_nᵀ (diag p − ppᵀ) J_n
    names = [n for n, _ in net.named_parameters()]

    def logits_of(flat_params):
        chunks = torch.split(flat_params, [s.numel() for s in shapes])
        return functional_call(net, {n: c.view(s) for n, c, s in zip(names, chunks, shapes)},
                               (real,))
    J = torch.autograd.functional.jacobian(logits_of, flat)  # (N, C, P)
    p = F.softmax(logits_of(flat), 1)
    G = sum(J[n].T @ (torch.diag(p[n]) - torch.outer(p[n], p[n])) @ J[n]
            for n in range(len(real))) / len(real)
    assert gauss_newton_quadratic(net, params, real, v).item() == pytest.approx(
        (v_flat @ G @ v_flat).item(), rel=1e-8)


def test_exact_curvature_can_be_negative_gauss_newton_cannot():
    net = tiny_net("ConvNet")
    params = list(net.parameters())
    real = torch.randn(5, 1, 4, 4, dtype=torch.float64)
    exact, gn = [], []
    for seed in range(40):
        torch.manual_seed(seed)
        v = [torch.randn_like(p) for p in params]
        g_real = class_gradient(net, real, 1, params, create_graph=True)
        exact.append(exact_quadratic(g_real, params, v).item())
        gn.append(gauss_newton_quadratic(net, params, real, v).item())
    assert min(exact) < 0 < min(gn)


def distil(tiny_config, tiny_data, **changes):
    d = Distillation(tiny_config.replace(**changes), tiny_data)
    records = [d.step() for _ in range(2)]
    return d.images.detach(), records


@pytest.mark.parametrize("mode", ["curvature", "hvp"])
def test_weight_zero_equals_none_and_positive_weight_changes_the_update(mode, tiny_config,
                                                                          tiny_data):
    none, _ = distil(tiny_config, tiny_data, hessian="none")
    zero, _ = distil(tiny_config, tiny_data, hessian=mode, hessian_weight=0.0)
    assert torch.equal(none, zero)
    for curvature in ("gauss_newton", "exact") if mode == "curvature" else ("gauss_newton",):
        on, records = distil(tiny_config, tiny_data, hessian=mode, hessian_weight=10.0,
                             hessian_curvature=curvature)
        assert not torch.allclose(on, none)
        r = records[-1]
        assert r.loss_higher != 0 and r.loss == pytest.approx(r.loss_first + r.loss_higher)


@pytest.mark.parametrize("distance", ["ours", "mse", "cos"])
def test_every_distance_combines_with_each_mode(distance, tiny_config, tiny_data):
    for mode in ("curvature", "hvp"):
        _, records = distil(tiny_config, tiny_data, distance=distance, hessian=mode,
                            hessian_weight=0.1, hessian_probes=2 if mode == "hvp" else 1)
        assert all(torch.isfinite(torch.tensor(r.loss)) for r in records)


@pytest.mark.parametrize("changes, field", [
    ({"hessian": "diagonal"}, "hessian"), ({"hessian_weight": -0.1}, "hessian_weight"),
    ({"hessian_probes": 0}, "hessian_probes"), ({"hessian_curvature": "fisher"},
                                                "hessian_curvature")])
def test_invalid_hessian_settings(changes, field):
    with pytest.raises(ConfigError) as err:
        RunConfig(**changes)
    assert err.value.field == field and "allowed" in str(err.value)
