"""Augmentations: DC's for evaluation (crop, scale or rotate, one per image; crop or noise
for ConvNetBN) and DSA's
differentiable siamese augmentation (Zhao & Bilen, ICML 2021) for matching and evaluation.

DC applies its augmentation image by image with numpy/scipy; here every image gets its own
random affine transform and the batch is resampled by one affine_grid + grid_sample call.
"""
from __future__ import annotations

from functools import partial

import kornia.augmentation as K
import torch
import torch.nn.functional as F
from torch import nn

from .choices import Choices
from .gpu import to_device


def dc_augment(images: torch.Tensor, strategy: tuple[str, ...] = ("crop", "scale", "rotate"),
               crop: int = 4, scale: float = 0.2, rotate: float = 45, noise: float = 0.001,
               generator: torch.Generator | None = None) -> torch.Tensor:
    """DC's evaluation augmentation (utils.augment): one of strategy's operations per image,
    chosen at random; DC's crop_scale_rotate by default, crop_noise for ConvNetBN."""
    n, _, h, w = images.shape
    rand = lambda *shape: torch.rand(*shape, generator=generator)  # noqa: E731
    choice = torch.randint(len(strategy), (n,), generator=generator)
    chosen = {op: choice == strategy.index(op) if op in strategy else torch.zeros(n, dtype=bool)
              for op in ("crop", "scale", "rotate", "noise")}
    theta = torch.eye(2, 3).repeat(n, 1, 1)
    # (each operation's parameters are drawn only when the strategy has it, in this order)
    if "crop" in strategy:
        # shift by a whole number of pixels in [-crop, crop] (DC pads by crop and crops back)
        shift = torch.randint(-crop, crop + 1, (n, 2), generator=generator).float()
        is_crop = chosen["crop"]
        theta[is_crop, 0, 2] = 2 * shift[is_crop, 0] / w
        theta[is_crop, 1, 2] = 2 * shift[is_crop, 1] / h
    if "scale" in strategy:
        # each side by a factor in [1 - scale, 1 + scale], about the centre
        factors = 1 - scale + 2 * scale * rand(n, 2)
        is_scale = chosen["scale"]
        theta[is_scale, 0, 0] = 1 / factors[is_scale, 0]
        theta[is_scale, 1, 1] = 1 / factors[is_scale, 1]
    if "rotate" in strategy:
        # by an angle in [-rotate, rotate] degrees about the centre (aspect-corrected)
        angle = torch.deg2rad((2 * rand(n) - 1) * rotate)
        is_rot = chosen["rotate"]
        cos, sin = torch.cos(angle[is_rot]), torch.sin(angle[is_rot])
        theta[is_rot, 0, 0], theta[is_rot, 0, 1] = cos, -sin * h / w
        theta[is_rot, 1, 0], theta[is_rot, 1, 1] = sin * w / h, cos
    # Areas moved in from outside take the per-channel mean, as in DC.
    fill = images.mean(dim=(0, 2, 3), keepdim=True)
    grid = F.affine_grid(to_device(theta, images.device), list(images.shape),
                         align_corners=False)
    out = F.grid_sample(images - fill, grid, mode="bilinear", padding_mode="zeros",
                        align_corners=False) + fill
    if "noise" in strategy:
        # Gaussian pixel noise of standard deviation `noise` on the images that drew it
        extra = noise * torch.randn(images.shape, generator=generator)
        out = out + to_device(extra * chosen["noise"].view(n, 1, 1, 1), images.device)
    return out


class DSAColor(nn.Module):
    """DSA's colour group on normalised images: brightness + U(-0.5, 0.5), saturation x
    U(0, 2) about each pixel's channel mean, contrast x U(0.5, 1.5) about the image mean.
    Written here because kornia's colour augmentations expect RGB in [0, 1] (they clamp, and
    saturate in HSV). Its factors come from the global stream, like kornia's parameters."""

    def __init__(self, same_on_batch: bool):
        super().__init__()
        self.same_on_batch = same_on_batch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = 1 if self.same_on_batch else len(x)
        # drawn on the CPU, whatever x's device, so that forking the CPU stream covers them
        factor = lambda: to_device(torch.rand(n, 1, 1, 1), x.device)  # noqa: E731
        x = x + factor() - 0.5
        mean = x.mean(1, keepdim=True)
        x = (x - mean) * 2 * factor() + mean
        mean = x.mean((1, 2, 3), keepdim=True)
        return (x - mean) * (factor() + 0.5) + mean


# DSA's strategies with ParamDiffAug's ranges: name -> (image shape (C, H, W), same
# parameters for the whole batch?) -> module. kornia's crop pads by an eighth of the side and
# crops back (a whole-pixel shift, as DSA), its erasing cuts a square of half the side
# (DSA's cutout, kept inside the image).
DSA_STRATEGIES = Choices("DSA strategy", {
    "color": lambda shape, same: DSAColor(same),
    "crop": lambda shape, same: K.RandomCrop(
        shape[1:], padding=int(0.125 * shape[1] + 0.5), same_on_batch=same),
    "cutout": lambda shape, same: K.RandomErasing(
        scale=(0.25, 0.25), ratio=(1.0, 1.0), value=0.0, p=1.0, same_on_batch=same),
    "flip": lambda shape, same: K.RandomHorizontalFlip(p=0.5, same_on_batch=same),
    "scale": lambda shape, same: K.RandomAffine(
        degrees=0.0, scale=(1 / 1.2, 1.2, 1 / 1.2, 1.2), p=1.0, same_on_batch=same),
    "rotate": lambda shape, same: K.RandomRotation(15.0, p=1.0, same_on_batch=same),
})


class DSA:
    """DSA's augmentation with a strategy such as color_crop_cutout_scale_rotate: each call
    applies one of the strategy's groups, drawn from `generator` (DSA's single-group mode).
    kornia draws the group's parameters from the global stream, which is forked and seeded
    from `generator`, so runs stay reproducible and paired configurations see the same
    augmentations. same_on_batch: one set of parameters for the whole batch (matching, where
    a class's real and synthetic images must be augmented alike: `siamese`); else one per
    image (evaluation)."""

    def __init__(self, strategy: str, same_on_batch: bool):
        self.groups = strategy.split("_")
        self.same_on_batch = same_on_batch
        self._modules: dict[tuple, nn.Module] = {}

    def __call__(self, images: torch.Tensor,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        group = self.groups[torch.randint(len(self.groups), (1,), generator=generator).item()]
        seed = torch.randint(2 ** 62, (1,), generator=generator).item()
        key = (group, tuple(images.shape[1:]))
        if key not in self._modules:
            self._modules[key] = DSA_STRATEGIES[group](images.shape[1:], self.same_on_batch)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return self._modules[key](images)

    def siamese(self, real: torch.Tensor, synthetic: torch.Tensor,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Both batches through the same augmentation with the same parameters; the real
        batch comes back detached (only the synthetic images learn, and a real batch that
        required grad would make the real side build graphs it does not need)."""
        both = self(torch.cat([real, synthetic]), generator)
        return both[:len(real)].detach(), both[len(real):]


# Evaluation augmentations: name -> (DSA strategy) -> batch transform (None: none).
AUGMENTATIONS = Choices("evaluation augmentation", {
    "none": lambda strategy: None, "dc": lambda strategy: dc_augment,
    "crop_noise": lambda strategy: partial(dc_augment, strategy=("crop", "noise")),
    "dsa": lambda strategy: DSA(strategy, same_on_batch=False)})
