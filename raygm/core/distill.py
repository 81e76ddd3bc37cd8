"""Dataset condensation by gradient matching (Zhao, Mopuri, Bilen, ICLR 2021).

`Distillation` is the whole run as an object you can step, inspect, checkpoint and resume;
`raygm.driver.run_to_end` drives it for the CLI and the Ray trainable alike.
"""
from __future__ import annotations

import copy
import math
import time

import torch
from torch import nn

from .config import ConfigError, RunConfig
from .data import RealData
from .augment import DSA
from .evaluate import evaluate_synthetic
from .higher_order import higher_order_term, needs_real_graph
from .formation import decode, encode
from .init import init_synthetic, synthetic_labels
from .matching import (PRECISIONS, batched_class_gradients, class_gradient,
                       class_match_losses, match_loss, resolve_precision)
from .models import build_model, compiled, has_batchnorm
from . import gpu, streams
from .records import EvaluationRecord, IterationRecord
from .training import train_epochs


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and (not torch.cuda.is_available()
                                  or (device.index or 0) >= torch.cuda.device_count()):
        raise ConfigError("device", name, f"auto, cpu or one of this machine's "
                                          f"{torch.cuda.device_count()} CUDA GPUs")
    return device


def check_fits(config: RunConfig, data: RealData) -> None:
    """Refuse a config its data cannot serve, before any compute: a synthetic set larger
    than a real class (an init from real images could not even be drawn), or real batches
    that batched classes could not stack."""
    smallest = min(len(idx) for idx in data.class_indices)
    if config.ipc > smallest:
        raise ConfigError("ipc", config.ipc, f"at most {smallest}, the images of the smallest "
                                             f"class of {data.name}'s train split")
    if config.uses_lever("batched_classes") and config.batch_real > smallest:
        # batched classes stack equal batches; a smaller class would give a shorter one
        raise ConfigError("batch_real", config.batch_real,
                          f"at most {smallest} (the smallest class of {data.name}'s train "
                          "split) with lever batched_classes")


class Diverged(ArithmeticError):
    """The matching loss or the synthetic images stopped being finite numbers: the run
    cannot go on, and what it would report is not a result."""

    def __init__(self, iteration: int, what: str, settings: str):
        super().__init__(f"diverged at iteration {iteration}: {what} not finite; the settings "
                         f"that usually cause this: {settings} (try smaller values)")
        self.iteration, self.what, self.settings = iteration, what, settings

    def __reduce__(self):  # pickles intact, e.g. from a Ray worker to the driver
        return type(self), (self.iteration, self.what, self.settings)


class Distillation:
    def __init__(self, config: RunConfig, data: RealData):
        check_fits(config, data)
        self.device = resolve_device(config.device)
        # the config as run: `auto` device and precision resolved for this machine
        self.config = config = config.replace(
            device=str(self.device), precision=resolve_precision(
                config.precision, self.device, config.uses_hessian
                and needs_real_graph(config.hessian, config.hessian_curvature)))
        self.autocast = PRECISIONS[config.precision]
        gpu.prepare(self.device, config.levers or (), config.gpu_memory_fraction)
        self.data = data.to(self.device)
        # factor² images per stored one, packed (factor 1: the images themselves)
        self.images = encode(init_synthetic(config.init, data, config.ipc * config.factor ** 2,
                                            streams.generator(config.seed, "init")),
                             config.factor).to(self.device)
        self.images.requires_grad_(True)
        self.labels = synthetic_labels(data.num_classes, config.ipc).to(self.device)
        self.opt_img = torch.optim.SGD([self.images], lr=config.lr_img,
                                       momentum=config.momentum_img)
        self.iteration = 0
        # One network object, re-initialised every iteration, so that its compiled version
        # is built once. It serves everything without double backward (compiled graphs have
        # none): real-data gradients and inner-loop training.
        self.net = build_model(config.model, data.channels, data.num_classes, data.im_size,
                               config.net).to(self.device)
        cuda_graphs = config.uses_lever("cuda_graphs")
        self.compiled_net = compiled(self.net, config.execution, cuda_graphs)
        self.batchnorm = has_batchnorm(self.net)
        # lever batched_classes: every class's gradients in one call (the synthetic side
        # eager, as it needs double backward)
        self.batched = config.uses_lever("batched_classes")
        if self.batched:
            self.real_gradients = compiled(batched_class_gradients(self.net), config.execution,
                                           cuda_graphs)
            self.synthetic_gradients = batched_class_gradients(self.net)
        # DSA: a class's real and synthetic images alike for matching, each synthetic image
        # its own way when the network trains on them (as DSA's code)
        self.dsa, self.train_augment = ((DSA(config.dsa, same_on_batch=True),
                                         DSA(config.dsa, same_on_batch=False))
                                        if config.dsa != "none" else (None, None))

    def fresh_network(self) -> nn.Module:
        """The network, re-initialised in place exactly as a newly built one would be, from
        the iteration's own network stream (torch's init functions draw from the global one)."""
        torch.manual_seed(streams.stream_seed(self.config.seed, "network", self.iteration))
        for m in self.net.modules():
            if hasattr(m, "reset_parameters"):
                m.reset_parameters()
        return self.net

    def step(self) -> IterationRecord:
        """One iteration: a fresh network; outer_loop updates of the synthetic set, with
        inner_loop epochs of training the network on it between updates. It draws from its
        own random streams and leaves the caller's global one as it was. Diverged if the
        loss or the set stops being finite."""
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            record = self._step()
        finite_loss = math.isfinite(record.loss)
        if not finite_loss or not torch.isfinite(self.images).all():
            c = self.config
            raise Diverged(self.iteration, "the matching loss is" if not finite_loss
                           else "the synthetic images are",
                           f"lr_img={c.lr_img}, momentum_img={c.momentum_img}"
                           + (f", hessian_weight={c.hessian_weight}" if c.uses_hessian else ""))
        return record

    def _step(self) -> IterationRecord:
        c, data, ipc = self.config, self.data, self.config.ipc
        start = time.perf_counter()
        net = self.fresh_network()
        real_stream = streams.generator(c.seed, "real", self.iteration)
        inner_stream = streams.generator(c.seed, "inner", self.iteration)
        dsa_stream = streams.generator(c.seed, "dsa", self.iteration)
        torch.manual_seed(streams.stream_seed(c.seed, "step", self.iteration))
        params = list(net.parameters())
        opt_net = torch.optim.SGD(params, lr=c.lr_net)
        outer, inner = c.loops
        real_graph = c.uses_hessian and needs_real_graph(c.hessian, c.hessian_curvature)
        first_loss = torch.zeros(data.num_classes, device=self.device)
        higher_loss = torch.zeros(data.num_classes, device=self.device)
        for ol in range(outer):
            if self.batchnorm:  # statistics from a real batch, then frozen (as DC)
                freeze_batchnorm(net, torch.cat([data.sample(k, c.bn_batch, real_stream)
                                                 for k in range(data.num_classes)]))
            reals, synthetics = [], []
            for k in range(data.num_classes):
                real = data.sample(k, c.batch_real, real_stream)
                synthetic, _ = decode(self.images[k * ipc:(k + 1) * ipc],
                                      self.labels[k * ipc:(k + 1) * ipc], c.factor)
                if self.dsa is not None:
                    real, synthetic = self.dsa.siamese(real, synthetic, dsa_stream)
                reals.append(real)
                synthetics.append(synthetic)
            autocast = torch.autocast(self.device.type, self.autocast or torch.float32,
                                      enabled=self.autocast is not None and not real_graph)
            if self.batched:  # all classes at once (no higher-order term: RunConfig)
                with autocast, torch.no_grad():
                    g_real = self.real_gradients(torch.stack(reals))
                g_syn = self.synthetic_gradients(torch.stack(synthetics))
                first = class_match_losses(g_syn, g_real, c.distance)
                higher = torch.zeros_like(first)
            else:
                first, higher = [], []
                for k, (real, synthetic) in enumerate(zip(reals, synthetics)):
                    with autocast:
                        g_real = class_gradient(net if real_graph else self.compiled_net, real,
                                                k, params, create_graph=real_graph)
                    g_syn = class_gradient(net, synthetic, k, params, create_graph=True)
                    first.append(match_loss(g_syn, [g.detach() for g in g_real], c.distance))
                    if c.uses_hessian:
                        higher.append(c.hessian_weight * higher_order_term(
                            c.hessian, c.hessian_curvature, net, params, real, g_real, g_syn,
                            c.hessian_probes))
                first = torch.stack(first)
                higher = torch.stack(higher) if higher else torch.zeros_like(first)
            self.opt_img.zero_grad()
            (first.sum() + higher.sum()).backward()
            self.opt_img.step()
            first_loss += first.detach()
            higher_loss += higher.detach()
            if ol == outer - 1:
                break
            train_epochs(self.compiled_net, opt_net, *decode(self.images.detach(), self.labels,
                                                             c.factor),
                         inner, c.batch_train, self.train_augment, generator=inner_stream)
        self.iteration += 1
        first_loss, higher_loss = (first_loss / outer).tolist(), (higher_loss / outer).tolist()
        return IterationRecord(
            self.iteration, loss=sum(first_loss) + sum(higher_loss), loss_first=sum(first_loss),
            loss_higher=sum(higher_loss),
            class_loss=tuple(f + h for f, h in zip(first_loss, higher_loss)),
            seconds=time.perf_counter() - start)

    def evaluate(self) -> list[EvaluationRecord]:
        """Accuracy of fresh networks of each evaluation architecture trained on the set."""
        return [evaluate_synthetic(self.images, self.labels, self.data, self.config, arch,
                                   self.iteration)
                for arch in self.config.eval_architectures]

    def state_dict(self) -> dict:
        """A copy of the run's state (the optimiser's own state_dict holds live tensors)."""
        # no random state: an iteration's randomness comes from (seed, iteration) (streams.py)
        return {"config": self.config.to_dict(), "iteration": self.iteration,
                "images": self.images.detach().cpu().clone(), "labels": self.labels.cpu(),
                "factor": self.config.factor,  # images are stored, labels theirs: decode them
                "opt_img": copy.deepcopy(self.opt_img.state_dict())}

    def load_state_dict(self, state: dict) -> None:
        self.iteration = state["iteration"]
        with torch.no_grad():
            self.images.copy_(state["images"])
        self.opt_img.load_state_dict(state["opt_img"])


def freeze_batchnorm(net: nn.Module, real: torch.Tensor) -> None:
    net.train()
    with torch.no_grad():
        net(real)
    for m in net.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()
