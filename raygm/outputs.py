"""What a run writes to its output folder: config, metrics, evaluations, synthetic set, grids.

Metrics are appended and flushed line by line and files are replaced atomically, so a
crash loses at most the iteration in progress."""
from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torchvision.utils import make_grid, save_image

from .config import RunConfig
from .data import RealData


def atomic_save(obj, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def image_grid(images: torch.Tensor, data: RealData, scale: int = 3) -> torch.Tensor:
    """Pixel grid with one column per class and one row per image of the class."""
    ipc = len(images) // data.num_classes
    pixels = data.to_pixels(images.detach().cpu()).clamp(0, 1)
    pixels = pixels.view(data.num_classes, ipc, *pixels.shape[1:]).transpose(0, 1).flatten(0, 1)
    pixels = F.interpolate(pixels, scale_factor=scale, mode="nearest")
    return make_grid(pixels, nrow=data.num_classes, padding=2, pad_value=1.0)


def save_grid(images: torch.Tensor, data: RealData, folder: Path, iteration: int) -> Path:
    path = Path(folder) / f"grid_iter{iteration:05d}.png"
    save_image(image_grid(images, data), path)
    return path


def save_synthetic(state: dict, folder: Path) -> Path:
    """The synthetic set alone (what users load), from a Distillation.state_dict()."""
    path = Path(folder) / "synthetic.pt"
    atomic_save({k: state[k] for k in ("images", "labels", "config", "iteration")}, path)
    return path


class RunWriter:
    def __init__(self, out: str | os.PathLike, config: RunConfig, data: RealData):
        self.out, self.data = Path(out), data
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "config.json").write_text(json.dumps(config.to_dict(), indent=2))
        self._files = {}

    def _append(self, name: str, row: dict) -> None:
        if name not in self._files:
            f = open(self.out / name, "w", newline="")
            self._files[name] = (f, csv.DictWriter(f, fieldnames=list(row)))
            self._files[name][1].writeheader()
        f, writer = self._files[name]
        writer.writerow(row)
        f.flush()

    def log_iteration(self, record: dict) -> None:
        row = {k: v for k, v in record.items() if k != "class_loss"}
        row.update({f"loss_class_{k}": v for k, v in enumerate(record["class_loss"])})
        self._append("metrics.csv", row)

    def log_evaluation(self, record: dict) -> None:
        self._append("evals.csv", {**record, "accs": ";".join(f"{a:.4f}" for a in record["accs"])})

    def save_grid(self, images: torch.Tensor, iteration: int) -> Path:
        return save_grid(images, self.data, self.out, iteration)

    def save_synthetic(self, state: dict) -> None:
        save_synthetic(state, self.out)

    def close(self, summary: dict) -> None:
        for f, _ in self._files.values():
            f.close()
        (self.out / "summary.json").write_text(json.dumps(summary, indent=2))
