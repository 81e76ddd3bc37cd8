"""DC's evaluation augmentation (crop, scale or rotate, one per image) on whole batches.

DC applies it image by image with numpy/scipy; here every image gets its own random affine
transform and the batch is resampled by one affine_grid + grid_sample call.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .choices import Choices


def dc_augment(images: torch.Tensor, crop: int = 4, scale: float = 0.2, rotate: float = 45,
               generator: torch.Generator | None = None) -> torch.Tensor:
    n, _, h, w = images.shape
    rand = lambda *shape: torch.rand(*shape, generator=generator)  # noqa: E731
    choice = torch.randint(3, (n,), generator=generator)
    theta = torch.eye(2, 3).repeat(n, 1, 1)
    # crop: shift by a whole number of pixels in [-crop, crop] (DC pads by crop and crops back)
    shift = torch.randint(-crop, crop + 1, (n, 2), generator=generator).float()
    is_crop = choice == 0
    theta[is_crop, 0, 2] = 2 * shift[is_crop, 0] / w
    theta[is_crop, 1, 2] = 2 * shift[is_crop, 1] / h
    # scale: each side by a factor in [1 - scale, 1 + scale], about the centre
    factors = 1 - scale + 2 * scale * rand(n, 2)
    is_scale = choice == 1
    theta[is_scale, 0, 0] = 1 / factors[is_scale, 0]
    theta[is_scale, 1, 1] = 1 / factors[is_scale, 1]
    # rotate: by an angle in [-rotate, rotate] degrees about the centre (aspect-corrected)
    angle = torch.deg2rad((2 * rand(n) - 1) * rotate)
    is_rot = choice == 2
    cos, sin = torch.cos(angle[is_rot]), torch.sin(angle[is_rot])
    theta[is_rot, 0, 0], theta[is_rot, 0, 1] = cos, -sin * h / w
    theta[is_rot, 1, 0], theta[is_rot, 1, 1] = sin * w / h, cos
    # Areas moved in from outside take the per-channel mean, as in DC.
    fill = images.mean(dim=(0, 2, 3), keepdim=True)
    grid = F.affine_grid(theta.to(images.device), list(images.shape), align_corners=False)
    return F.grid_sample(images - fill, grid, mode="bilinear", padding_mode="zeros",
                         align_corners=False) + fill



# Evaluation augmentations: name -> batch transform (None: no augmentation).
AUGMENTATIONS = Choices("evaluation augmentation", {"none": None, "dc": dc_augment})
