"""DC's evaluation protocol: train fresh networks on a (synthetic) set, test on real data."""
from __future__ import annotations

import copy
import time
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from .augment import AUGMENTATIONS
from .config import RunConfig
from .data import RealData
from .eval_protocol import PROTOCOLS
from .formation import decode
from .gpu import to_device
from .matching import resolve_precision
from .models import build_model, compiled, has_batchnorm
from .records import EvaluationRecord
from .streams import stream_seed
from .training import train_epochs


@torch.no_grad()
def accuracy(net: nn.Module, images: torch.Tensor, labels: torch.Tensor,
             batch_size: int = 2000) -> float:
    net.eval()
    correct = sum((net(x).argmax(1) == y).sum()
                  for x, y in zip(images.split(batch_size), labels.split(batch_size)))
    return int(correct) / len(images)  # the one wait for the GPU of an evaluated network


def train_and_test(net: nn.Module, images: torch.Tensor, labels: torch.Tensor, data: RealData,
                   epochs: int, lr: float, batch_size: int, augment: Callable | None,
                   generator: torch.Generator | None = None,
                   precision: str = "fp32") -> float:
    """DC's protocol: SGD(momentum 0.9, wd 5e-4), lr x0.1 after half the epochs; training
    and the test pass under bf16 autocast with precision bf16 (weights and optimizer fp32)."""
    optimizer = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, [epochs // 2], 0.1)
    device = images.device
    # no cast cache: it would keep the first step's bf16 copy of the weights for every step
    with torch.autocast(device.type, torch.bfloat16, enabled=precision == "bf16",
                        cache_enabled=False):
        train_epochs(net, optimizer, images, labels, epochs, batch_size, augment, scheduler,
                     generator)
        return accuracy(net, data.test_images.to(device), data.test_labels.to(device))


def evaluation_network(data: RealData, config: RunConfig, arch: str, iteration: int, network: int,
                  device: torch.device) -> tuple[nn.Module, torch.Generator]:
    """Evaluation network number `network` at `iteration`, initialised from its own random
    stream, and the generator of its shuffling and augmentation (training draws from nothing
    else), so any network can be evaluated alone, in any process, or stacked with others, and
    two configurations with the same seed meet the same networks."""
    seed = stream_seed(config.seed, "evaluate", iteration, network)
    # building it does not change what the global random stream gives next
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        net = build_model(arch, data.channels, data.num_classes, data.im_size, config.eval_net_settings)
    return net.to(device), torch.Generator().manual_seed(seed)


def evaluate_network(images: torch.Tensor, labels: torch.Tensor, data: RealData,
                     config: RunConfig, arch: str, iteration: int, network: int) -> float:
    """Test accuracy of evaluation_network `network` at `iteration` trained on (images, labels)
    (stored images, decoded by config.factor)."""
    images, labels = decode(images, labels, config.factor)
    net, generator = evaluation_network(data, config, arch, iteration, network, images.device)
    return train_and_test(compiled(net, config.execution, config.uses_lever("cuda_graphs")),
                          images.detach(), labels, data, config.eval_train_epochs(arch),
                          config.eval_lr, config.eval_batch,
                          AUGMENTATIONS[config.eval_augmentation(arch)](config.dsa_strategy),
                          generator, resolve_precision(config.precision, images.device))


def evaluate_networks_stacked(images: torch.Tensor, labels: torch.Tensor, data: RealData,
                              config: RunConfig, arch: str, iteration: int,
                              networks: range) -> list[float] | None:
    """evaluate_network for several networks trained together (lever stacked_eval): the same
    networks and streams as alone, so the results are evaluate_network's to float rounding.
    None for an architecture with BatchNorm (its running statistics do not stack) and in
    bf16 (a GPU lever; GPUs evaluate in fp32)."""
    device = images.device
    images, labels = decode(images, labels, config.factor)
    nets, generators = zip(*(evaluation_network(data, config, arch, iteration, n, device)
                             for n in networks))
    if has_batchnorm(nets[0]) or resolve_precision(config.precision, device) == "bf16":
        return None
    train_stacked(list(nets), images.detach(), labels, config.eval_train_epochs(arch),
                  config.eval_lr, config.eval_batch,
                  AUGMENTATIONS[config.eval_augmentation(arch)](config.dsa_strategy),
                  list(generators), config.execution, config.uses_lever("cuda_graphs"))
    test_images, test_labels = data.test_images.to(device), data.test_labels.to(device)
    return [accuracy(compiled(net, config.execution, config.uses_lever("cuda_graphs")),
                     test_images, test_labels) for net in nets]


def train_stacked(nets: list[nn.Module], images: torch.Tensor, labels: torch.Tensor,
                  epochs: int, lr: float, batch_size: int, augment: Callable | None,
                  generators: list[torch.Generator], execution: str = "eager",
                  cuda_graphs: bool = False) -> None:
    """train_and_test's training for networks of one architecture at once, in place: their
    parameters stacked (torch.func.stack_module_state), one vmapped forward and backward
    per batch, one optimiser over the stacked tensors (SGD's update is elementwise, so each
    network's slice moves as its own optimiser would move it)."""
    params, buffers = stack_module_state(nets)
    template = copy.deepcopy(nets[0]).to("meta")
    template.train()

    def loss(params, buffers, x, y):
        return F.cross_entropy(functional_call(template, (params, buffers), (x,)), y)

    # the networks' mean losses summed: each network's gradient is its own loss's
    total = compiled(lambda p, b, x, y: vmap(loss)(p, b, x, y).sum(), execution, cuda_graphs)
    optimizer = torch.optim.SGD(params.values(), lr=lr, momentum=0.9, weight_decay=5e-4)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, [epochs // 2], 0.1)
    for _ in range(epochs):
        orders = [to_device(torch.randperm(len(images), generator=g), images.device)
                  .split(batch_size) for g in generators]
        for batches in zip(*orders):
            xs = [images[b] if augment is None else augment(images[b], generator=g)
                  for b, g in zip(batches, generators)]
            ys = torch.stack([labels[b] for b in batches])
            optimizer.zero_grad(set_to_none=True)
            total(params, buffers, torch.stack(xs), ys).backward()
            optimizer.step()
        scheduler.step()
    with torch.no_grad():
        for n, net in enumerate(nets):
            for name, p in net.named_parameters():
                p.copy_(params[name][n])


def evaluate_synthetic(images: torch.Tensor, labels: torch.Tensor, data: RealData,
                       config: RunConfig, arch: str, iteration: int = 0) -> EvaluationRecord:
    """Accuracy of the config.eval_models evaluation networks of `iteration`."""
    start = time.perf_counter()
    networks = range(config.eval_models)
    accs = None
    if config.uses_lever("stacked_eval"):
        accs = evaluate_networks_stacked(images, labels, data, config, arch, iteration, networks)
    if accs is None:
        accs = [evaluate_network(images, labels, data, config, arch, iteration, n)
                for n in networks]
    return EvaluationRecord.from_accs(iteration, arch, accs, time.perf_counter() - start)


def protocol_config(config: RunConfig, protocol: str, models: int | None = None,
                    epochs: int | None = None) -> RunConfig:
    """The config whose evaluation settings are the protocol's: models networks each,
    trained for epochs (None: the protocol's)."""
    changes = dict(PROTOCOLS[protocol])
    if models is not None:
        changes["eval_models"] = models
    if epochs is not None:
        changes["eval_epochs"] = epochs
    return config.replace(**changes)


def full_data_baseline(data: RealData, arch: str, config: RunConfig, epochs: int,
                       device: torch.device) -> float:
    """Test accuracy of one `arch` network trained on the whole real train split."""
    torch.manual_seed(config.seed)
    net = build_model(arch, data.channels, data.num_classes, data.im_size, config.eval_net_settings)
    net = compiled(net.to(device), config.execution, config.uses_lever("cuda_graphs"))
    return train_and_test(net, data.images.to(device), data.labels.to(device), data, epochs,
                          config.eval_lr, config.eval_batch, augment=None)
