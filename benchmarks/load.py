"""MNIST train split into one normalised tensor: raygm's whole-array load against indexing
torchvision's dataset item by item (ToTensor + Normalize per image, as DC's code does).

    python benchmarks/load.py [--data-dir DIR]
"""
from __future__ import annotations

import argparse
import time

import torch
import torchvision
from torchvision import transforms

from common import machine
from raygm.core.data import load_dataset, resolve_data_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir")
    args = parser.parse_args()
    root = str(resolve_data_dir(args.data_dir))

    start = time.perf_counter()
    tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize([0.1307], [0.3081])])
    ds = torchvision.datasets.MNIST(root, train=True, download=False, transform=tf)
    items = [ds[i] for i in range(len(ds))]
    per_item_images = torch.stack([x for x, _ in items])
    per_item = time.perf_counter() - start

    start = time.perf_counter()
    data = load_dataset("MNIST", args.data_dir, download=False)
    whole = time.perf_counter() - start
    assert torch.allclose(per_item_images, data.images, atol=1e-5)

    print(f"{machine()}")
    print("| path | seconds | speed-up |")
    print("|---|---|---|")
    print(f"| item by item (torchvision, per-image transforms) | {per_item:.2f} | 1.00x |")
    print(f"| whole array (raygm.core.data.load_dataset, train + test) | {whole:.2f} | "
          f"{per_item / whole:.1f}x |")


if __name__ == "__main__":
    main()
