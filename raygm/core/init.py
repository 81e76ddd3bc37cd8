"""Initialisations of the synthetic set."""
from __future__ import annotations

import torch

from .choices import Choices
from .data import RealData
from .selection import herding, kcenter, select

# Each init: (data, ipc, generator) -> normalised images (num_classes * ipc, C, H, W).
INITS = Choices("init")


def _shape(data: RealData, ipc: int) -> tuple[int, ...]:
    return (data.num_classes * ipc, data.channels, *data.im_size)


@INITS.register("noise")
def _noise(data, ipc, generator):
    return torch.randn(_shape(data, ipc), generator=generator)


@INITS.register("real")
def _real(data, ipc, generator):
    return torch.cat([data.sample(c, ipc, generator) for c in range(data.num_classes)]).clone()


def _pixel_constant(value: float):
    return lambda data, ipc, generator: data.from_pixels(torch.full(_shape(data, ipc), value))


def _normalised_constant(value: float):
    return lambda data, ipc, generator: torch.full(_shape(data, ipc), value)


# Constant initialisations as pixel values (before normalisation): black, white and grey
# pixels. The seed study's constants were set after normalisation instead.
INITS.update({"black": _pixel_constant(0.0), "white": _pixel_constant(1.0),
              "grey": _pixel_constant(0.5),
              "seed_zeros": _normalised_constant(0.0), "seed_ones": _normalised_constant(1.0),
              "seed_half": _normalised_constant(0.5)})

# Coreset selections of real images (DC's herding and k-center baselines): the images whose
# embedding best matches the class mean (herding) or covers the class (kcenter); the
# embedding network is trained from the init's random stream (raygm/selection.py).
INITS.update({"herding": lambda data, ipc, generator: select(herding, data, ipc, generator),
              "kcenter": lambda data, ipc, generator: select(kcenter, data, ipc, generator)})


def synthetic_labels(num_classes: int, ipc: int) -> torch.Tensor:
    """[0]*ipc + [1]*ipc + ...: the synthetic set is ordered by class."""
    return torch.arange(num_classes).repeat_interleave(ipc)


def init_synthetic(init: str, data: RealData, ipc: int,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """Normalised synthetic images (num_classes * ipc, C, H, W), ordered by class."""
    return INITS[init](data, ipc, generator)
