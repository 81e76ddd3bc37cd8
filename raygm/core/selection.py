"""Coreset selection of real images: herding and k-center in a learned embedding, DC's
coreset baselines (Zhao et al. 2021, Table 1) and initialisations of the synthetic set.

The embedding is DC's: the penultimate-layer features of a ConvNet (the default one: width
128, depth 3, instance norm, average pooling, whichever network the run matches with, since
an init does not see the run's model) trained on the real data. DC trains it on the whole train
split; here it is trained briefly on a random pool of each class's images, and the images
are selected from that pool, so an init costs seconds rather than minutes on a CPU.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from .data import RealData
from .models import build_model
from .training import train_epochs

POOL_PER_CLASS = 200   # real images per class the embedding trains on and selects from
EPOCHS = 1             # over the pool: 2000 images in 32 steps for a 10-class dataset
BATCH = 64
LR = 0.01              # SGD with momentum 0.9, as DC's evaluation networks


def herding(features: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of k rows of features (n, d), in the order herding picks them (Welling 2009):
    each step adds the row that brings the mean of the chosen rows closest to the mean of
    all rows; no row twice."""
    _check_k(features, k)
    target = features.mean(0)
    chosen, total = [], torch.zeros_like(target)
    available = torch.ones(len(features), dtype=torch.bool, device=features.device)
    for t in range(1, k + 1):
        gap = torch.linalg.vector_norm(target - (total + features) / t, dim=1)
        i = int(gap.masked_fill(~available, float("inf")).argmin())
        chosen.append(i)
        available[i] = False
        total += features[i]
    return torch.tensor(chosen, dtype=torch.long)


def kcenter(features: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of k rows of features (n, d) by greedy k-center (farthest-point): first the
    row nearest the mean, then repeatedly the row farthest from its nearest chosen row."""
    _check_k(features, k)
    chosen = [int(torch.linalg.vector_norm(features - features.mean(0), dim=1).argmin())]
    nearest = torch.full((len(features),), float("inf"), device=features.device)
    for _ in range(k - 1):
        nearest = torch.minimum(
            nearest, torch.linalg.vector_norm(features - features[chosen[-1]], dim=1))
        # chosen rows are at distance 0, but so may be duplicates of them: never pick twice
        nearest[chosen[-1]] = -float("inf")
        chosen.append(int(nearest.argmax()))
    return torch.tensor(chosen, dtype=torch.long)


def _check_k(features: torch.Tensor, k: int) -> None:
    if not 1 <= k <= len(features):
        raise ValueError(f"cannot select {k} of {len(features)} rows")


def embedding_network(images: torch.Tensor, labels: torch.Tensor, num_classes: int,
                      generator: torch.Generator | None = None) -> nn.Module:
    """A default ConvNet trained for EPOCHS on (images, labels), its initialisation and
    shuffling drawn from generator; the caller's global random stream is left as it was."""
    device = images.device
    seed = int(torch.randint(2 ** 62, (1,), generator=generator))
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)  # torch's init functions draw from the global stream
        net = build_model("ConvNet", images.shape[1], num_classes, images.shape[2:]).to(device)
    optimizer = torch.optim.SGD(net.parameters(), lr=LR, momentum=0.9)
    train_epochs(net, optimizer, images, labels, EPOCHS, BATCH, generator=generator)
    return net.eval()


@torch.no_grad()
def embed(net: nn.Module, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """Penultimate-layer features (the classifier's input) of a ConvNet, (n, d)."""
    return torch.cat([net.features(x).flatten(1) for x in images.split(batch_size)])


def select(rule: Callable[[torch.Tensor, int], torch.Tensor], data: RealData, ipc: int,
           generator: torch.Generator | None = None) -> torch.Tensor:
    """ipc real images per class chosen by rule (herding or kcenter) in the embedding of a
    random pool of each class, ordered by class (normalised, as data holds them)."""
    pools = [idx[torch.randperm(len(idx), generator=generator)[:max(POOL_PER_CLASS, ipc)]]
             for idx in data.class_indices]
    pool = torch.cat(pools)
    net = embedding_network(data.images[pool], data.labels[pool], data.num_classes, generator)
    features = embed(net, data.images[pool]).split([len(p) for p in pools])
    return torch.cat([data.images[p[rule(f, ipc)]] for p, f in zip(pools, features)])
