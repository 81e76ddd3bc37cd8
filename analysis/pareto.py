"""Pareto front of a two-objective study (study.json "objectives", e.g. acc_mean max and
distill_seconds min): every finished trial as a dot (first objective up, second across,
coloured by the first factor that has levels), the non-dominated trials ringed and joined
by the step line bounding what the study reached.

Writes pareto.png and pareto.csv (the front). With one objective it says so and writes
nothing.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from analysis import common


def pareto_mask(values: np.ndarray, maximise: list[bool]) -> np.ndarray:
    """Rows of values (n x k) that no other row dominates (at least as good in every
    objective and better in one). Ties are all kept."""
    better = values * np.where(maximise, 1.0, -1.0)  # larger is better in every column
    at_least = (better[None, :, :] >= better[:, None, :]).all(axis=2)  # [i, j]: j >= i
    strictly = (better[None, :, :] > better[:, None, :]).any(axis=2)
    return ~(at_least & strictly).any(axis=1)


def plot(results, y, x, trials, front_mask, colour_by, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    xs, ys = common.in_units(trials, x["metric"]), common.in_units(trials, y["metric"])
    if colour_by:
        colours = common.level_colours(results, colour_by)
        for level, rows in common.by_level(trials, colour_by):
            ax.scatter(xs[rows.index], ys[rows.index], color=colours[level], alpha=0.7,
                       label=f"{colour_by} = {common.label(level)}")
    else:
        ax.scatter(xs, ys, color="tab:grey", alpha=0.7, label="trial")
    order = np.argsort(xs[front_mask].to_numpy(), kind="stable")
    fx, fy = xs[front_mask].to_numpy()[order], ys[front_mask].to_numpy()[order]
    # the best first objective reachable at a given second one changes at front points:
    # to their right when the second objective is minimised, to their left when maximised
    ax.step(fx, fy, where="post" if x["mode"] == "min" else "pre", color="black",
            linewidth=1.2, label="Pareto front")
    ax.scatter(fx, fy, s=90, facecolors="none", edgecolors="black", linewidths=1.5)
    ax.set_xlabel(f"{common.metric_label(x['metric'])}, {x['mode']}imised")
    ax.set_ylabel(f"{common.metric_label(y['metric'])}, {y['mode']}imised")
    ax.set_title(f"{results.name}: {y['metric']} against {x['metric']}\n"
                 f"{front_mask.sum()} of {len(trials)} finished trials non-dominated")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return common.save_figure(fig, path)


def pareto(results: common.Results, out: Path, factors: list[str]) -> common.Section:
    section = common.Section("Pareto front")
    if len(results.objectives) != 2:
        section.notes.append(f"{len(results.objectives)} objective(s) in study.json: a Pareto "
                             "front needs two.")
        return section
    y, x = results.objectives
    reason = common.absent(results, [y["metric"], x["metric"]])
    if reason:
        section.notes.append(f"no front: {reason}.")
        return section
    trials = results.finished.dropna(subset=[y["metric"], x["metric"]]).reset_index(drop=True)
    if trials.empty:
        section.notes.append("no finished trial has both objectives.")
        return section
    front = pareto_mask(trials[[y["metric"], x["metric"]]].to_numpy(dtype=float),
                        [y["mode"] == "max", x["mode"] == "max"])
    colour_by = next((f for f in factors if not common.cannot_group(results, f)), None)
    section.images.append(plot(results, y, x, trials, front, colour_by, out / "pareto.png"))
    chosen = trials[front]
    table = pd.DataFrame({
        "trial_id": chosen["trial_id"],
        **{f: chosen[f] for f in results.factors}, "seed": chosen["seed"],
        common.metric_label(y["metric"]): common.in_units(chosen, y["metric"]),
        common.metric_label(x["metric"]): common.in_units(chosen, x["metric"]),
    }).sort_values(common.metric_label(x["metric"]))
    section.tables.append(common.Table("pareto", "Non-dominated trials", table))
    return section


def main(argv: list[str] | None = None) -> None:
    args, results, factors = common.setup(argv, __doc__)
    common.write([pareto(results, args.out, factors)], args.out)


if __name__ == "__main__":
    main()
