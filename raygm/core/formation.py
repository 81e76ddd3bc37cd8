"""IDC's multi-formation (Kim et al., Dataset Condensation via Efficient Synthetic-Data
Parameterization, ICML 2022): each stored synthetic image holds factor x factor smaller
images. Whenever the set is used (matching, the inner loop, evaluation) it is decoded: every
stored image split into its factor² blocks, each upsampled (bilinear) to the image's size and
labelled as the stored image. The storage of ipc images per class thus trains on
factor² · ipc images; gradients reach the stored pixels through the decode. Factor 1 is the
plain set, untouched.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def decode(images: torch.Tensor, labels: torch.Tensor,
           factor: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(n, C, H, W) stored images and their labels -> (n·factor², C, H, W) training images
    (each stored image's blocks consecutively, row by row) and their labels."""
    if factor == 1:
        return images, labels
    n, c, h, w = images.shape
    blocks = images.reshape(n, c, factor, h // factor, factor, w // factor)
    blocks = blocks.permute(0, 2, 4, 1, 3, 5).reshape(n * factor ** 2, c, h // factor,
                                                      w // factor)
    return (F.interpolate(blocks, size=(h, w), mode="bilinear", align_corners=False),
            labels.repeat_interleave(factor ** 2))


def encode(images: torch.Tensor, factor: int) -> torch.Tensor:
    """The packing an initialisation starts from: every factor² consecutive images, each
    shrunk to a block by averaging (as IDC initialises from downsampled real images), laid
    out row by row in one image: (n·factor², C, H, W) -> (n, C, H, W)."""
    if factor == 1:
        return images
    m, c, h, w = images.shape
    small = F.avg_pool2d(images, factor)
    blocks = small.reshape(m // factor ** 2, factor, factor, c, h // factor, w // factor)
    return blocks.permute(0, 3, 1, 4, 2, 5).reshape(m // factor ** 2, c, h, w)
