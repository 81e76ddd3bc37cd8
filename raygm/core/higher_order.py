"""Higher-order (Hessian) matching terms that reach the synthetic images.

The seed study added λ·vᵀHv with v = g_real − g_syn but detached v and H·v, so the term was
a constant. Here both terms keep v's dependence on the synthetic images S:

* curvature: λ·vᵀ H_real v. With `exact`, H is the Hessian of the real loss and the term
  is computed as 2·v·stop(H v) − stop(vᵀHv): its value is vᵀHv and its gradient is exactly
  2 (∂v/∂S)ᵀ H v, at the price of one Hessian-vector product of the real loss (no graph
  through it). vᵀHv can be negative (H of a network loss is indefinite), which makes the
  term unbounded below: minimising it can push v along negative-curvature directions
  instead of shrinking it. The default, `gauss_newton`, uses the Gauss–Newton matrix
  G = Jᵀ H_out J (J: d logits / d params, H_out = diag(p) − ppᵀ of the softmax), which is
  positive semi-definite, so vᵀGv ≥ 0 is a curvature-weighted squared length of v. It costs
  a Jacobian-vector and a vector-Jacobian product over the real batch.
* hvp: λ·mean over k Rademacher probes u of ||H_syn u − H_real u||², matching curvature
  directly (always ≥ 0).
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .choices import Choices


def _dot(a: Sequence[torch.Tensor], b: Sequence[torch.Tensor]) -> torch.Tensor:
    return sum((x * y).sum() for x, y in zip(a, b))


def _quadratic(v: Sequence[torch.Tensor], mv: Sequence[torch.Tensor]) -> torch.Tensor:
    """Value vᵀMv, gradient 2(∂v)ᵀMv, given Mv computed from a detached v (M symmetric)."""
    vmv = _dot(v, mv)
    return 2 * vmv - vmv.detach()


def gauss_newton_quadratic(net: nn.Module, params: Sequence[torch.Tensor], real: torch.Tensor,
                           v: Sequence[torch.Tensor]) -> torch.Tensor:
    """vᵀGv for the cross-entropy's Gauss–Newton matrix on the real batch, with the exact
    gradient in v (same surrogate as exact_quadratic). Jv comes from the double-backward
    trick (d/du of uᵀJv), which measured faster here than forward-mode jvp."""
    logits = net(real)
    u = torch.zeros_like(logits, requires_grad=True)
    jt_u = torch.autograd.grad(logits, params, u, create_graph=True)
    jv, = torch.autograd.grad(_dot(jt_u, [x.detach() for x in v]), u)
    p = F.softmax(logits.detach(), dim=1)
    # (diag p − ppᵀ) Jv per image, averaged over the batch like the loss
    h_jv = (p * jv - p * (p * jv).sum(1, keepdim=True)) / len(real)
    return _quadratic(v, torch.autograd.grad(logits, params, h_jv))


def exact_quadratic(g_real_graph: Sequence[torch.Tensor], params: Sequence[torch.Tensor],
                    v: Sequence[torch.Tensor]) -> torch.Tensor:
    """vᵀ H_real v with the exact gradient in v, from one Hessian-vector product."""
    return _quadratic(v, torch.autograd.grad(_dot(g_real_graph, [x.detach() for x in v]),
                                             params))


def rademacher_probes(params: Sequence[torch.Tensor], k: int) -> list[list[torch.Tensor]]:
    """k random ±1 vectors in parameter space (from the global random stream)."""
    return [[torch.randint(0, 2, p.shape, device=p.device).to(p.dtype) * 2 - 1 for p in params]
            for _ in range(k)]


def hvp_mismatch(g_syn: Sequence[torch.Tensor], g_real_graph: Sequence[torch.Tensor],
                 params: Sequence[torch.Tensor],
                 probes: Sequence[Sequence[torch.Tensor]]) -> torch.Tensor:
    """mean over probes u of ||H_syn u − H_real u||²."""
    total = 0
    for u in probes:
        h_syn = torch.autograd.grad(_dot(g_syn, u), params, create_graph=True)
        h_real = torch.autograd.grad(_dot(g_real_graph, u), params, retain_graph=True)
        total = total + sum(((s - r) ** 2).sum() for s, r in zip(h_syn, h_real))
    return total / len(probes)


def _curvature(curvature, net, params, real, g_real, g_syn, probes):
    v = [r.detach() - s for r, s in zip(g_real, g_syn)]
    if curvature == "gauss_newton":
        return gauss_newton_quadratic(net, params, real, v)
    return exact_quadratic(g_real, params, v)


def _hvp(curvature, net, params, real, g_real, g_syn, probes):
    return hvp_mismatch(g_syn, g_real, params, rademacher_probes(params, probes))


HESSIAN_MODES = Choices("hessian mode", {"none": None, "curvature": _curvature, "hvp": _hvp})
# H in the curvature term, and whether it differentiates the real gradient again
HESSIAN_CURVATURES = Choices("hessian curvature", {"gauss_newton": False, "exact": True})


def needs_real_graph(mode: str, curvature: str) -> bool:
    """Whether the term differentiates the real gradient again (create_graph on the real side)."""
    return mode == "hvp" or (mode == "curvature" and HESSIAN_CURVATURES[curvature])


def higher_order_term(mode: str, curvature: str, net: nn.Module, params: Sequence[torch.Tensor],
                      real: torch.Tensor, g_real: Sequence[torch.Tensor],
                      g_syn: Sequence[torch.Tensor], probes: int) -> torch.Tensor:
    """The unweighted higher-order term of one class. g_real carries its graph when
    needs_real_graph(mode, curvature); g_syn always does."""
    term = HESSIAN_MODES[mode]
    if term is None:
        raise ValueError("hessian mode 'none' has no higher-order term")
    return term(curvature, net, params, real, g_real, g_syn, probes)
