"""Final accuracy (%) against the seconds each trial spent distilling, per level of a factor:
each finished trial as a dot, and the level's mean with 95% Student-t intervals on both axes.
It shows what a configuration's accuracy costs: a term that wins at equal iterations but
takes three times as long must be set against the reference given the same seconds.

Writes cost_<factor>.png and cost_<factor>.csv (level, n, seconds and accuracy with CIs).
"""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from analysis import common


def cost_table(results: common.Results, factor: str, metric: str) -> pd.DataFrame:
    rows = []
    for level, trials in common.by_level(results.finished.dropna(subset=[metric]), factor):
        seconds, accuracy = common.ci95(trials["distill_seconds"]), common.ci95(
            common.in_units(trials, metric))
        rows.append({factor: level, "n": seconds.n, "distillation s": seconds.mean,
                     "s 95% CI ±": seconds.half, "mean %": accuracy.mean,
                     "95% CI ± %": accuracy.half})
    return pd.DataFrame(rows)


def cost(results: common.Results, factor: str, out: Path,
         metric: str = "acc_mean") -> common.Section:
    section = common.Section(f"Accuracy vs distillation seconds by {factor}")
    reason = common.cannot_group(results, factor)
    table = None if reason else cost_table(results, factor, metric)
    if reason or table.empty:
        section.notes.append(reason or f"no finished trial has a final `{metric}`.")
        return section
    colours = common.level_colours(results, factor)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    trials = results.finished.dropna(subset=[metric])
    for (level, rows), (_, summary) in zip(common.by_level(trials, factor), table.iterrows()):
        ax.scatter(rows["distill_seconds"], common.in_units(rows, metric),
                   color=colours[level], alpha=0.4, s=16)
        ax.errorbar(summary["distillation s"], summary["mean %"],
                    xerr=np.nan_to_num(summary["s 95% CI ±"]),
                    yerr=np.nan_to_num(summary["95% CI ± %"]), fmt="o", capsize=4,
                    color=colours[level], label=f"{common.label(level)} (n={summary['n']})")
    ax.set_xlabel(common.metric_label("distill_seconds"))
    ax.set_ylabel(f"final {common.metric_label(metric)}")
    ax.set_title(f"{results.name}: accuracy vs distillation time by {factor}\n"
                 "dots: trials; marker and bars: mean with 95% CIs")
    ax.legend(title=factor)
    ax.grid(alpha=0.3)
    section.images.append(common.save_figure(fig, out / f"cost_{factor}.png"))
    section.tables.append(common.Table(f"cost_{factor}", "Distillation seconds and final "
                                       f"{common.metric_label(metric)} per level", table))
    return section


def main(argv: list[str] | None = None) -> None:
    common.run_per_factor(argv, __doc__, cost)


if __name__ == "__main__":
    main()
