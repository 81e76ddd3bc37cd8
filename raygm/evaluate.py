"""DC's evaluation protocol: train fresh networks on a (synthetic) set, test on real data."""
from __future__ import annotations

import time
from typing import Callable

import torch
from torch import nn

from .augment import AUGMENTATIONS
from .choices import Choices
from .config import RunConfig
from .data import RealData
from .models import build_model, compiled
from .records import EvaluationRecord
from .streams import stream_seed
from .training import train_epochs


@torch.no_grad()
def accuracy(net: nn.Module, images: torch.Tensor, labels: torch.Tensor,
             batch_size: int = 2000) -> float:
    net.eval()
    correct = sum((net(x).argmax(1) == y).sum().item()
                  for x, y in zip(images.split(batch_size), labels.split(batch_size)))
    return correct / len(images)


def train_and_test(net: nn.Module, images: torch.Tensor, labels: torch.Tensor, data: RealData,
                   epochs: int, lr: float, batch_size: int, augment: Callable | None,
                   generator: torch.Generator | None = None) -> float:
    """DC's protocol: SGD(momentum 0.9, wd 5e-4), lr x0.1 after half the epochs."""
    optimizer = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, [epochs // 2], 0.1)
    train_epochs(net, optimizer, images, labels, epochs, batch_size, augment, scheduler, generator)
    device = images.device
    return accuracy(net, data.test_images.to(device), data.test_labels.to(device))


def evaluate_network(images: torch.Tensor, labels: torch.Tensor, data: RealData,
                     config: RunConfig, arch: str, iteration: int, network: int) -> float:
    """Test accuracy of evaluation network number `network` at `iteration`: a fresh `arch`
    network trained on (images, labels). Each network has its own random stream (its
    initialisation, shuffling and augmentation), so any network can be evaluated alone, in
    any process, and two configurations with the same seed meet the same networks."""
    device = images.device
    seed = stream_seed(config.seed, "evaluate", iteration, network)
    generator = torch.Generator().manual_seed(seed)
    # evaluating does not change what the global random stream gives next
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        net = build_model(arch, data.channels, data.num_classes, data.im_size, config.net)
        net = compiled(net.to(device), config.execution)
        return train_and_test(net, images.detach(), labels, data, config.eval_train_epochs,
                              config.eval_lr, config.eval_batch,
                              AUGMENTATIONS[config.eval_augmentation](config.dsa_strategy),
                              generator)


def evaluate_synthetic(images: torch.Tensor, labels: torch.Tensor, data: RealData,
                       config: RunConfig, arch: str, iteration: int = 0) -> EvaluationRecord:
    """Accuracy of the config.eval_models evaluation networks of `iteration`."""
    start = time.perf_counter()
    accs = [evaluate_network(images, labels, data, config, arch, iteration, n)
            for n in range(config.eval_models)]
    return EvaluationRecord.from_accs(iteration, arch, accs, time.perf_counter() - start)


# Protocols a saved synthetic set can be re-evaluated with (`raygm evaluate`): changes to the
# run config's evaluation settings. full: DC's (1000 augmented epochs for MNIST-like data at
# ipc <= 10, else 300); study: the trial's own settings (e.g. on other architectures).
PROTOCOLS = Choices("evaluation protocol", {"full": {"eval_epochs": None, "eval_augment": "auto"},
                                           "study": {}})


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
    net = build_model(arch, data.channels, data.num_classes, data.im_size, config.net)
    net = compiled(net.to(device), config.execution)
    return train_and_test(net, data.images.to(device), data.labels.to(device), data, epochs,
                          config.eval_lr, config.eval_batch, augment=None)
