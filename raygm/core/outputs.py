"""What a run writes: image grids, the synthetic set, and (`RunFiles`, the reporter of
`raygm distill`) config, metrics, evaluations and a summary in an output folder.

Metrics are appended and flushed line by line and other files replaced atomically, so a
crash loses at most the iteration in progress."""
from __future__ import annotations

import csv
import io
import json
import math
import os
from dataclasses import asdict
from pathlib import Path

import torch
import torch.nn.functional as F
from torchvision.utils import make_grid, save_image

from .config import RunConfig
from .data import RealData
from .driver import Reporter
from .files import mark, torch_bytes, write_atomic
from .gpu import device_name
from .records import Progress, Report, Snapshot

SYNTHETIC = "synthetic.pt"
RUN_FOLDER = "raygm distill run folder"  # its files.MARKER


def image_grid(images: torch.Tensor, data: RealData, scale: int = 3) -> torch.Tensor:
    """Pixel grid with one column per class and one row per image of the class."""
    ipc = len(images) // data.num_classes
    pixels = data.to_pixels(images.detach().cpu()).clamp(0, 1)
    pixels = pixels.view(data.num_classes, ipc, *pixels.shape[1:]).transpose(0, 1).flatten(0, 1)
    pixels = F.interpolate(pixels, scale_factor=scale, mode="nearest")
    return make_grid(pixels, nrow=data.num_classes, padding=2, pad_value=1.0)


def grid_name(iteration: int) -> str:
    return f"grid_iter{iteration:05d}.png"


def save_snapshot(folder: str | os.PathLike, snapshot: Snapshot, data: RealData) -> None:
    """The synthetic set alone (what users load: images, labels, config, iteration, factor:
    stored images, formation.decode gives the training set) and, when due, its image grid."""
    run = snapshot.state["run"]
    write_atomic(folder, SYNTHETIC, torch_bytes(
        {k: run[k] for k in ("images", "labels", "config", "iteration", "factor")}))
    if snapshot.grid:
        png = io.BytesIO()
        save_image(image_grid(run["images"], data), png, format="png")
        write_atomic(folder, grid_name(snapshot.iteration), png.getvalue())


class RunFiles(Reporter):
    """The output folder of `raygm distill`."""

    def __init__(self, out: str | os.PathLike, config: RunConfig, data: RealData,
                 baseline: float | None = None):
        self.out, self.data, self.config, self.baseline = Path(out), data, config, baseline
        self.out.mkdir(parents=True, exist_ok=True)
        mark(self.out, RUN_FOLDER)
        write_atomic(self.out, "config.json", json.dumps(config.to_dict(), indent=2).encode())
        self.evaluations, self._files = [], {}

    def _append(self, name: str, row: dict) -> None:
        if name not in self._files:
            f = open(self.out / name, "w", newline="")
            self._files[name] = (f, csv.DictWriter(f, fieldnames=list(row)))
            self._files[name][1].writeheader()
        f, writer = self._files[name]
        writer.writerow(row)
        f.flush()

    def log(self, report: Report) -> None:
        if report.step is not None:
            self._append("metrics.csv", {"iteration": report.iteration, **report.step.metrics()})
        for record in report.evaluations:
            row = asdict(record)
            if self.baseline:
                row["retained"] = record.acc_mean / self.baseline
            self.evaluations.append(row)
            self._append("evals.csv", {**row, "accs": ";".join(f"{a:.4f}" for a in record.accs)})
        if report.snapshot is not None:
            save_snapshot(self.out, report.snapshot, self.data)

    def close(self, progress: Progress) -> None:
        for f, _ in self._files.values():
            f.close()
        summary = {"config": self.config.to_dict(), "evaluations": self.evaluations,
                   "wall_seconds": progress.wall_seconds,
                   "distill_seconds": progress.distill_seconds,
                   "device_name": device_name(torch.device(self.config.device)),
                   # JSON has no NaN: none on a CPU
                   "peak_memory_mb": None if math.isnan(progress.peak_memory_mb)
                   else progress.peak_memory_mb}
        write_atomic(self.out, "summary.json", json.dumps(summary, indent=2).encode())
