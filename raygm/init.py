"""Initialisations of the synthetic set."""
from __future__ import annotations

import torch

from .data import RealData

# Constant initialisations as pixel values (before normalisation): black, white and grey
# pixels. The seed study's constants were set after normalisation instead.
PIXEL_CONSTANTS = {"black": 0.0, "white": 1.0, "grey": 0.5}
NORMALISED_CONSTANTS = {"seed_zeros": 0.0, "seed_ones": 1.0, "seed_half": 0.5}


def synthetic_labels(num_classes: int, ipc: int) -> torch.Tensor:
    """[0]*ipc + [1]*ipc + ...: the synthetic set is ordered by class."""
    return torch.arange(num_classes).repeat_interleave(ipc)


def init_synthetic(init: str, data: RealData, ipc: int,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """Normalised synthetic images (num_classes * ipc, C, H, W), ordered by class."""
    shape = (data.num_classes * ipc, data.channels, *data.im_size)
    if init == "noise":
        return torch.randn(shape, generator=generator)
    if init == "real":
        return torch.cat([data.sample(c, ipc, generator) for c in range(data.num_classes)]).clone()
    if init in PIXEL_CONSTANTS:
        return data.from_pixels(torch.full(shape, PIXEL_CONSTANTS[init]))
    if init in NORMALISED_CONSTANTS:
        return torch.full(shape, NORMALISED_CONSTANTS[init])
    allowed = ["noise", "real", *PIXEL_CONSTANTS, *NORMALISED_CONSTANTS]
    raise ValueError(f"unknown init {init!r}; allowed: {', '.join(allowed)}")
