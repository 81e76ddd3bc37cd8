"""Real datasets as whole normalised tensors with per-class indices.

torchvision's dataset classes find, check and (when online) download the files; we then
take their backing arrays in one piece instead of indexing item by item, which is what
makes loading MNIST take well under a second rather than ~19 s.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torchvision

from .choices import Choices
from .gpu import to_device



@dataclass(frozen=True)
class DatasetSpec:
    loader: type                  # the torchvision dataset class
    mean: tuple[float, ...]
    std: tuple[float, ...]
    files: tuple[str, ...]        # expected under the data directory
    num_classes: int
    size: int                     # images are size x size pixels
    digits: bool = False          # digits are not flipped (DSA's augmentation)


def _idx_files(folder: str) -> tuple[str, ...]:
    return tuple(f"{folder}/raw/{f}" for f in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                               "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"))


DATASETS = Choices("dataset", {
    "MNIST": DatasetSpec(torchvision.datasets.MNIST, (0.1307,), (0.3081,), _idx_files("MNIST"), 10,
                         28, digits=True),
    "FashionMNIST": DatasetSpec(torchvision.datasets.FashionMNIST, (0.2861,), (0.3530,),
                                _idx_files("FashionMNIST"), 10, 28),
    "SVHN": DatasetSpec(torchvision.datasets.SVHN, (0.4377, 0.4438, 0.4728),
                        (0.1980, 0.2010, 0.1970), ("train_32x32.mat", "test_32x32.mat"), 10,
                        32, digits=True),
    "CIFAR10": DatasetSpec(torchvision.datasets.CIFAR10, (0.4914, 0.4822, 0.4465),
                           (0.2023, 0.1994, 0.2010), tuple(f"cifar-10-batches-py/{f}" for f in (
                               *[f"data_batch_{i}" for i in range(1, 6)], "test_batch",
                               "batches.meta")), 10, 32),
    "CIFAR100": DatasetSpec(torchvision.datasets.CIFAR100, (0.5071, 0.4866, 0.4409),
                            (0.2673, 0.2564, 0.2762),
                            tuple(f"cifar-100-python/{f}" for f in ("train", "test", "meta")), 100,
                            32),
})


class DatasetNotFoundError(FileNotFoundError):
    """A dataset's files are not in the data directory (and could not be downloaded)."""


class DatasetError(ValueError):
    """A dataset's files are present but cannot be used: unreadable, or labels outside its
    classes."""


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """--data-dir, else $RAYGM_DATA_DIR, else the user's cache directory."""
    if data_dir:
        return Path(data_dir).expanduser()
    if os.environ.get("RAYGM_DATA_DIR"):
        return Path(os.environ["RAYGM_DATA_DIR"]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "raygm" / "data"


@dataclass
class RealData:
    name: str
    images: torch.Tensor          # (N, C, H, W) float32, normalised
    labels: torch.Tensor          # (N,) int64
    test_images: torch.Tensor
    test_labels: torch.Tensor
    mean: tuple[float, ...]
    std: tuple[float, ...]
    num_classes: int = 0          # 0: as many as the labels show

    def __post_init__(self):
        self.num_classes = self.num_classes or int(self.labels.max()) + 1
        order = torch.argsort(self.labels, stable=True)
        self.class_indices = list(torch.split(order, torch.bincount(
            self.labels, minlength=self.num_classes).tolist()))

    @property
    def channels(self) -> int:
        return self.images.shape[1]

    @property
    def im_size(self) -> tuple[int, int]:
        return tuple(self.images.shape[2:])

    def sample(self, c: int, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n random real images of class c (without replacement, as DC's get_images)."""
        idx = self.class_indices[c]
        pick = torch.randperm(len(idx), generator=generator)[:n]
        return self.images[idx[to_device(pick, idx.device)]]

    def to(self, device: torch.device | str) -> "RealData":
        return RealData(self.name, self.images.to(device), self.labels.to(device),
                        self.test_images.to(device), self.test_labels.to(device),
                        self.mean, self.std, self.num_classes)

    def to_pixels(self, images: torch.Tensor) -> torch.Tensor:
        """Undo the normalisation: pixel values, nominally in [0, 1]."""
        return images * _per_channel(self.std, images) + _per_channel(self.mean, images)

    def from_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        return (pixels - _per_channel(self.mean, pixels)) / _per_channel(self.std, pixels)


def _per_channel(values: tuple[float, ...], like: torch.Tensor) -> torch.Tensor:
    return torch.tensor(values, device=like.device).view(1, -1, 1, 1)


def _open(cls, root: Path, name: str, train: bool, download: bool, expected: list[str]):
    kwargs = {"split": "train" if train else "test"} if name == "SVHN" else {"train": train}
    missing = [f for f in expected if not (root / f).is_file()]
    if missing:
        reason = ""
        if download:
            try:
                return cls(str(root), download=True, **kwargs)
            except Exception as exc:  # no network, mirror down, ...: report what was expected
                reason = f" (download failed: {exc})"
        raise DatasetNotFoundError(
            f"{name} not found in data directory {root}{reason}. Expected files there: "
            + ", ".join(expected) + f"; missing: {', '.join(missing)}"
            + ". Set --data-dir or RAYGM_DATA_DIR to the folder that holds them.")
    try:
        return cls(str(root), download=False, **kwargs)
    except Exception as exc:  # present, but torchvision cannot read them (or their checksum)
        raise DatasetError(f"{name} files in data directory {root} are present but unreadable "
                           f"or corrupt ({type(exc).__name__}: {exc}); replace them, e.g. "
                           "delete them and let torchvision download them again") from None


def _as_tensors(ds, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The dataset's backing array as uint8 (N, C, H, W) and its labels, in one piece."""
    if name in ("MNIST", "FashionMNIST"):
        return ds.data.unsqueeze(1), ds.targets.long()
    if name == "SVHN":
        return torch.from_numpy(ds.data), torch.from_numpy(ds.labels.astype(np.int64))
    return torch.from_numpy(ds.data).permute(0, 3, 1, 2), torch.tensor(ds.targets)


def load_dataset(name: str, data_dir: str | os.PathLike | None = None,
                 download: bool = True) -> RealData:
    spec = DATASETS[name]
    cls, mean, std, expected = spec.loader, spec.mean, spec.std, list(spec.files)
    root = resolve_data_dir(data_dir)
    split = {}
    for train in (True, False):
        raw, labels = _as_tensors(_open(cls, root, name, train, download, expected), name)
        outside = labels[(labels < 0) | (labels >= spec.num_classes)].unique().tolist()
        if outside or len(labels) != len(raw) or len(labels) == 0:
            split_name = "train" if train else "test"
            raise DatasetError(
                f"{name} in data directory {root}: the {split_name} split has "
                + (f"labels {outside[:5]} outside its {spec.num_classes} classes "
                   f"0..{spec.num_classes - 1}" if outside else
                   f"{len(raw)} images and {len(labels)} labels")
                + "; its files are not an intact copy of the dataset")
        pixels = raw.float().div_(255)
        split[train] = (pixels.sub_(_per_channel(mean, pixels)).div_(_per_channel(std, pixels))
                        .contiguous(), labels)
    return RealData(name, *split[True], *split[False], mean=mean, std=std,
                    num_classes=spec.num_classes)
