"""Accuracy (%) against distillation iteration, one line per level of a factor: the mean
over the level's finished trials (seeds, pooled over the other factors) at each evaluated
iteration, with a 95% Student-t confidence band.

Writes curves_<factor>.png and curves_<factor>.csv (level, iteration, n, mean, CI).
"""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from analysis import common


def curve_table(results: common.Results, factor: str, metric: str):
    """Per level and evaluated iteration: trials, mean accuracy (%), 95% CI half-width."""
    evaluated = results.finished_iterations().dropna(subset=[metric])
    rows = []
    for level, rows_of_level in common.by_level(evaluated, factor):
        for iteration, at in rows_of_level.groupby("iteration"):
            ci = common.ci95(common.in_units(at, metric))
            rows.append({factor: level, "iteration": iteration, "n": ci.n,
                         "mean %": ci.mean, "95% CI ± %": ci.half})
    return pd.DataFrame(rows, columns=[factor, "iteration", "n", "mean %", "95% CI ± %"])


def plot(results: common.Results, factor: str, metric: str, table, path: Path) -> Path:
    colours = common.level_colours(results, factor)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for level, curve in common.by_level(table, factor):
        colour = colours[level]
        n = curve["n"].max()
        ax.plot(curve["iteration"], curve["mean %"], marker="o", color=colour,
                label=f"{common.label(level)} (n={n})")
        ax.fill_between(curve["iteration"], curve["mean %"] - curve["95% CI ± %"],
                        curve["mean %"] + curve["95% CI ± %"], color=colour, alpha=0.2,
                        linewidth=0)
    common.iteration_axis(ax)
    ax.set_ylabel(common.metric_label(metric))
    ax.set_title(f"{results.name}: {common.metric_label(metric)} vs iteration by {factor}\n"
                 "mean over finished trials, band: 95% CI")
    ax.legend(title=factor)
    ax.grid(alpha=0.3)
    return common.save_figure(fig, path)


def curves(results: common.Results, factor: str, out: Path, metric: str = "acc_mean") -> common.Section:
    section = common.Section(f"Accuracy vs iteration by {factor}")
    reason = common.cannot_group(results, factor)
    table = None if reason else curve_table(results, factor, metric)
    if reason or table.empty:
        section.notes.append(reason or f"no finished trial has an evaluated `{metric}`.")
        return section
    section.notes += common.single_trial_note(
        {level: rows["n"].max() for level, rows in common.by_level(table, factor)})
    section.images.append(plot(results, factor, metric, table, out / f"curves_{factor}.png"))
    section.tables.append(common.Table(f"curves_{factor}",
                                       f"Mean {common.metric_label(metric)} per evaluated iteration",
                                       table))
    return section


def main(argv: list[str] | None = None) -> None:
    common.run_per_factor(argv, __doc__, curves)


if __name__ == "__main__":
    main()
