"""The whole analysis in one go: for each factor, accuracy curves, final accuracy with
significance tests, accuracy against distillation seconds, per-class matching loss and the
image montage; for a search, parameter
importance and the λ scatter; the Pareto front for two objectives; then report.md in --out
with the study's description, every table behind the plots, links to the PNGs and a
per-trial table (also trials.csv).
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from analysis import common
from analysis.class_loss import class_loss
from analysis.cost import cost
from analysis.curves import curves
from analysis.final import final
from analysis.montage import montage
from analysis.pareto import pareto
from analysis.search import search

PER_FACTOR = (curves, final, cost, class_loss, montage)
ERROR_CHARS = 120  # enough to recognise an error; the full text is in trials.parquet


def header(results: common.Results, metric: str) -> str:
    study = results.study
    objectives = ", ".join(f"{o['metric']} ({o['mode']})" for o in results.objectives)
    status = results.trials["status"].value_counts().sort_index()
    lines = [f"# Study `{results.name}`", "",
             f"- kind: {results.kind}",
             f"- factors: {', '.join(results.factors) or 'none'}",
             f"- objectives: {objectives}",
             f"- repeats (seeds) per configuration: {study.get('repeats', 'n/a')}",
             f"- trials: {len(results.trials)} ("
             + ", ".join(f"{n} {s}" for s, n in status.items()) + ")",
             f"- results: `{results.root}`", "",
             f"Only the {len(results.finished)} {common.FINISHED} trials are analysed. Accuracy "
             f"is `{metric}` in %; confidence intervals are 95% Student-t intervals over the "
             "trials of a level (its seeds, pooled over the levels of the other factors)."]
    return "\n".join(lines) + "\n"


def trials_section(results: common.Results, metric: str) -> common.Section:
    trials = results.trials.sort_values(results.factors + ["seed", "trial_id"])
    table = pd.DataFrame({
        "trial_id": trials["trial_id"], "status": trials["status"],
        **{f: trials[f] for f in results.factors}, "seed": trials["seed"],
        "iterations done": trials["iterations_done"],
        common.metric_label(metric): common.in_units(trials, metric),
        "distill (s)": trials["distill_seconds"], "wall (s)": trials["wall_seconds"],
        "error": trials["error"].str.slice(0, ERROR_CHARS)})
    return common.Section("Trials", tables=[common.Table("trials", "Every trial", table)])


def report(results: common.Results, out: Path, factors: list[str], metric: str = "acc_mean") -> Path:
    """Run every analysis into out and write out/report.md; returns its path."""
    parts = [header(results, metric)]
    sections = []
    for factor in factors:
        parts.append(f"## Factor `{factor}`\n")
        for analyse in PER_FACTOR:
            sections.append(analyse(results, factor, out, metric))
            parts.append(common.section_markdown(sections[-1], level=3))
    for section in search(results, out, metric) + [pareto(results, out, factors),
                                                    trials_section(results, metric)]:
        sections.append(section)
        parts.append(common.section_markdown(section, level=2))
    common.write(sections, out)
    path = out / "report.md"
    path.write_text("\n".join(parts))
    return path


def main(argv: list[str] | None = None) -> None:
    args, results, factors = common.setup(argv, __doc__)
    print(f"wrote {report(results, args.out, factors, args.metric)}")


if __name__ == "__main__":
    main()
