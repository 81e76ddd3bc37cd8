import os
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from raygm.core.config import RunConfig
from raygm.core.data import RealData


def write_idx(path: Path, array: np.ndarray) -> None:
    """An IDX file as MNIST ships it (uint8 data, big-endian dimension sizes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def write_tiny_mnist(root: Path) -> Path:
    """A tiny MNIST in torchvision's layout: 10 classes, 6 train and 2 test images each.

    Each class is a bright square at its own position, so it is learnable."""
    rng = np.random.default_rng(0)

    def split(n_per_class):
        labels = np.repeat(np.arange(10), n_per_class)
        images = rng.integers(0, 40, size=(len(labels), 28, 28))
        for i, c in enumerate(labels):
            r, col = 2 + 8 * (c // 4), 2 + 6 * (c % 4)
            images[i, r:r + 6, col:col + 6] = 255
        return images, labels

    for prefix, n in (("train", 6), ("t10k", 2)):
        images, labels = split(n)
        write_idx(root / "MNIST/raw" / f"{prefix}-images-idx3-ubyte", images)
        write_idx(root / "MNIST/raw" / f"{prefix}-labels-idx1-ubyte", labels)
    return root


@pytest.fixture
def mnist_dir(tmp_path):
    return write_tiny_mnist(tmp_path)


def make_real_data(num_classes=4, per_class=12, channels=1, size=8, seed=0) -> RealData:
    """Random in-memory data where class c has a brighter row c: fast to learn from."""
    g = torch.Generator().manual_seed(seed)

    def split(n):
        labels = torch.arange(num_classes).repeat_interleave(n)
        images = 0.3 * torch.randn(len(labels), channels, size, size, generator=g)
        images[torch.arange(len(labels)), :, labels * 2] += 2.0
        return images, labels

    return RealData("tiny", *split(per_class), *split(per_class // 2),
                    mean=(0.5,) * channels, std=(0.25,) * channels)


@pytest.fixture
def tiny_data():
    return make_real_data()


@pytest.fixture
def tiny_config():
    """A config small enough for a unit test: 2-block width-8 ConvNet on 8x8 images, eager
    (the compiled path is compared with it in test_distill.py), fp32 whatever the CPU (auto
    would choose bf16 on some: tests of bf16 and auto ask for them)."""
    return RunConfig(dataset="MNIST", model="ConvNet", net_width=8, net_depth=2, ipc=1,
                     iterations=3, batch_real=8, batch_train=8, eval_models=1, eval_epochs=5,
                     device="cpu", execution="eager", precision="fp32")


@pytest.fixture
def tiny_mlp_config(tiny_config):
    """tiny_config matching with an MLP: ConvNet's width and depth back at their defaults,
    which a run that builds no ConvNet must leave them at."""
    return tiny_config.replace(model="MLP", net_width=RunConfig.net_width,
                               net_depth=RunConfig.net_depth)


def real_data_dir() -> str | None:
    path = os.environ.get("RAYGM_DATA_DIR")
    return path if path and (Path(path) / "MNIST/raw/train-images-idx3-ubyte").is_file() else None
