"""The cross-architecture table: synthetic sets matched with one network (rows) and
evaluated on others (columns, through `raygm evaluate --archs ...`), each cell the mean test
accuracy over the sets' seeds with its 95% Student-t CI; from one or more exported studies.
A set's evaluation on an architecture is its longest, then largest, re-evaluation under the
chosen protocol (`full`, DC's, by default).

    python -m analysis.cross_arch RESULTS [RESULTS ...] --out DIR [--protocol full]

Writes cross_arch.png (a heatmap of the means, each cell annotated mean ± CI (n)) and
cross_arch.csv (matched on, evaluated on, n, mean %, 95% CI ± %).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from analysis import common


def cross_table(folders: list[Path], protocol: str) -> pd.DataFrame:
    """matched on x evaluated on: n, mean % and CI over the finished trials' sets."""
    rows = []
    for folder in folders:
        finished = common.load(folder).finished["trial_id"]
        evaluations = common.read_evaluations(folder)
        rows.append(common.latest_evaluations(evaluations[evaluations["trial_id"].isin(finished)
                                       & (evaluations["protocol"] == protocol)]))
    evaluated = pd.concat(rows) if rows else pd.DataFrame()
    table = []
    for (model, arch), cell in evaluated.groupby(["model", "arch"]):
        ci = common.ci95(common.in_units(cell, "acc_mean"))
        table.append({"matched on": model, "evaluated on": arch, "n": ci.n,
                      "mean %": ci.mean, "95% CI ± %": ci.half})
    return pd.DataFrame(table, columns=["matched on", "evaluated on", "n", "mean %",
                                        "95% CI ± %"])


def plot(table: pd.DataFrame, title: str, path: Path) -> Path:
    order = common.model_order(set(table["matched on"]) | set(table["evaluated on"]))
    rows = [m for m in order if m in set(table["matched on"])]
    columns = [m for m in order if m in set(table["evaluated on"])]
    means = np.full((len(rows), len(columns)), np.nan)
    fig, ax = plt.subplots(figsize=(1.6 * len(columns) + 2, 0.8 * len(rows) + 2))
    for _, cell in table.iterrows():
        i, j = rows.index(cell["matched on"]), columns.index(cell["evaluated on"])
        means[i, j] = cell["mean %"]
        half = "" if np.isnan(cell["95% CI ± %"]) else f" ± {cell['95% CI ± %']:.1f}"
        ax.text(j, i, f"{cell['mean %']:.1f}{half}\n(n={cell['n']})", ha="center",
                va="center", fontsize=9)
    image = ax.imshow(means, cmap="viridis", alpha=0.6, aspect="auto")
    ax.set_xticks(range(len(columns)), columns)
    ax.set_yticks(range(len(rows)), rows)
    ax.set_xlabel("evaluated on")
    ax.set_ylabel("matched on")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, label="test accuracy (%)")
    return common.save_figure(fig, path)


def cross_arch(folders: list[Path], out: Path, protocol: str = "full") -> common.Section:
    section = common.Section("Cross-architecture accuracy")
    table = cross_table(folders, protocol)
    if table.empty:
        section.notes.append(f"no finished trial has a `{protocol}` re-evaluation: run "
                             "`raygm evaluate STUDY --archs ...` first.")
        return section
    studies = ", ".join(common.load(f).name for f in folders)
    section.notes.append(f"Sets of {studies}; each cell: mean over the sets' seeds with its "
                         f"95% CI, {protocol} protocol.")
    section.images.append(plot(table, f"{studies}: matched on x evaluated on ({protocol} "
                                      "protocol), mean ± 95% CI", out / "cross_arch.png"))
    section.tables.append(common.Table("cross_arch", "Test accuracy per matching and "
                                       "evaluation network", table))
    return section


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", metavar="RESULTS", type=Path, nargs="+",
                        help="folders written by `raygm export` (with evaluations.parquet)")
    parser.add_argument("--out", metavar="DIR", type=Path, required=True)
    parser.add_argument("--protocol", default="full", help="re-evaluation protocol (full, study)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    common.write([cross_arch(args.results, args.out, args.protocol)], args.out)


if __name__ == "__main__":
    main()
