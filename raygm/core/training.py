"""Training a network on a set of images: the epochs every part of raygm trains with (the
inner loop of distillation, evaluation networks, the coreset embedding)."""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .gpu import to_device


def train_epochs(net: nn.Module, optimizer: torch.optim.Optimizer, images: torch.Tensor,
                 labels: torch.Tensor, epochs: int, batch_size: int,
                 augment: Callable | None = None, scheduler=None,
                 generator: torch.Generator | None = None) -> None:
    """Plain minibatch SGD epochs over (images, labels), reshuffled every epoch; augment
    (e.g. dc_augment) transforms each batch."""
    net.train()
    for _ in range(epochs):
        order = to_device(torch.randperm(len(images), generator=generator), images.device)
        for batch in order.split(batch_size):
            x = images[batch]
            if augment is not None:
                x = augment(x, generator=generator)
            loss = F.cross_entropy(net(x), labels[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        if scheduler is not None:
            scheduler.step()
