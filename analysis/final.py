"""Final accuracy (%) per level of a factor: each finished trial as a dot, the level mean with
its 95% Student-t confidence interval, and significance tests between levels, stated under
the plot. Levels with one trial get no interval and no test.

Across all levels: Welch's one-way ANOVA (scipy.stats.f_oneway, equal_var=False), which
treats the trials as independent samples. Between each pair of levels A and B: the
difference B - A in percentage points with its 95% Student-t confidence interval, from

- a paired test when the trials pair by seed. Two configurations run with the same seed see
  the same random networks, batches and evaluation networks wherever the configuration does
  not change them (common random numbers), so the noise they share cancels in their
  difference. A trial of A pairs with a trial of B when both have the same seed and the same
  value in every other config column that varies within a level (the study's other
  factors); run bookkeeping (trial_id, device, status, accuracies, times, paths) does
  not count, and a key held by two trials of one level pairs neither. With at least
  MIN_PAIRS pairs: the paired t-test over the pairs' differences (scipy.stats.ttest_rel),
  checked by the Wilcoxon signed-rank test (scipy.stats.wilcoxon; n/a when every difference
  is 0). Trials without a partner are left out of it; the table and the note say how many.
- otherwise Welch's t-test (scipy.stats.ttest_ind, equal_var=False) on all their trials.

The pairs' p-values are Holm-adjusted together. ci_widths gives, for two levels, the CI
half-width of their difference paired and unpaired on the same trials: what pairing gains.

Writes final_<factor>.png, final_<factor>.csv (n, mean, std, CI per level) and, when
there is a test, final_<factor>_tests.csv.
"""
from __future__ import annotations

import itertools
import math
from collections import Counter
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy import stats

from analysis import common
from raygm.core import records

TEST_COLUMNS = ["test", "levels", "pairs", "left out", "mean difference (pp)",
                "95% CI low (pp)", "95% CI high (pp)", "statistic", "p", "p (Holm)",
                "Wilcoxon p"]
MIN_PAIRS = 2  # the fewest differences with a variance, hence a t interval
# columns that say how a trial ran, not what it ran; accuracies (acc_*, and a protocol's
# <protocol>_acc_*) are left out too
BOOKKEEPING = {"study", "trial_id", "device", *records.trial_columns(())}


def analysed(results: common.Results, metric: str) -> pd.DataFrame:
    """The finished trials that have the metric."""
    return results.finished.dropna(subset=[metric])


def final_values(results: common.Results, factor: str, metric: str) -> dict:
    """Level -> final accuracies (%) of its finished trials that have one."""
    return {level: common.in_units(rows, metric).to_numpy()
            for level, rows in common.by_level(analysed(results, metric), factor)}


def pairing_keys(results: common.Results, factor: str, metric: str) -> dict:
    """Level -> each trial's pairing key, in final_values' order: its seed and its value of
    every other config column that varies within a level (the study's other factors). Trials
    of two levels with the same key differ only in the factor and ran on the same random
    numbers. A column constant within every level is part of what the levels are (e.g. the
    iterations of a level 'none, 250 iterations'): it cannot split pairs."""
    frame = analysed(results, metric)
    levels = frame[factor].map(common.level_of)

    def varies_within_a_level(column: str) -> bool:
        values = pd.DataFrame({"level": levels, "value": frame[column].map(common.level_of)})
        return bool((values.groupby("level")["value"].nunique(dropna=False) > 1).any())

    others = [c for c in frame.columns
              if c not in BOOKKEEPING | {factor, "seed"} and "acc_" not in c  # acc_*, full_acc_*
              and varies_within_a_level(c)]
    # seed stays in the key when it is the factor itself: its levels then never pair
    columns = ["seed", *others]
    return {level: [tuple(map(common.level_of, key))
                    for key in rows[columns].itertuples(index=False)]
            for level, rows in common.by_level(frame, factor)}


def matched(values: dict, keys: dict, a, b) -> tuple[np.ndarray, np.ndarray]:
    """Final accuracies of the trials of a and b that pair, partner at the same position. A
    key held by two trials of one level (a rerun) has no single partner: neither pairs."""
    def unique(level) -> dict:
        count = Counter(keys[level])
        return {k: v for k, v in zip(keys[level], values[level]) if count[k] == 1}

    in_a, in_b = unique(a), unique(b)
    shared = [k for k in in_a if k in in_b]
    return np.array([in_a[k] for k in shared]), np.array([in_b[k] for k in shared])


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


def wilcoxon_p(differences: np.ndarray) -> float:
    """Signed-rank p-value; NaN when every difference is 0 (scipy then says p = 1, which is
    no test)."""
    return stats.wilcoxon(differences).pvalue if np.any(differences != 0) else math.nan


def half_width(test) -> float:
    ci = test.confidence_interval()
    return (ci.high - ci.low) / 2


def compare(x: np.ndarray, y: np.ndarray, x_paired: np.ndarray, y_paired: np.ndarray) -> dict:
    """The test row of y - x (x, y: all trials of two levels; *_paired: those that pair)."""
    pairs = len(x_paired)
    if pairs >= MIN_PAIRS:
        test = stats.ttest_rel(y_paired, x_paired)
        differences = y_paired - x_paired
        row = {"test": f"paired t-test (n={pairs} pairs)", "left out": len(x) + len(y) - 2 * pairs,
               "mean difference (pp)": differences.mean(),
               "Wilcoxon p": wilcoxon_p(differences)}
    else:
        test = stats.ttest_ind(y, x, equal_var=False)
        row = {"test": "Welch t-test", "left out": 0, "mean difference (pp)": y.mean() - x.mean()}
    ci = test.confidence_interval()
    return row | {"pairs": pairs, "95% CI low (pp)": ci.low, "95% CI high (pp)": ci.high,
                  "statistic": test.statistic, "p": test.pvalue}


def tests_table(groups: dict, keys: dict) -> pd.DataFrame:
    """Welch's one-way ANOVA over all levels, then a paired or Welch t-test for every pair of
    levels; differences are the second level minus the first."""
    testable = {level: v for level, v in groups.items() if len(v) >= 2}
    if len(testable) < 2:
        return pd.DataFrame(columns=TEST_COLUMNS)
    anova = stats.f_oneway(*testable.values(), equal_var=False)
    rows = [{"test": "Welch one-way ANOVA", "levels": ", ".join(map(common.label, testable)),
             "statistic": anova.statistic, "p": anova.pvalue}]
    for a, b in itertools.combinations(testable, 2):
        rows.append({"levels": f"{common.label(a)} vs {common.label(b)}",
                     **compare(testable[a], testable[b], *matched(testable, keys, a, b))})
    tests = pd.DataFrame(rows, columns=TEST_COLUMNS).astype({"pairs": "Int64", "left out": "Int64"})
    tests.loc[1:, "p (Holm)"] = holm(tests["p"].iloc[1:].to_numpy(dtype=float))
    return tests


def pairing(row: pd.Series) -> str:
    """'A vs B (n pairs, k trials without a partner left out)' for a paired test's row."""
    left_out = row["left out"]
    unpaired = (f", {left_out} trial{'s' * (left_out > 1)} without a partner left out"
                if left_out else "")
    return f"{row['levels']} ({row['pairs']} pairs{unpaired})"


def statement(tests: pd.DataFrame) -> str:
    if tests.empty:
        return "no test: fewer than two levels with at least two trials"
    anova = tests.iloc[0]
    pairs = tests.iloc[1:]
    paired = pairs[pairs["pairs"] >= MIN_PAIRS]
    welch = pairs[pairs["pairs"] < MIN_PAIRS]
    parts = [f"Welch one-way ANOVA over all trials, unpaired: F = {anova['statistic']:.3g}, "
             f"p = {anova['p']:.3g}"]
    if len(paired):
        listed = ", ".join(map(pairing, (row for _, row in paired.iterrows())))
        parts.append("paired t-tests where the trials pair by seed and the other factors (same "
                     f"random numbers, so their shared noise cancels): {listed}")
    if len(welch):
        parts.append(f"Welch t-tests where the trials do not pair by seed (fewer than "
                     f"{MIN_PAIRS} pairs): {', '.join(welch['levels'])}")
    significant = pairs[pairs["p (Holm)"] < 0.05]["levels"].tolist()
    parts.append(f"pairs with p (Holm) < 0.05: {', '.join(significant) or 'none'}")
    return "; ".join(parts)


def ci_widths(results: common.Results, factor: str, a, b, metric: str = "acc_mean") -> dict:
    """Half-widths (pp) of the 95% CI of b - a over the trials of levels a and b that pair:
    paired (Student t over the differences) and unpaired (Welch, as if they did not pair), so
    a benchmark can report what common random numbers gain; NaN below MIN_PAIRS pairs."""
    x, y = matched(final_values(results, factor, metric), pairing_keys(results, factor, metric),
                   common.level_of(a), common.level_of(b))
    if len(x) < MIN_PAIRS:
        return {"paired": math.nan, "unpaired": math.nan, "pairs": len(x)}
    return {"paired": half_width(stats.ttest_rel(y, x)),
            "unpaired": half_width(stats.ttest_ind(y, x, equal_var=False)), "pairs": len(x)}


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


def final(results: common.Results, factor: str, out: Path,
          metric: str = "acc_mean") -> common.Section:
    section = common.Section(f"Final accuracy by {factor}" + (
        "" if metric == "acc_mean" else f": {common.metric_label(metric)}"))
    reason = common.cannot_group(results, factor)
    groups = {} if reason else final_values(results, factor, metric)
    if not groups:
        section.notes.append(reason or f"no finished trial has a final `{metric}`.")
        return section
    summary = summary_table(groups, factor)
    tests = tests_table(groups, pairing_keys(results, factor, metric))
    text = statement(tests)
    section.notes += common.single_trial_note({level: len(v) for level, v in groups.items()})
    section.notes.append(f"Significance: {text}.")
    name = f"final_{factor}" + ("" if metric == "acc_mean" else f"_{metric}")
    section.images.append(plot(results, factor, metric, groups, summary, text,
                               out / f"{name}.png"))
    section.tables.append(
        common.Table(name, f"Final {common.metric_label(metric)} per level", summary))
    if not tests.empty:
        section.tables.append(
            common.Table(f"{name}_tests", "Significance tests between levels; "
                         "difference = second level - first", tests))
    return section


def main(argv: list[str] | None = None) -> None:
    common.run_per_factor(argv, __doc__, final)


if __name__ == "__main__":
    main()
