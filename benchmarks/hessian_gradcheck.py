"""Finite-difference check of each higher-order term's gradient w.r.t. the synthetic images.

float64, tiny MLP and tiny ConvNet; central differences (eps 1e-6) against autograd. Prints
the largest absolute and relative error per mode.

    python benchmarks/hessian_gradcheck.py
"""
import torch

from raygm.core.config import RunConfig
from raygm.core.higher_order import higher_order_term, needs_real_graph
from raygm.core.matching import class_gradient
from raygm.core.models import build_model

MODES = [("curvature", "gauss_newton"), ("curvature", "exact"), ("hvp", "gauss_newton")]


def main(eps: float = 1e-6) -> None:
    print("| net | mode | max |analytic − numeric| | max relative error | max |gradient| |")
    print("|---|---|---|---|---|")
    for name in ("MLP", "ConvNet"):
        torch.manual_seed(0)
        net = (build_model("MLP", 1, 3, (4, 4)) if name == "MLP" else build_model(
            "ConvNet", 1, 3, (4, 4), RunConfig(net_width=3, net_depth=1, net_act="sigmoid").net))
        net = net.double()
        params = list(net.parameters())
        real = torch.randn(6, 1, 4, 4, dtype=torch.float64)
        syn = torch.randn(2, 1, 4, 4, dtype=torch.float64)
        for mode, curvature in MODES:
            def term(s):
                torch.manual_seed(1)  # fixed hvp probes
                g_real = class_gradient(net, real, 2, params,
                                        create_graph=needs_real_graph(mode, curvature))
                g_syn = class_gradient(net, s, 2, params, create_graph=True)
                return higher_order_term(mode, curvature, net, params, real, g_real, g_syn, 2)

            s = syn.clone().requires_grad_(True)
            analytic, = torch.autograd.grad(term(s), s)
            numeric = torch.zeros_like(syn).flatten()
            for i in range(syn.numel()):
                d = torch.zeros_like(syn).flatten()
                d[i] = eps
                d = d.view_as(syn)
                numeric[i] = (term(syn + d).item() - term(syn - d).item()) / (2 * eps)
            err = (analytic.flatten() - numeric).abs()
            rel = err / numeric.abs().clamp_min(1e-8)
            label = mode if mode == "hvp" else f"curvature ({curvature})"
            print(f"| {name} | {label} | {err.max():.2e} | {rel.max():.2e} | "
                  f"{analytic.abs().max():.2e} |")


if __name__ == "__main__":
    main()
