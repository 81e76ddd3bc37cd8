import hashlib
import pickle

import numpy as np
import pytest
import torch
import torchvision

from raygm.data import DatasetNotFoundError, load_dataset, resolve_data_dir

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


def test_cifar10_from_tiny_pickles(tmp_path, monkeypatch):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        batch = {"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8),
                 "labels": [0, 1, 2, 3]}
        (folder / name).write_bytes(pickle.dumps(batch))
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": list("abcd")}))
    # torchvision checks the official md5 sums; point it at our tiny files'
    monkeypatch.setattr(torchvision.datasets.CIFAR10, "train_list",
                        [[n, _md5(folder / n)] for n in names[:5]])
    monkeypatch.setattr(torchvision.datasets.CIFAR10, "test_list",
                        [["test_batch", _md5(folder / "test_batch")]])
    monkeypatch.setattr(torchvision.datasets.CIFAR10, "meta",
                        {"filename": "batches.meta", "key": "label_names",
                         "md5": _md5(folder / "batches.meta")})
    data = load_dataset("CIFAR10", tmp_path, download=False)
    assert data.images.shape == (20, 3, 32, 32) and data.test_images.shape == (4, 3, 32, 32)
    first = np.frombuffer(pickle.loads((folder / "data_batch_1").read_bytes())["data"][0],
                          dtype=np.uint8).reshape(3, 32, 32)
    assert torch.allclose(data.to_pixels(data.images[:1])[0], torch.tensor(first) / 255.0,
                          atol=1e-5)


def test_svhn_from_tiny_mat(tmp_path, monkeypatch):
    scipy_io = pytest.importorskip("scipy.io")
    rng = np.random.default_rng(0)
    split_list = {}
    for split in ("train", "test"):
        name = f"{split}_32x32.mat"
        # SVHN stores (H, W, C, N) and labels 1..10 with 10 meaning digit 0
        scipy_io.savemat(tmp_path / name, {"X": rng.integers(0, 256, (32, 32, 3, 5), dtype=np.uint8),
                                           "y": np.array([[10], [1], [2], [3], [4]])})
        split_list[split] = ["", name, _md5(tmp_path / name)]
    monkeypatch.setattr(torchvision.datasets.SVHN, "split_list", split_list)
    data = load_dataset("SVHN", tmp_path, download=False)
    assert data.images.shape == (5, 3, 32, 32)
    assert data.labels.tolist() == [0, 1, 2, 3, 4]


def test_missing_files_error_names_directory_and_files(tmp_path):
    with pytest.raises(DatasetNotFoundError) as err:
        load_dataset("MNIST", tmp_path, download=False)
    message = str(err.value)
    assert str(tmp_path) in message
    assert "MNIST/raw/train-images-idx3-ubyte" in message and "RAYGM_DATA_DIR" in message


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
