"""docs/results.md from the committed study results: the seed study's questions answered.

Every folder under --results written by `raygm export STUDY --to results/<study>` is one
study; its first factor says which question it answers (analysis.questions). For each study
the page states the budget, then a table: per level the seed study's number, DC's published
one where there is one, raygm's mean with its 95% CI over seeds (n), the difference to the
question's reference level (paired by seed when the trials pair: final.compare) and a verdict
on the seed's claim (the numbers: analysis.page_stats; the words: here). Accuracies are the
confirmation's (DC's full protocol) where every set was confirmed; where only some were (the
screen's best), the screen answers and the confirmation stands beside it; the page says
which. The figures come from the other analysis scripts (final, curves, class_loss,
montage), written next to the page. After the questions: DC's Table 1 (coreset selections,
DC, DSA), the cross-architecture tables of studies re-evaluated on more networks
(analysis.cross_arch) and whether each answer carries over from MNIST to another dataset.

    python -m analysis.results_page [--results results] [--out docs]
"""
from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from analysis import common, final, page_stats, search, search_answer
from analysis.class_loss import class_columns
from analysis.cross_arch import cross_table, plot as plot_cross_arch
from analysis.page_stats import LevelRow
from analysis.questions import (MIN_SEEDS, PAGE_ORDER, QUESTIONS, SELECTIONS, TABLE_ONE,
                                Claimant, Question, table_one_method)
from raygm.core import eval_protocol


def with_confirmations(results: common.Results,
                       evaluations: pd.DataFrame) -> tuple[common.Results, list[tuple]]:
    """The results with a column <protocol>_acc_mean_<arch> per re-evaluation (the longest,
    then largest one of each trial) and full_acc_mean_own, and the (label, metric, how) to
    report: the confirmation on each trial's own architecture, and on other ones; the screen
    first when the confirmation left some sets out, or alone when there is none."""
    latest = common.latest_evaluations(evaluations)
    columns, measured = {}, []
    for (protocol, arch), rows in evaluations.groupby(["protocol", "arch"], sort=True):
        best = latest[(latest["protocol"] == protocol) & (latest["arch"] == arch)]
        column = f"{protocol}_acc_mean_{arch}"
        columns[column] = results.trials["trial_id"].map(best.set_index("trial_id")["acc_mean"])
        measured.append((arch, column, f"{protocol} protocol: {describe(rows)}"))
    if not measured:
        return results, [("screen", "acc_mean", "the study's own evaluation (screen)")]
    trials = results.trials.assign(**columns)
    trials["full_acc_mean_own"] = [row.get(f"full_acc_mean_{row['model']}", math.nan)
                                   for _, row in trials.iterrows()]
    results = replace(results, trials=trials)
    return results, confirmed_metrics(results, evaluations, measured)


def confirmed_metrics(results: common.Results, evaluations: pd.DataFrame,
                      measured: list[tuple]) -> list[tuple]:
    """with_confirmations' accuracies to report, given each re-evaluation's (arch, column,
    how)."""
    own = evaluations[(evaluations["protocol"] == "full")
                      & (evaluations["arch"] == evaluations["model"])]
    finished = results.finished
    if finished["full_acc_mean_own"].isna().any():
        # only some sets were confirmed (the screen's best, or one model's): the screen,
        # which every set has, answers the question, and the confirmation stands beside it
        confirmed = finished.dropna(subset=["full_acc_mean_own"])
        factor = next((f for f in results.factors if confirmed[f].astype(str).nunique()
                       < finished[f].astype(str).nunique()), results.factors[0])
        *others, last = map(str, common.levels(confirmed, factor))
        which = f"{', '.join(others)} or {last}" if others else last
        return [("screen", "acc_mean", "the study's own evaluation of every set"),
                ("confirmed", "full_acc_mean_own",
                 f"the sets with {factor} {which} under the full protocol, {describe(own)}")]
    metrics = [("own architecture", "full_acc_mean_own", f"full protocol: {describe(own)}")]
    if finished["model"].nunique() > 1:  # sets matched with different networks:
        # also each architecture every set was evaluated on
        metrics += [(f"on {arch}", column, how) for arch, column, how in measured
                    if finished[column].notna().all()]
    return metrics


def describe(rows: pd.DataFrame) -> str:
    networks, epochs = sorted(set(rows["networks"])), sorted(set(rows["epochs"]))
    augment = ", ".join(sorted(set(rows["augment"])))
    noun = "network" if networks == [1] else "networks"
    return (f"{'/'.join(map(str, networks))} {noun} x {'/'.join(map(str, epochs))} epochs "
            f"per set, augmentation {augment}")


def budget(results: common.Results, evaluations: pd.DataFrame) -> str:
    t = results.finished
    cpus = results.study.get("resources", {}).get("cpu", 1)
    seconds = t["wall_seconds"].sum() + (evaluations["seconds_per_model"]
                                         * evaluations["networks"]).sum()
    factors = [f for f in results.factors if f in t]
    per = t[factors].apply(lambda column: column.map(common.level_of)).groupby(
        factors, dropna=False).size()
    seeds = per.min() if per.min() == per.max() else f"{per.min()}–{per.max()}"
    one = t.iloc[0]
    epochs = one["eval_epochs"] if not pd.isna(one["eval_epochs"]) else "default"
    init = "varied" if "init" in results.factors else one["init"]
    iterations = "/".join(map(str, sorted(set(t["iterations"]))))
    points = sorted({"0 and the last" if common.level_of(e) is None else
                     str([int(i) for i in e]) for e in t["eval_at"]})
    return (f"{one['dataset']}, ipc {one['ipc']}, {iterations} iterations, batch_real "
            f"{one['batch_real']}, init {init}; {seeds} seeds per configuration (paired: seed "
            f"s of every configuration shares its random streams); screen: "
            f"{one['eval_models']} networks x {epochs} epochs at iterations "
            f"{' or '.join(points)}{screen_augmentation(t)}; full protocol: "
            f"{protocol_rules(t, evaluations)}; {seconds / 3600 * cpus:.1f} core-hours on "
            f"{results.study.get('machine') or 'an unrecorded machine'} "
            f"({cpus:g} CPU per trial)"
            + (f"; {len(results.diverged)} more trial(s) diverged, counted apart"
               if len(results.diverged) else ""))


def protocol_rules(trials: pd.DataFrame, evaluations: pd.DataFrame) -> str:
    """DC's rules that the full protocol applies to these sets on the architectures they
    were evaluated on (their own without evaluations), e.g. "DC's protocol for FashionMNIST:
    no augmentation, 300 epochs", each once."""
    archs = (evaluations[["trial_id", "arch"]] if not evaluations.empty
             else trials[["trial_id"]].assign(arch=trials["model"]))
    cases = trials[["trial_id", "dataset", "net_norm", "dsa"]].assign(
        eval_net=trials.get("eval_net")).merge(archs, on="trial_id")
    return "; ".join(dict.fromkeys(
        eval_protocol.describe(c["dataset"], c["arch"],
                               eval_protocol.evaluated_norm(c["net_norm"], c["eval_net"]),
                               c["dsa"])
        for c in cases.to_dict("records")))


def screen_augmentation(trials: pd.DataFrame) -> str:
    """Where the study chose the screen's augmentation itself (eval_augment) instead of
    DC's rule, says so."""
    chosen = sorted(set(trials["eval_augment"]) - {"auto"})
    return (f", augmentation {', '.join(chosen)} as the study set it (eval_augment), not DC's "
            "rule" if chosen else "")


def shown(rows: pd.DataFrame, column: str) -> str:
    """A per-level column: its one value, or its mean where the trials differ (seconds)."""
    values = rows[column].dropna()
    if values.nunique() == 1:
        return common.label(common.level_of(values.iloc[0]))
    return f"{values.mean():.0f}" if len(values) else "n/a"


COLUMN_NAMES = {"hessian_weight": "λ", "distill_seconds": "distillation s"}


def level_table(question: Question, rows: list[LevelRow], metrics: list[tuple]) -> pd.DataFrame:
    """The question's table: per level the seed's and the papers' numbers, the question's
    columns, raygm's accuracies with their differences to each reference, and the verdicts."""
    references = [row.level for row in rows if row.reference]
    first, judged = references[0], metrics[0][1]
    verdict_column = question.claimant.verdict
    table = []
    for row in rows:
        cells = {question.factor: row.level} | (
            {"seed study %": row.seed} if question.seed else {}) | {
            "published %" if question.claims_from == "published" else "DC (published) %":
                row.published}
        cells |= {COLUMN_NAMES.get(c, c): shown(row.trials, c) for c in question.columns}
        for label, metric, _ in metrics:
            cells[f"raygm, {label} %"] = cell(row.accuracies[metric])
            for ref in references:
                comparison = row.differences.get((metric, ref))
                cells[f"difference to {ref}, {label} (pp)"] = (
                    "reference" if row.level == ref else
                    "n/a" if comparison is None else difference_cell(comparison))
        said = {ref: row.verdict(judged, ref) for ref in references}
        cells[verdict_column] = "reference" if row.level == first else said[first]
        cells |= {f"verdict vs {ref}": "reference" if row.level == ref else said[ref]
                  for ref in references[1:]}
        if row.level in references[1:]:
            cells[verdict_column] = "n/a"
        table.append(cells)
    return pd.DataFrame(table)


def difference_cell(comparison: page_stats.Comparison) -> str:
    """A difference with its 95% CI, its test and p-values."""
    (mean, low, high), test = comparison.interval, comparison.test
    return (f"{mean:+.1f} [{low:+.1f}, {high:+.1f}], {test['test']}, p={test['p']:.2g}"
            + (f", Wilcoxon p={test['Wilcoxon p']:.2g}"
               if not pd.isna(test.get("Wilcoxon p", math.nan)) else ""))


def level_words(question: Question, rows: list[LevelRow], metrics: list[tuple]) -> list[str]:
    """The plain-words lines under the question's table: where the claimant's numbers lie
    against raygm's CIs, each difference to a reference (with the verdict where a claim is
    judged), then the claimant's other orderings."""
    claimant = question.claimant
    references = [row.level for row in rows if row.reference]
    words = []
    for row in rows:
        for label, metric, _ in metrics:
            for ref in references:
                comparison = row.differences.get((metric, ref))
                if comparison is None or (row.reference and references.index(row.level)
                                          < references.index(ref)):
                    continue  # none, or said once, from the later reference's side
                words.append(difference_words(claimant, row, ref, label, comparison))
    label, metric, _ = metrics[0]
    return (positions(claimant, rows, label, metric) + words
            + ordering_words(claimant, rows, label))


def difference_words(claimant: Claimant, row: LevelRow, ref, label: str,
                     comparison: page_stats.Comparison) -> str:
    mean, low, high = comparison.interval
    if comparison.verdict is None:  # no claim to judge
        return (f"- {row.level} vs {ref} ({label}): {mean:+.1f} pp, 95% CI "
                f"[{low:+.1f}, {high:+.1f}].")
    claim = (f"{claimant.who} measured {row.claimed:+.1f} pp ({claimant.kind})"
             if not math.isnan(row.claimed) else f"{claimant.who} reported no number")
    return (f"- **{row.level} vs {ref}** ({label}): {claim}; raygm measures "
            f"{mean:+.1f} pp, 95% CI [{low:+.1f}, {high:+.1f}]: *{comparison.verdict}*.")


def positions(claimant: Claimant, rows: list[LevelRow], label: str, metric: str) -> list[str]:
    """Where the claimant's numbers lie against raygm's 95% CIs: one line, none without
    numbers."""
    where = {}
    for row in rows:
        ci = row.accuracies[metric]
        if ci.n and not math.isnan(row.claim):
            where.setdefault(page_stats.position(row.claim, ci), []).append(
                f"{row.level} ({row.claim:.1f} vs {ci.mean:.1f})")
    if not where:
        return []
    return [f"- {claimant.numbers} lie " + "; ".join(
        f"{side} raygm's 95% CI for {', '.join(levels)}" for side, levels in where.items())
        + f" ({label})."]


def ordering_words(claimant: Claimant, rows: list[LevelRow], label: str) -> list[str]:
    """The claimant's other orderings: every pair of other levels it has different numbers
    for."""
    claims = {row.level: row.claim for row in rows}
    words = []
    for row in rows:
        for level, comparison in row.orderings.items():
            mean, low, high = comparison.interval
            words.append(f"- **{level} vs {row.level}** ({label}): {claimant.who} measured "
                         f"{claims[level] - row.claim:+.1f} pp; raygm measures "
                         f"{mean:+.1f} pp, 95% CI [{low:+.1f}, {high:+.1f}] "
                         f"({comparison.test['test']}): *{comparison.verdict}*.")
    return words


@dataclass
class Answer:
    """What one study says about its question, for the page and the carry-over table."""
    question: Question
    dataset: str
    study: str
    text: str
    differences: dict
    sweep: bool = False  # a λ sweep ahead of the question's study, not an answer
    part: object = None  # the value of the question's `per` column it answers for


def study_sections(folder: Path, out: Path) -> list[Answer]:
    """The study's answer: one per value of the question's `per` column; a Hessian study
    that runs several λ per term is the sweep that chooses them."""
    results = common.load(folder)
    question = next((q for q in QUESTIONS.values() if q.factor in results.factors), None)
    if question is None or search_answer.owns(results):
        return []  # a search and its confirmation have their own section
    if (results.finished["iterations"] == 0).all():
        return []  # selections evaluated without distillation: baselines (table_one)
    evaluations = finished_evaluations(folder, results)
    if question.levels and (results.finished.groupby(
            [common.hessian_term(results.finished), "model"])["hessian_weight"].nunique() > 1).any():
        return [sweep_section(results, question, evaluations, out)]
    parts = common.levels(results.finished, question.per) if question.per else [None]
    return [part_section(results, question, evaluations, out, part) for part in parts]


def divergences(results: common.Results, column: str) -> str:
    """The sets whose matching loss became NaN or inf: they stay in (divergence is an
    outcome of their configuration), and the page says so rather than hiding it in a mean."""
    steps = results.iterations[results.iterations["iteration"] > 0]  # 0: evaluation only
    first = steps[~np.isfinite(steps["loss"].astype(float))].groupby("trial_id")["iteration"].min()
    trials = results.finished[results.finished["trial_id"].isin(first.index)]
    if trials.empty:
        return ""
    named = [f"{row[column]}, seed {row['seed']} (from iteration {first[row['trial_id']]})"
             for _, row in trials.sort_values([column, "seed"]).iterrows()]
    return ("Diverged: the matching loss became non-finite for " + "; ".join(named)
            + ". These sets stay in the table at the accuracy they get (chance where their "
            "pixels are NaN): divergence is an outcome of the configuration.")


def collapsed(results: common.Results, evaluations: pd.DataFrame, column: str) -> str:
    """The sets on which every network of a re-evaluation ended at chance although the
    screen's networks learned from them: they stay in too, and the page names them."""
    if evaluations.empty or "accs" not in evaluations:
        return ""
    # iterations.parquet has a per-class matching loss for each class of the dataset
    chance = 1 / len(class_columns(results.iterations))
    failed = evaluations[evaluations["accs"].apply(lambda accs: max(accs) <= chance + 0.01)]
    named = []
    screened = results.finished[["trial_id", "seed", "acc_mean", column]].rename(
        columns={"acc_mean": "screen"})
    for _, row in failed[["trial_id", "arch", "accs"]].merge(screened, on="trial_id") \
            .sort_values([column, "seed"]).iterrows():
        if row["screen"] > chance + 0.05:
            named.append(f"{row[column]}, seed {row['seed']} (on {row['arch']}: all "
                         f"{len(row['accs'])} networks at ≤ {100 * max(row['accs']):.1f} %, "
                         f"its screen {100 * row['screen']:.1f} %)")
    if not named:
        return ""
    return ("Collapsed: under the full protocol no network learned from " + "; ".join(named)
            + ", although the screen's shorter training did. These sets stay in the table "
            "at that accuracy; a difference involving them measures the protocol's failure "
            "on them as much as the set itself.")


def finished_evaluations(folder: Path, results: common.Results) -> pd.DataFrame:
    """The finished trials' confirmations under DC's full protocol: what the questions'
    tables report (other re-evaluations, e.g. a cross-architecture one under the study's own
    protocol, have their own section)."""
    evaluations = common.read_evaluations(folder)
    return evaluations[evaluations["trial_id"].isin(results.finished["trial_id"])
                       & (evaluations["protocol"] == "full") & ~evaluations["superseded"]]


def restricted(results: common.Results, question: Question, part) -> common.Results:
    """The trials of one part (all when None), with the question's derived levels."""
    trials = results.trials
    if part is not None:
        trials = trials[trials[question.per].map(common.level_of) == part]
    trials = trials.copy()
    iterations = results.iterations[results.iterations["trial_id"].isin(trials["trial_id"])].copy()
    if question.levels:
        name, levels_of = question.levels
        trials[name] = levels_of(trials)
        iterations[name] = iterations["trial_id"].map(dict(zip(trials["trial_id"], trials[name])))
    return replace(results, trials=trials, iterations=iterations)


def part_section(results: common.Results, question: Question, evaluations: pd.DataFrame,
                 out: Path, part) -> Answer:
    results = restricted(results, question, part)
    evaluations = evaluations[evaluations["trial_id"].isin(results.finished["trial_id"])]
    results, metrics = with_confirmations(results, evaluations)
    rows = page_stats.level_rows(results, question, metrics, part)
    where = f"results/{results.name}/" + (f"{part}/" if part is not None else "")
    figures = out / where
    figures.mkdir(parents=True, exist_ok=True)
    column = question.column
    sections = [final.final(results, column, figures, metric) for _, metric, _ in metrics]
    sections += [analyse(results, column, figures) for analyse in question.figures]
    common.write(sections, figures)
    one = results.finished.iloc[0]
    iterations = results.finished["iterations"].min()
    limits = (f"DC distils for 1000 iterations with batch_real 256 and evaluates 20 networks "
              f"per set; at {iterations} iterations and batch_real {one['batch_real']} "
              "this budget cannot tell whether the differences grow or shrink with longer "
              "distillation, only what they are at this length.")
    dataset = one["dataset"]
    title = question.title + (f" On {part}" if part is not None else "")
    parts = [f"## {title} (`{results.name}`, {dataset})",
             f"Budget: {budget(results, evaluations)}."
             + (f" Launched as `{results.launch_command}`." if results.launch_command else ""),
             "Accuracies: " + "; ".join(f"{label}: {how}" for label, _, how in metrics) + ".",
             limits, question.note, common.markdown_table(level_table(question, rows, metrics)),
             "\n".join(level_words(question, rows, metrics)),
             divergences(results, column), collapsed(results, evaluations, column),
             "Figures: the final-accuracy plots show the accuracies of the table; the curves "
             "and the per-class matching losses come from the trials' own (screen) "
             "evaluations and reports."]
    for section in sections:
        if not section.title.startswith("Final"):  # the others' tables are in the CSVs
            section = replace(section, tables=[])
        parts.append(common.section_markdown(section, level=3, images_in=where))
    return Answer(question, dataset, results.name, "\n\n".join(p for p in parts if p) + "\n",
                  page_stats.first_differences(rows, metrics), part=part)


def sweep_section(results: common.Results, question: Question, evaluations: pd.DataFrame,
                  out: Path) -> Answer:
    """A short λ sweep: accuracy against λ per model and term, and the λ it chooses (the
    best screen mean of each term); too few seeds to answer the question itself."""
    figures = out / "results" / results.name
    figures.mkdir(parents=True, exist_ok=True)
    section = search.lambda_accuracy(results, figures, "acc_mean")
    common.write([section], figures)
    table = section.tables[0].frame
    terms = table[table["term"] != "none"]
    best = terms.sort_values("mean %").groupby(["model", "term"], sort=True).last()
    grid = terms.groupby(["model", "term"])["λ"].agg(["min", "max"])
    chosen = [f"- {model}, {term}: λ = {row['λ']:g} ({row['mean %']:.1f} %, n={int(row['n'])})"
              + (", at the edge of the λ tried" if row["λ"] in tuple(grid.loc[(model, term)])
                 else "")
              for (model, term), row in best.iterrows()]
    dataset = results.finished["dataset"].iloc[0]
    text = "\n\n".join([
        f"## {question.title} The λ sweep (`{results.name}`, {dataset})",
        f"Budget: {budget(results, evaluations)}.",
        "Each term runs at the λ with the best mean screen accuracy here; with this few seeds "
        "and iterations the sweep only ranks λ roughly, it does not answer the question:",
        "\n".join(chosen),
        common.section_markdown(section, level=3, images_in=f"results/{results.name}/")])
    return Answer(question, dataset, results.name, text + "\n", {}, sweep=True)


def table_one(folders: list[Path]) -> str:
    """DC's Table 1 from whatever the studies under results/ hold at 1 image per class: one
    row per method and study (their budgets differ), raygm's mean ± 95% CI beside the
    published number."""
    rows = {}
    for folder in folders:
        results = common.load(folder)
        if results.finished.empty:
            continue
        results, metrics = with_confirmations(results, finished_evaluations(folder, results))
        _, metric, _ = metrics[0]
        trials = results.finished[results.finished["ipc"] == 1]
        for (method, dataset, iterations, _), cell in trials.groupby(
                [table_one_method(trials), "dataset", "iterations", "batch_real"]):
            ci = common.ci95(common.in_units(cell, metric).dropna())
            if not method or ci.n < MIN_SEEDS:
                continue
            one = cell.iloc[0]
            row = rows.setdefault((list(TABLE_ONE).index(method), results.name, iterations), {
                "method": method, "study": f"`{results.name}`",
                "budget": ("selected, not distilled" if method in SELECTIONS.values() else
                           f"{one['iterations']} iterations, batch_real {one['batch_real']}"),
                "accuracy": "screen" if metric == "acc_mean" else "full protocol"})
            row[f"{dataset}, raygm %"] = f"{ci.mean:.1f} ± {ci.half:.1f} (n={ci.n})"
            row[f"{dataset}, published %"] = TABLE_ONE[method].get(dataset, math.nan)
    if not rows:
        return ""
    table = pd.DataFrame([rows[key] for key in sorted(rows)])  # NaN cells read n/a
    # selection.kcenter starts where herding does, and at ipc 1 stops there
    same = (" At 1 image per class k-center's one pick is herding's first (the image nearest "
            "its class's mean in the embedding), so their rows hold the same sets."
            if {"herding", "k-center"} <= set(table["method"]) else "")
    return ("## DC's Table 1: coreset selections, DC and DSA (ConvNet, 1 image per class)\n\n"
            "Each row is one study's configurations of a method, at that study's budget "
            "(the published numbers: 1000 iterations, batch_real 256, 20 evaluation "
            f"networks); `random` is `init real` evaluated without distillation.{same} Only "
            f"cells with {MIN_SEEDS} or more seeds are shown.\n\n"
            + common.markdown_table(table) + "\n")


def cross_architecture(folders: list[Path], out: Path) -> str:
    """Per study and protocol, analysis.cross_arch's table where a study's sets were each
    evaluated on more architectures than a confirmation's two (their own and ConvNet), with
    its heatmap."""
    parts = []
    for folder, (protocol, rows) in ((f, g) for f in folders for g in
                                     common.read_evaluations(f).groupby("protocol")):
        table = cross_table([folder], protocol)
        cells = table.assign(cell=[f"{m:.1f} ± {h:.1f} (n={n})" for m, h, n in
                                   table[["mean %", "95% CI ± %", "n"]].itertuples(index=False)])
        grid = cells.pivot(index="matched on", columns="evaluated on", values="cell")
        if grid.shape[1] <= 2 or grid.isna().any(axis=None):
            continue
        order = common.model_order(grid.columns)
        grid = grid.reindex(index=common.model_order(grid.index), columns=order)
        name = common.load(folder).name
        (out / "results" / name).mkdir(parents=True, exist_ok=True)
        image = plot_cross_arch(table, f"{name}: matched on x evaluated on ({protocol} protocol)",
                                out / "results" / name / f"cross_arch_{protocol}.png")
        parts.append(
            f"## Cross-architecture: `{name}`'s sets on {', '.join(order)} ({protocol} "
            f"protocol)\n\nEach set matched with the row's network, trained on by fresh "
            f"networks of the column's (`raygm evaluate --archs`, {describe(rows)}); each cell "
            f"the mean test accuracy (%) over the sets' seeds with its 95% CI.\n\n"
            + common.markdown_table(grid.rename_axis(columns=None).reset_index())
            + f"\n\n![cross-architecture]({image.relative_to(out)})\n")
    return "\n".join(parts)


def accuracy_label(metric: str) -> str:
    """What an accuracy column measures, in the carry-over table's words."""
    if metric == "acc_mean":
        return "screen"
    _, _, arch = metric.partition("_acc_mean_")
    return "own architecture" if arch == "own" else f"on {arch}"


def at_a_glance(answers: list[Answer], searches: list[str]) -> str:
    """One line per answer: each level's difference to the reference on the answer's first
    accuracy, with its 95% CI and which way the CI points (the sections say the rest)."""
    lines = []
    for answer in (a for a in answers if not a.sweep and a.differences):
        metric, levels = next(iter(answer.differences.items()))
        cells = []
        for level, (m, low, high) in levels.items():
            way = "higher" if low > 0 else "lower" if high < 0 else "cannot tell"
            cells.append(f"{common.label(level)} {m:+.1f} pp [{low:+.1f}, {high:+.1f}] ({way})")
        on = f", {answer.question.per} {answer.part}" if answer.part is not None else ""
        lines.append(f"- {answer.question.title} {answer.dataset}{on} (`{answer.study}`, "
                     f"{accuracy_label(metric)}, vs {common.label(answer.question.reference)}): "
                     + "; ".join(cells))
    lines += searches
    return ("## At a glance\n\nEach level against the question's reference, paired by seed "
            "(5 or more), 95% CI; *cannot tell* where the CI contains 0. The sections below give the "
            "budgets, the seed's and DC's numbers and the verdicts.\n\n" + "\n".join(lines)
            + "\n") if lines else ""


def carry_over(answers: list[Answer]) -> str:
    """Per question answered on MNIST and on other datasets: does each difference to the
    reference point the same way? (yes: both CIs exclude 0 on the same side; no: on opposite
    sides; else cannot tell at this budget)."""
    parts = []
    for question in (q for q in QUESTIONS.values() if not q.per):
        mine = [a for a in answers if a.question is question]
        base = next((a for a in mine if a.dataset == "MNIST"), None)
        for other in (a for a in mine if a.dataset != "MNIST"):
            if base is None:
                continue
            rows = []
            for metric in (k for k in base.differences if k in other.differences):
                mnist, there = base.differences[metric], other.differences[metric]
                for level in sorted(set(mnist) & set(there), key=str):
                    (m, lo, hi), (m2, lo2, hi2) = mnist[level], there[level]
                    rows.append({question.factor: level, "accuracy": accuracy_label(metric),
                                 f"MNIST, vs {question.reference} (pp)":
                                     f"{m:+.1f} [{lo:+.1f}, {hi:+.1f}]",
                                 f"{other.dataset}, vs {question.reference} (pp)":
                                     f"{m2:+.1f} [{lo2:+.1f}, {hi2:+.1f}]",
                                 "carries over?": page_stats.carries_over(mnist[level],
                                                                          there[level])})
            if not rows:  # nothing measured the same way on both
                continue
            parts.append(f"## Does it carry over? {question.title} MNIST (`{base.study}`) and "
                         f"{other.dataset} (`{other.study}`)\n\n"
                         + common.markdown_table(pd.DataFrame(rows)) + "\n")
    return "\n".join(parts)


def protocol_correction(folders: list[Path]) -> str:
    """The full-protocol accuracies a study reported under an earlier version of DC's rules
    (its superseded evaluations), beside today's, per configuration and architecture."""
    parts = []
    for folder in folders:
        results = common.load(folder)
        evaluations = common.read_evaluations(folder)
        evaluations = evaluations[evaluations["trial_id"].isin(results.finished["trial_id"])
                                  & (evaluations["protocol"] == "full")]
        old = evaluations[evaluations["superseded"]]
        if old.empty:
            continue
        factor = results.factors[-1]  # the question's (eval_at comes first in some studies)
        new = common.latest_evaluations(evaluations)
        rows = []
        for (level, arch), before in old.groupby([old[factor].map(common.level_of), "arch"],
                                                 sort=True):
            after = new[(new[factor].map(common.level_of) == level) & (new["arch"] == arch)]
            was, now = (common.ci95(common.in_units(r, "acc_mean")) for r in (before, after))
            rows.append({factor: common.label(level), "evaluated on": arch,
                         "before: how": describe(before), "before %": cell(was),
                         "now: how": describe(after) if len(after) else "not re-evaluated",
                         "now %": cell(now), "change (pp)": f"{now.mean - was.mean:+.1f}"})
        parts.append(f"### `{results.name}`\n\n" + common.markdown_table(pd.DataFrame(rows)))
    if not parts:
        return ""
    return ("## Protocol correction: sets evaluated under an earlier reading of DC's rules\n\n"
            "Until issue 24 raygm's full protocol applied DC's crop/scale/rotate augmentation "
            "(1000 epochs) to FashionMNIST as to MNIST; DC's code (utils.get_daparam, main.py) "
            "augments MNIST only and trains FashionMNIST's evaluation networks 300 epochs "
            "without augmentation (raygm/core/eval_protocol.py has every rule). The sets below were "
            "re-evaluated from their saved synthetic sets (`raygm evaluate RESULTS --trials "
            "all --protocol full`); the tables above read the new evaluations only, and the "
            "numbers they replaced are these (mean over seeds ± 95% CI). The trials' own "
            "screens (the curves and the per-iteration accuracies) ran during distillation "
            "and keep the earlier augmentation.\n\n" + "\n\n".join(parts) + "\n")


def cell(interval: common.Interval) -> str:
    return f"{interval.mean:.1f} ± {interval.half:.1f} (n={interval.n})" if interval.n \
        else "n/a"


HEAD = """# Results: the seed study's questions, answered

Generated by `python -m analysis.results_page` from the study results committed under
`results/` (each written by `raygm export STUDY --to results/<study>`); nothing is rerun.
Verdicts judge the direction of the seed study's difference to the reference level: it
*holds* when raygm's 95% CI of that difference excludes 0 on the seed's side, *does not
hold* when it excludes 0 on the other side, and it *cannot tell at this budget* when the CI
contains 0. Differences are paired by seed (common random numbers) and tested with the paired
t-test, Wilcoxon's signed-rank test as a check (with 5 pairs its smallest two-sided p is
1/16 = 0.0625, so it cannot go below 0.05 however large the difference); Welch's t-test where
trials do not pair.
"""


def page(results_root: Path, out: Path) -> Path:
    folders = sorted(p.parent for p in results_root.glob("*/study.json"))
    answers = sorted((a for folder in folders for a in study_sections(folder, out)),
                     key=lambda a: (PAGE_ORDER.index(a.question.factor), not a.sweep,
                                    a.dataset != "MNIST", a.study))  # the seed's dataset first
    correction = protocol_correction(folders)
    head = HEAD + ("\nSome studies were re-evaluated after a correction of the protocol; the "
                   "last section lists the numbers that changed.\n" if correction else "")
    parts = [at_a_glance(answers, search_answer.glance(folders)), *[a.text for a in answers],
             search_answer.sections(folders, out),
             table_one(folders), cross_architecture(folders, out), carry_over(answers),
             correction]
    text = "\n".join([head, *filter(None, parts)]) if any(parts) else \
        HEAD + f"\nNo study under `{results_root}` answers one of the questions yet.\n"
    out.mkdir(parents=True, exist_ok=True)
    path = out / "results.md"
    path.write_text(text)
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=Path, default=Path("results"))
    parser.add_argument("--out", type=Path, default=Path("docs"))
    args = parser.parse_args(argv)
    print(f"wrote {page(args.results, args.out)}")


if __name__ == "__main__":
    main()
