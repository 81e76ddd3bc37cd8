"""Per-class matching loss against distillation iteration: one panel per level of a factor,
one line per class, each the mean over the level's finished trials. With many iterations
the lines are a trailing rolling mean over iterations/50 iterations (said in the title), as
single-iteration losses are noisy (a fresh network every iteration). The y axis is
logarithmic when every loss is positive (with the exact-Hessian curvature term it can be
negative).

Writes class_loss_<factor>.png and class_loss_<factor>.csv (the plotted per-class loss at
the last iteration, per level).
"""
from __future__ import annotations

import math
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize

from analysis import common
from raygm.core import records

PREFIX = records.CLASS_LOSS_PREFIX


def class_columns(frame: pd.DataFrame) -> list[str]:
    """loss_class_<c> in class order (9 before 10)."""
    return sorted((c for c in frame.columns if c.startswith(PREFIX)),
                  key=lambda c: int(c.removeprefix(PREFIX)))


def level_curves(rows: pd.DataFrame, columns: list[str], window: int) -> pd.DataFrame:
    """Iteration-indexed per-class loss: mean over trials, then a trailing rolling mean."""
    mean = rows.groupby("iteration")[columns].mean().sort_index()
    return mean.rolling(window, min_periods=1).mean()


def class_colours(count: int) -> list:
    """Fixed per class: tab10 up to 10 classes, else a sequential map read off a colour bar."""
    cmap = plt.get_cmap("tab10" if count <= 10 else "viridis")
    return [cmap(c if count <= 10 else c / (count - 1)) for c in range(count)]


def plot(results, factor, curves: dict, columns, window, path: Path) -> Path:
    ncols = min(3, len(curves))
    nrows = math.ceil(len(curves) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.5 * ncols, 3.5 * nrows), sharey=True,
                             squeeze=False, layout="constrained")
    colours = class_colours(len(columns))
    positive = all((curve.to_numpy() > 0).all() for curve in curves.values())
    for ax, (level, curve) in zip(axes.flat, curves.items()):
        for c, column in enumerate(columns):
            ax.plot(curve.index, curve[column], color=colours[c], linewidth=1,
                    label=f"class {c}")
        ax.set_title(f"{factor} = {common.label(level)}")
        common.iteration_axis(ax)
        ax.set_yscale("log" if positive else "linear")
        ax.grid(alpha=0.3)
    for ax in axes[:, 0]:
        ax.set_ylabel("matching loss of the class")
    for ax in list(axes.flat)[len(curves):]:
        ax.set_visible(False)
    if len(columns) <= 10:
        axes.flat[0].legend(fontsize=7, ncols=2)
    else:
        fig.colorbar(ScalarMappable(Normalize(0, len(columns) - 1), "viridis"), ax=axes,
                     label="class")
    smoothing = f", rolling mean over {window} iterations" if window > 1 else ""
    fig.suptitle(f"{results.name}: per-class matching loss by {factor}\n"
                 f"mean over finished trials{smoothing}")
    return common.save_figure(fig, path)


def class_loss(results: common.Results, factor: str, out: Path, metric: str = "acc_mean") -> common.Section:
    """metric is unused: the signature is the one common.run_per_factor calls."""
    section = common.Section(f"Per-class matching loss by {factor}")
    rows = results.finished_iterations()
    columns = class_columns(rows)
    rows = rows.dropna(subset=columns, how="all")
    reason = common.cannot_group(results, factor)
    if reason or rows.empty:
        section.notes.append(reason or "no finished trial has per-class losses.")
        return section
    window = max(1, rows["iteration"].nunique() // 50)
    curves = {level: level_curves(level_rows, columns, window)
              for level, level_rows in common.by_level(rows, factor)}
    section.images.append(plot(results, factor, curves, columns, window,
                               out / f"class_loss_{factor}.png"))
    last = pd.DataFrame([{factor: level, "n": rows_of_level["trial_id"].nunique(),
                          "iteration": curves[level].index[-1],
                          **{f"class {c}": curves[level][column].iloc[-1]
                             for c, column in enumerate(columns)}}
                         for level, rows_of_level in common.by_level(rows, factor)])
    section.tables.append(common.Table(f"class_loss_{factor}",
                                       "Plotted per-class matching loss at the last iteration",
                                       last))
    return section


def main(argv: list[str] | None = None) -> None:
    common.run_per_factor(argv, __doc__, class_loss)


if __name__ == "__main__":
    main()
