"""Final accuracy (%) per level of a factor: each finished trial as a dot, the level mean with
its 95% Student-t confidence interval, and significance tests between levels, stated under
the plot: Welch's one-way ANOVA across all levels (scipy.stats.f_oneway, equal_var=False)
and pairwise Welch t-tests (scipy.stats.ttest_ind, equal_var=False) with Holm-adjusted
p-values for the several pairs. Levels with one trial get no interval and no test.

Writes final_<factor>.png, final_<factor>.csv (n, mean, std, CI per level) and, when
there is a test, final_<factor>_tests.csv.
"""
from __future__ import annotations

import itertools
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy import stats

from analysis import common

TEST_COLUMNS = ["test", "levels", "mean difference (pp)", "statistic", "p", "p (Holm)"]


def final_values(results: common.Results, factor: str, metric: str) -> dict:
    """Level -> final accuracies (%) of its finished trials that have one."""
    finished = results.finished.dropna(subset=[metric])
    return {level: common.in_units(rows, metric).to_numpy()
            for level, rows in common.by_level(finished, factor)}


def summary_table(groups: dict, factor: str) -> pd.DataFrame:
    rows = []
    for level, values in groups.items():
        ci = common.ci95(values)
        rows.append({factor: level, "n": ci.n, "mean %": ci.mean, "std %": ci.std,
                     "95% CI ± %": ci.half, "CI low %": ci.mean - ci.half,
                     "CI high %": ci.mean + ci.half})
    return pd.DataFrame(rows)


def holm(p: np.ndarray) -> np.ndarray:
    """Holm's step-down adjustment: the k-th smallest of m p-values times (m - k + 1), kept
    monotone; controls the chance of any false 'significant' pair. NaN p-values (a pair
    without variance) are no test: they stay NaN and do not count in m."""
    adjusted = np.full(len(p), np.nan)
    tested = np.flatnonzero(~np.isnan(p))
    running = 0.0
    for rank, i in enumerate(tested[np.argsort(p[tested])]):
        running = max(running, min(1.0, (len(tested) - rank) * p[i]))
        adjusted[i] = running
    return adjusted


def tests_table(groups: dict) -> pd.DataFrame:
    """Welch's one-way ANOVA over all levels, then Welch t-tests for every pair of levels."""
    testable = {level: v for level, v in groups.items() if len(v) >= 2}
    if len(testable) < 2:
        return pd.DataFrame(columns=TEST_COLUMNS)
    anova = stats.f_oneway(*testable.values(), equal_var=False)
    rows = [{"test": "Welch one-way ANOVA", "levels": ", ".join(map(common.label, testable)),
             "mean difference (pp)": np.nan, "statistic": anova.statistic, "p": anova.pvalue,
             "p (Holm)": np.nan}]
    pairs = list(itertools.combinations(testable, 2))
    welch = [stats.ttest_ind(testable[a], testable[b], equal_var=False) for a, b in pairs]
    adjusted = holm(np.array([w.pvalue for w in welch]))
    for (a, b), w, p_holm in zip(pairs, welch, adjusted):
        rows.append({"test": "Welch t-test", "levels": f"{common.label(a)} vs {common.label(b)}",
                     "mean difference (pp)": testable[a].mean() - testable[b].mean(),
                     "statistic": w.statistic, "p": w.pvalue, "p (Holm)": p_holm})
    return pd.DataFrame(rows, columns=TEST_COLUMNS)


def statement(tests: pd.DataFrame) -> str:
    if tests.empty:
        return "no test: fewer than two levels with at least two trials"
    anova = tests.iloc[0]
    pairs = tests.iloc[1:]
    significant = pairs[pairs["p (Holm)"] < 0.05]["levels"].tolist()
    return (f"Welch one-way ANOVA: F = {anova['statistic']:.3g}, p = {anova['p']:.3g}; "
            f"pairs with Welch p (Holm) < 0.05: {', '.join(significant) or 'none'}")


def plot(results, factor, metric, groups, summary, text, path: Path) -> Path:
    colours = common.level_colours(results, factor)
    fig, ax = plt.subplots(figsize=(max(5, 1.3 * len(groups) + 2), 4.5))
    for x, (level, values) in enumerate(groups.items()):
        ci = summary.iloc[x]
        # evenly spread dots (not random jitter) so the figure is the same on every run
        spread = np.linspace(-0.15, 0.15, len(values)) if len(values) > 1 else [0.0]
        ax.scatter(x + np.asarray(spread), values, color=colours[level], alpha=0.5, s=18)
        ax.errorbar(x + 0.3, ci["mean %"],
                    yerr=None if np.isnan(ci["95% CI ± %"]) else ci["95% CI ± %"],
                    fmt="o", color=colours[level], capsize=5, markersize=7)
    ax.set_xticks(range(len(groups)),
                  [f"{common.label(level)}\n(n={len(v)})" for level, v in groups.items()])
    ax.set_xlabel(factor)
    ax.set_ylabel(f"final {common.metric_label(metric)}")
    ax.set_title(f"{results.name}: final {common.metric_label(metric)} by {factor}\n"
                 "dots: trials; marker and bar: mean with 95% CI")
    ax.grid(axis="y", alpha=0.3)
    fig.text(0.5, -0.04, text, ha="center", va="top", fontsize=9, wrap=True)
    return common.save_figure(fig, path)


def final(results: common.Results, factor: str, out: Path, metric: str = "acc_mean") -> common.Section:
    section = common.Section(f"Final accuracy by {factor}")
    reason = common.cannot_group(results, factor)
    groups = {} if reason else final_values(results, factor, metric)
    if not groups:
        section.notes.append(reason or f"no finished trial has a final `{metric}`.")
        return section
    summary = summary_table(groups, factor)
    tests = tests_table(groups)
    text = statement(tests)
    section.notes += common.single_trial_note({level: len(v) for level, v in groups.items()})
    section.notes.append(f"Significance: {text}.")
    section.images.append(plot(results, factor, metric, groups, summary, text,
                               out / f"final_{factor}.png"))
    section.tables.append(
        common.Table(f"final_{factor}", f"Final {common.metric_label(metric)} per level", summary))
    if not tests.empty:
        section.tables.append(
            common.Table(f"final_{factor}_tests", "Significance tests between levels", tests))
    return section


def main(argv: list[str] | None = None) -> None:
    common.run_per_factor(argv, __doc__, final)


if __name__ == "__main__":
    main()
