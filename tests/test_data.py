import hashlib
import pickle

import numpy as np
import pytest
import scipy.io
import torch
import torchvision

from raygm.core.data import DatasetError, DatasetNotFoundError, load_dataset, resolve_data_dir

from conftest import write_idx


def test_mnist_from_tiny_idx_files(mnist_dir):
    data = load_dataset("MNIST", mnist_dir, download=False)
    assert data.images.shape == (60, 1, 28, 28) and data.test_images.shape == (20, 1, 28, 28)
    assert data.images.dtype == torch.float32 and data.labels.dtype == torch.int64
    assert data.num_classes == 10 and data.channels == 1 and data.im_size == (28, 28)
    # normalised with MNIST's constants: pixel 255 -> (1 - 0.1307) / 0.3081
    assert data.images.max().item() == pytest.approx((1 - 0.1307) / 0.3081, rel=1e-5)
    raw = torchvision.datasets.MNIST(str(mnist_dir), train=True, download=False)
    assert torch.allclose(data.to_pixels(data.images)[:, 0], raw.data.float() / 255, atol=1e-6)
    for c, idx in enumerate(data.class_indices):
        assert len(idx) == 6 and bool((data.labels[idx] == c).all())


def test_fashion_mnist_layout(tmp_path):
    for prefix, n in (("train", 20), ("t10k", 10)):
        write_idx(tmp_path / "FashionMNIST/raw" / f"{prefix}-images-idx3-ubyte",
                  np.zeros((n, 28, 28)))
        write_idx(tmp_path / "FashionMNIST/raw" / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 10)
    data = load_dataset("FashionMNIST", tmp_path, download=False)
    assert data.images.shape == (20, 1, 28, 28)
    assert data.images[0, 0, 0, 0].item() == pytest.approx(-0.2861 / 0.3530, rel=1e-5)


def _md5(path):
    return hashlib.md5(path.read_bytes()).hexdigest()


def write_svhn(root, splits, monkeypatch):
    """{split}_32x32.mat as SVHN ships them: X is (32, 32, 3, N) uint8 and y is (N, 1) with
    labels 1..10, 10 meaning the digit 0."""
    split_list = {}
    for split, (pixels, labels) in splits.items():
        name = f"{split}_32x32.mat"
        scipy.io.savemat(root / name, {"X": pixels.transpose(2, 3, 1, 0),
                                       "y": np.where(labels == 0, 10, labels)[:, None]
                                       .astype(np.uint8)})
        split_list[split] = ["", name, _md5(root / name)]
    # torchvision checks each file against the official md5 sum: point it at our tiny files'
    monkeypatch.setattr(torchvision.datasets.SVHN, "split_list", split_list)


def write_cifar(root, splits, monkeypatch, cls, folder, train_files, test_file, meta_file,
                meta_key, label_key):
    """CIFAR's python pickles: batches of {'data': (n, 3072) uint8 rows (R, G, B planes of
    32x32), label_key: [labels]}, and a meta pickle naming the classes."""
    (root / folder).mkdir()
    files = {"train": train_files, "test": [test_file]}
    listed = {}
    for split, (pixels, labels) in splits.items():
        parts = np.array_split(np.arange(len(labels)), len(files[split]))
        for name, part in zip(files[split], parts):
            batch = {"batch_label": name, "data": pixels[part].reshape(len(part), 3072),
                     label_key: labels[part].tolist(),
                     "filenames": [f"{i}.png" for i in part]}
            (root / folder / name).write_bytes(pickle.dumps(batch))
        listed[split] = [[name, _md5(root / folder / name)] for name in files[split]]
    classes = int(splits["train"][1].max()) + 1
    (root / folder / meta_file).write_bytes(pickle.dumps(
        {meta_key: [f"class{c}" for c in range(classes)]}))
    # torchvision checks each file against the official md5 sum: point it at our tiny files'
    monkeypatch.setattr(cls, "train_list", listed["train"])
    monkeypatch.setattr(cls, "test_list", listed["test"])
    monkeypatch.setattr(cls, "meta", {"filename": meta_file, "key": meta_key,
                                      "md5": _md5(root / folder / meta_file)})


WRITERS = {
    "SVHN": write_svhn,
    "CIFAR10": lambda root, splits, monkeypatch: write_cifar(
        root, splits, monkeypatch, torchvision.datasets.CIFAR10, "cifar-10-batches-py",
        [f"data_batch_{i}" for i in range(1, 6)], "test_batch", "batches.meta", "label_names",
        "labels"),
    "CIFAR100": lambda root, splits, monkeypatch: write_cifar(
        root, splits, monkeypatch, torchvision.datasets.CIFAR100, "cifar-100-python", ["train"],
        "test", "meta", "fine_label_names", "fine_labels"),
}

# DC's normalisation constants (utils.get_dataset), written out to catch a typo in DATASETS
DC_MEAN_STD = {"SVHN": ((0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970)),
               "CIFAR10": ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)),
               "CIFAR100": ((0.5071, 0.4866, 0.4409), (0.2673, 0.2564, 0.2762))}


def tiny_rgb_splits(num_classes, seed=0):
    """Random 32x32 RGB images (N, 3, 32, 32) uint8: 2 train and 1 test image per class."""
    rng = np.random.default_rng(seed)
    return {split: (rng.integers(0, 256, (n * num_classes, 3, 32, 32), dtype=np.uint8),
                    np.tile(np.arange(num_classes), n))
            for split, n in (("train", 2), ("test", 1))}


@pytest.mark.parametrize("name, num_classes", [("SVHN", 10), ("CIFAR10", 10), ("CIFAR100", 100)])
def test_rgb_dataset_from_tiny_files_in_its_own_format(name, num_classes, tmp_path, monkeypatch):
    splits = tiny_rgb_splits(num_classes)
    WRITERS[name](tmp_path, splits, monkeypatch)
    data = load_dataset(name, tmp_path, download=False)
    assert data.channels == 3 and data.im_size == (32, 32) and data.num_classes == num_classes
    assert data.images.dtype == torch.float32 and data.labels.dtype == torch.int64
    assert (data.mean, data.std) == DC_MEAN_STD[name]
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in DC_MEAN_STD[name])
    for images, labels, (pixels, written) in ((data.images, data.labels, splits["train"]),
                                               (data.test_images, data.test_labels,
                                                splits["test"])):
        assert images.shape == (len(written), 3, 32, 32)
        assert labels.tolist() == written.tolist()  # SVHN's 10 read as 0
        pixels = torch.from_numpy(pixels) / 255.0
        assert torch.allclose(images, (pixels - mean) / std, atol=1e-5)  # R, G, B in order
        assert torch.allclose(data.to_pixels(images), pixels, atol=1e-5)
    assert [len(idx) for idx in data.class_indices] == [2] * num_classes


@pytest.mark.parametrize("name", ["SVHN", "CIFAR10", "CIFAR100"])
def test_files_that_fail_the_checksum_are_reported_as_corrupt(name, tmp_path):
    with pytest.MonkeyPatch.context() as patch:  # the files are written, then the md5s restored
        WRITERS[name](tmp_path, tiny_rgb_splits(10), patch)
    with pytest.raises(DatasetError, match="present but unreadable or corrupt") as err:
        load_dataset(name, tmp_path, download=False)
    assert str(tmp_path) in str(err.value)


@pytest.mark.parametrize("name, first_file", [
    ("MNIST", "MNIST/raw/train-images-idx3-ubyte"),
    ("FashionMNIST", "FashionMNIST/raw/train-images-idx3-ubyte"),
    ("SVHN", "train_32x32.mat"), ("CIFAR10", "cifar-10-batches-py/data_batch_1"),
    ("CIFAR100", "cifar-100-python/train")])
def test_missing_files_error_names_directory_and_files(name, first_file, tmp_path):
    with pytest.raises(DatasetNotFoundError) as err:
        load_dataset(name, tmp_path, download=False)
    message = str(err.value)
    assert str(tmp_path) in message
    assert first_file in message and "RAYGM_DATA_DIR" in message


def test_data_dir_resolution(monkeypatch, tmp_path):
    monkeypatch.setenv("RAYGM_DATA_DIR", str(tmp_path / "env"))
    assert resolve_data_dir(tmp_path / "flag") == tmp_path / "flag"
    assert resolve_data_dir() == tmp_path / "env"
    monkeypatch.delenv("RAYGM_DATA_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert resolve_data_dir() == tmp_path / "cache/raygm/data"


def test_sample_draws_from_the_class(mnist_dir):
    data = load_dataset("MNIST", mnist_dir, download=False)
    g = torch.Generator().manual_seed(0)
    batch = data.sample(3, 4, g)
    rows = [(data.images == b).flatten(1).all(1).nonzero().item() for b in batch]
    assert len(set(rows)) == 4 and all(data.labels[r] == 3 for r in rows)
