"""Montage of synthetic image grids: for each level of a factor, the last grid PNG (one
column per class, one row per synthetic image of the class) of the level's first finished
trial (lowest seed, then trial id), titled by level, seed and iteration; with initial=True
the first grid instead (iteration 0 when the study evaluates there: the initialisation).

Writes montage_<factor>[_initial].png and .csv (which trial and file each row shows).
"""
from __future__ import annotations

import re
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from analysis import common

ITERATION = re.compile(r"grid_iter(\d+)\.png$")


def first_grid(results: common.Results, trials: pd.DataFrame, initial: bool = False) -> dict:
    """The first trial's last (initial: first) grid: its trial id, seed, iteration and
    resolved path (None when the trial saved no grid)."""
    first = trials.sort_values(["seed", "trial_id"]).iloc[0]
    paths = first["grid_paths"]
    path = results.resolve(paths[0 if initial else -1]) if paths is not None and len(paths) \
        else None
    match = ITERATION.search(path.name) if path else None
    return {"trial_id": first["trial_id"], "seed": first["seed"],
            "iteration": int(match.group(1)) if match else None, "grid": path}


def plot(results, factor, shown: pd.DataFrame, path: Path, initial: bool) -> Path:
    images = [plt.imread(p) if p is not None and p.is_file() else None for p in shown["grid"]]
    # rows as tall as the widest grid's aspect asks, so every grid keeps its proportions
    aspects = [im.shape[0] / im.shape[1] for im in images if im is not None] or [0.2]
    width = 9
    fig, axes = plt.subplots(len(shown), 1, squeeze=False,
                             figsize=(width, len(shown) * (width * max(aspects) + 0.6)),
                             layout="constrained")
    for ax, image, row in zip(axes[:, 0], images, shown.itertuples(index=False)):
        ax.set_axis_off()
        where = f"seed {row.seed}, iteration {row.iteration}"
        ax.set_title(f"{factor} = {common.label(getattr(row, factor))} ({where})", fontsize=10)
        if image is None:
            ax.text(0.5, 0.5, "no grid image", ha="center", va="center", transform=ax.transAxes)
        else:
            ax.imshow(image, cmap="gray" if image.ndim == 2 else None, interpolation="nearest")
    fig.suptitle(f"{results.name}: {'initial' if initial else 'final'} synthetic images by "
                 f"{factor}\n"
                 "one column per class, first finished trial of each level")
    return common.save_figure(fig, path)


def montage(results: common.Results, factor: str, out: Path, metric: str = "acc_mean",
            initial: bool = False) -> common.Section:
    """metric is unused: the signature is the one common.run_per_factor calls."""
    section = common.Section(f"{'Initial s' if initial else 'S'}ynthetic images by {factor}")
    reason = common.cannot_group(results, factor)
    if reason or results.finished.empty:
        section.notes.append(reason or "no finished trial.")
        return section
    shown = pd.DataFrame([{factor: level, **first_grid(results, trials, initial)}
                          for level, trials in common.by_level(results.finished, factor)])
    missing = [common.label(level) for level, grid in zip(shown[factor], shown["grid"])
               if grid is None or not grid.is_file()]
    if missing:
        section.notes.append(f"no grid image found for: {', '.join(missing)}")
    name = f"montage_{factor}" + ("_initial" if initial else "")
    section.images.append(plot(results, factor, shown, out / f"{name}.png", initial))
    section.tables.append(common.Table(name, "Grid shown per level", shown))
    return section


def main(argv: list[str] | None = None) -> None:
    common.run_per_factor(argv, __doc__, montage)


if __name__ == "__main__":
    main()
