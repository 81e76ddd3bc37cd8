"""Per-class network gradients and the distances between real and synthetic ones."""
from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, vmap

from .choices import Choices
from .machine import native_bf16

# Each distance: (synthetic gradients, real gradients) -> a scalar tensor.
DISTANCES = Choices("distance")

# How the real-data gradients (most of a step's arithmetic) are computed: fp32, or under
# bf16 autocast (convolutions and matrix products in bf16, gradients returned in fp32);
# auto: bf16 on CPUs that multiply bf16 natively (AVX-512 BF16 or AMX), fp32 elsewhere.
PRECISIONS = Choices("precision", {"auto": None, "fp32": None, "bf16": torch.bfloat16})


def resolve_precision(precision: str, device: torch.device, real_graph: bool = False) -> str:
    """auto -> bf16 on a CPU that multiplies bf16 natively, unless the run differentiates
    the real gradient (real_graph: hvp, exact curvature), else fp32; explicit values stay.
    GPUs keep fp32 (their own levers: TF32)."""
    if precision != "auto":
        return precision
    return "bf16" if device.type == "cpu" and native_bf16() and not real_graph else "fp32"


def class_gradient(net: nn.Module, images: torch.Tensor, label: int,
                   params: Sequence[torch.Tensor], create_graph: bool = False) -> list[torch.Tensor]:
    """Gradient of the cross-entropy of net on images that all belong to class label."""
    logits = net(images)
    target = torch.full((len(images),), label, dtype=torch.long, device=images.device)
    loss = F.cross_entropy(logits, target)
    grads = torch.autograd.grad(loss, params, create_graph=create_graph)
    # a copy: under CUDA graphs the next replay overwrites a graph's outputs
    return list(grads) if create_graph else [g.detach().clone() for g in grads]


def batched_class_gradients(net: nn.Module) -> Callable[[torch.Tensor], list[torch.Tensor]]:
    """class_gradient for all classes in one vmapped call (torch.func): the returned function
    takes images [classes, n, C, H, W], class k's all of label k, and gives per parameter a
    tensor [classes, *shape]. Differentiable with respect to the images (torch.func's
    transforms compose with autograd); under no_grad it builds no graph."""
    def loss(params, images, label):
        logits = functional_call(net, params, (images,))
        return F.cross_entropy(logits, label.expand(len(images)))

    per_class = vmap(grad(loss), in_dims=(None, 0, 0))

    def gradients(images: torch.Tensor) -> list[torch.Tensor]:
        params = {name: p.detach() for name, p in net.named_parameters()}
        labels = torch.arange(len(images), device=images.device)
        return list(per_class(params, images, labels).values())
    return gradients


@DISTANCES.register("ours")
def _ours(g_syn: Sequence[torch.Tensor], g_real: Sequence[torch.Tensor]) -> torch.Tensor:
    return sum(_ours_layer(s, r) for s, r in zip(g_syn, g_real))


def _flat(grads: Sequence[torch.Tensor]) -> torch.Tensor:
    return torch.cat([g.flatten() for g in grads])


@DISTANCES.register("mse")
def _mse(g_syn, g_real):
    """Squared L2 distance of the flattened gradients."""
    return ((_flat(g_syn) - _flat(g_real)) ** 2).sum()


@DISTANCES.register("cos")
def _cos(g_syn, g_real):
    """1 - cosine of the flattened gradients."""
    s, r = _flat(g_syn), _flat(g_real)
    return 1 - (s * r).sum() / (s.norm() * r.norm() + 1e-6)


def _ours_layer(g_syn: torch.Tensor, g_real: torch.Tensor) -> torch.Tensor:
    """DC's layer-wise distance: sum over output rows of 1 - cosine; 1-D tensors count 0."""
    if g_real.dim() == 1:
        return g_real.new_zeros(())
    g_syn, g_real = g_syn.flatten(1), g_real.flatten(1)
    cos = (g_syn * g_real).sum(-1) / (g_syn.norm(dim=-1) * g_real.norm(dim=-1) + 1e-6)
    return (1 - cos).sum()


def match_loss(g_syn: Sequence[torch.Tensor], g_real: Sequence[torch.Tensor],
               distance: str) -> torch.Tensor:
    """Distance between two lists of parameter gradients (one of DISTANCES)."""
    return DISTANCES[distance](g_syn, g_real)


def class_match_losses(g_syn: Sequence[torch.Tensor], g_real: Sequence[torch.Tensor],
                       distance: str) -> torch.Tensor:
    """match_loss of every class at once, from batched_class_gradients' outputs: [classes]."""
    return vmap(lambda s, r: match_loss(s, r, distance))(list(g_syn), list(g_real))
