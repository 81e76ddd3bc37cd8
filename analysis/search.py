"""For a search study (study.json kind "search"):

1. Optuna parameter importance of the searched fields for the first objective: the finished
   trials are rebuilt as an in-memory Optuna study (distributions from study.json "space")
   and scored with PED-ANOVA (optuna.importance.PedAnovaImportanceEvaluator): how much each
   field's distribution among the top 10% of trials differs from its distribution among all.
   It is deterministic; Optuna's fANOVA would need scikit-learn, which raygm does not
   depend on. Bar plot, importances summing to 1. A field sampled only under a `when`
   condition is scored among the trials that meet it (a second group of bars), since the
   other trials have no value for it.
2. λ (hessian_weight, log x axis; symmetric-log when some λ are 0) against final accuracy,
   one panel per model, one dot per finished trial coloured by its term (search.py's
   lambda_accuracy also draws a grid sweep's means with 95% CIs per λ).

Writes importance.png/.csv and lambda_accuracy.png/.csv. For a grid study it says "not a
search" and writes nothing.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import optuna
import pandas as pd
from optuna.distributions import CategoricalDistribution, FloatDistribution
from scipy import stats

from analysis import common
from raygm.core import records

TARGET_QUANTILE = 0.1  # PED-ANOVA's default: importance for reaching the top 10%
ADVISED_TOP_TRIALS = 5  # Optuna's advice for a stable PED-ANOVA


def distribution(spec: dict):
    """study.json space entry -> Optuna distribution."""
    if "uniform" in spec:
        return FloatDistribution(*spec["uniform"])
    if "loguniform" in spec:
        return FloatDistribution(*spec["loguniform"], log=True)
    return CategoricalDistribution(spec.get("choice", spec.get("grid")))


def sampled(spec: dict, row) -> bool:
    """Whether a search field was sampled in a trial: always, unless its `when` condition
    (study.json space) fails there. Unsampled fields hold the config default in the export."""
    return all(common.level_of(getattr(row, field)) in allowed
               for field, allowed in spec.get("when", {}).items())


def optuna_study(results: common.Results) -> tuple[optuna.Study, list[str]]:
    """Finished trials with the first objective as an in-memory study, each with the
    parameters it was sampled with; notes on what was left out (trials without the
    objective, values outside the declared space)."""
    objective = results.objectives[0]
    space = results.study["space"]
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "study created" chatter
    study = optuna.create_study(
        direction="maximize" if objective["mode"] == "max" else "minimize",
        study_name=results.name)
    trials = results.finished
    scored = trials.dropna(subset=[objective["metric"]])
    notes = []
    if len(scored) < len(trials):
        notes.append(f"{len(trials) - len(scored)} finished trials without "
                     f"`{objective['metric']}` left out.")
    outside = []
    for row in scored.itertuples(index=False):
        names = [name for name, spec in space.items() if sampled(spec, row)]
        # plain Python values as Optuna distributions hold them (numpy scalars, NaN -> None)
        try:
            study.add_trial(optuna.trial.create_trial(
                params={name: common.level_of(getattr(row, name)) for name in names},
                distributions={name: distribution(space[name]) for name in names},
                value=float(getattr(row, objective["metric"]))))
        except ValueError as error:  # a value outside study.json's space
            outside.append(f"{row.trial_id} ({error})")
    if outside:
        notes.append(f"{len(outside)} trials left out, values outside study.json's space: "
                     + "; ".join(outside[:3]) + ("; ..." if len(outside) > 3 else "."))
    return study, notes


def trial_groups(results: common.Results, study: optuna.Study) -> list[tuple[str, list]]:
    """All trials (scored on the fields every trial has), then for each `when` condition of
    the space the trials that meet it (scored on every field they have)."""
    conditions = []
    for spec in results.study["space"].values():
        if spec.get("when") and spec["when"] not in conditions:
            conditions.append(spec["when"])
    groups = [("all trials", study.trials)]
    for when in conditions:
        text = " and ".join(f"{k} in {{{', '.join(map(str, v))}}}" for k, v in when.items())
        groups.append((f"trials with {text}",
                       [t for t in study.trials
                        if all(t.params.get(k) in v for k, v in when.items())]))
    return groups


def importance(results: common.Results, out: Path) -> common.Section:
    objective = results.objectives[0]
    section = common.Section(
        f"Parameter importance for {objective['metric']} ({objective['mode']})")
    reason = common.absent(results, [objective["metric"]])
    if reason:
        section.notes.append(f"no importance: {reason}.")
        return section
    study, section.notes = optuna_study(results)
    frames = []
    for group, trials in trial_groups(results, study):
        n = len(trials)
        if n < 2:
            section.notes.append(f"{group}: {n} scored trial(s), importance needs at least 2.")
            continue
        top = math.ceil(TARGET_QUANTILE * n)
        if top < ADVISED_TOP_TRIALS:
            section.notes.append(f"{group}: only {top} trial(s) in the top {TARGET_QUANTILE:.0%} "
                                 f"of {n}; PED-ANOVA is unstable below {ADVISED_TOP_TRIALS}, so "
                                 "read these importances as rough.")
        subset = optuna.create_study(directions=study.directions)
        subset.add_trials(trials)
        with warnings.catch_warnings():  # our note above says it better than Optuna's warnings
            warnings.simplefilter("ignore")
            scores = optuna.importance.get_param_importances(
                subset, params=[p for p in trials[0].params  # those every trial has
                                if all(p in t.params for t in trials)],
                evaluator=optuna.importance.PedAnovaImportanceEvaluator(
                    target_quantile=TARGET_QUANTILE))
        frames.append(pd.DataFrame({"trials": f"{group} (n={n})", "parameter": list(scores),
                                    "importance": list(scores.values())}))
    if not frames:
        return section
    table = pd.concat(frames, ignore_index=True)
    fig, axes = plt.subplots(len(frames), 1, squeeze=False,
                             figsize=(6, 0.5 * len(table) + 1.5 * len(frames)))
    for ax, frame in zip(axes[:, 0], frames):
        ax.barh(frame["parameter"][::-1], frame["importance"][::-1], color="tab:blue")
        ax.set_title(frame["trials"].iloc[0], fontsize=9)
        ax.set_ylabel("searched config field")
        ax.grid(axis="x", alpha=0.3)
    axes[-1, 0].set_xlabel("importance (PED-ANOVA, fraction of the group's total)")
    fig.suptitle(f"{results.name}: parameter importance for "
                 f"{common.metric_label(objective['metric'])}")
    fig.tight_layout()
    section.images.append(common.save_figure(fig, out / "importance.png"))
    section.tables.append(common.Table("importance", "Parameter importances (each group sums "
                                                     "to 1)", table))
    return section


def lambda_accuracy(results: common.Results, out: Path, metric: str) -> common.Section:
    """One panel per model: each trial's final accuracy against its λ, coloured by term; where
    a term ran some λ more than once (a grid sweep over seeds), its mean with 95% CI per λ."""
    section = common.Section("λ (hessian_weight) vs final accuracy")
    trials = results.finished.dropna(subset=[metric])
    if trials["hessian_weight"].nunique() < 2:
        section.notes.append("λ (hessian_weight) takes one value here: nothing to scatter.")
        return section
    trials = trials.assign(term=common.hessian_term(trials),
                           accuracy=common.in_units(trials, metric))
    terms = common.levels(trials, "term")
    colours = dict(zip(terms, plt.get_cmap("tab10").colors))
    models = common.levels(trials, "model")
    fig, axes = plt.subplots(1, len(models), figsize=(6.5 * len(models), 4.5), squeeze=False,
                             sharey=True)
    positive = trials["hessian_weight"][trials["hessian_weight"] > 0]
    rows = []
    for ax, (model, of_model) in zip(axes[0], common.by_level(trials, "model")):
        for term, of_term in common.by_level(of_model, "term"):
            ax.scatter(of_term["hessian_weight"], of_term["accuracy"], color=colours[term],
                       alpha=0.5, s=16, label=f"{term} (n={len(of_term)})")
            cis = {weight: common.ci95(at["accuracy"])
                   for weight, at in of_term.groupby("hessian_weight")}
            rows += [{"model": model, "term": term, "λ": weight, "n": ci.n, "mean %": ci.mean,
                      "95% CI ± %": ci.half} for weight, ci in cis.items()]
            if max(ci.n for ci in cis.values()) > 1:
                ax.errorbar(list(cis), [ci.mean for ci in cis.values()],
                            yerr=[0 if math.isnan(ci.half) else ci.half for ci in cis.values()],
                            color=colours[term], marker="o", capsize=4)
        if positive.empty:
            ax.set_xscale("linear")
        elif len(positive) < len(trials):
            # log scale with a linear stretch near 0 so λ = 0 trials stay on the plot
            ax.set_xscale("symlog", linthresh=float(positive.min()))
        else:
            ax.set_xscale("log")
        ax.set_xlabel(f"λ, hessian_weight ({ax.get_xscale()} scale)")
        ax.set_title(f"{common.label(model)}")
        ax.legend(title="term")
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel(f"final {common.metric_label(metric)}")
    if "%" in common.metric_label(metric):  # a 2-seed CI's bar can reach past 0 or 100 %
        low, high = axes[0, 0].get_ylim()
        axes[0, 0].set_ylim(max(low, 0), min(high, 100))
    fig.suptitle(f"{results.name}: λ vs final accuracy; dots: trials, lines: mean with 95% CI")
    fig.tight_layout()
    section.images.append(common.save_figure(fig, out / "lambda_accuracy.png"))
    section.tables.append(common.Table("lambda_accuracy", "Final accuracy per model, term and λ",
                                       pd.DataFrame(rows)))
    return section


def started_order(trials: pd.DataFrame) -> pd.Series:
    """The order trials were started in, a continued search's earlier parts first."""
    number = trials.apply(lambda t: records.started_number(t.trial_id, t.trial_dir), axis=1)
    return trials.get("part", 0) * 1_000_000 + number


@dataclass
class Spent:
    """A search's ended trials in the order they were started, with the compute spent when
    each ended (core-hours, or trials started where searches ran on different machines) and
    whether each found a result."""
    label: str
    results: common.Results
    trials: pd.DataFrame
    hours: pd.Series
    spent: pd.Series
    found: pd.Series


@dataclass
class Ended:
    """Searches set side by side, each loaded once, and the unit their compute is counted in
    ("core-hours", or "trials" where they ran on different machines)."""
    searches: list[Spent]
    unit: str


def ended_in_order(folders: list[Path]) -> Ended:
    """Searches side by side (e.g. TPE and random sampling of one space), trials in the order
    they were started, each trial's cost its wall seconds x its CPUs. Trials that ended
    without a result (diverged, stopped at max_trial_seconds) cost what they ran and find
    nothing. Searches run on different machines (study.json `machine`) are set against the
    trials they started instead: a core-hour buys what its CPU makes of it, while every trial
    of a search is given the same iterations and screen."""
    loaded = [common.load(folder) for folder in folders]
    unit = "core-hours" if len({r.study.get("machine") for r in loaded}) <= 1 else "trials"
    searches = []
    for results in loaded:
        trials = results.trials[results.trials["status"].isin(records.ENDED_STATUSES)]
        trials = trials.iloc[started_order(trials).argsort()]
        cpus = results.study.get("resources", {}).get("cpu", 1)
        hours = (trials["wall_seconds"] * cpus).cumsum() / 3600
        sampler = (results.study.get("sampler") or {}).get("name", "tpe")
        searches.append(Spent(
            f"{results.name} ({sampler})", results, trials, hours,
            hours if unit == "core-hours" else pd.Series(range(1, len(trials) + 1),
                                                         index=trials.index),
            trials["trial_id"].isin(results.finished["trial_id"])))
    return Ended(searches, unit)


def history(ended: Ended, metric: str = "acc_mean") -> tuple[pd.DataFrame, list]:
    """The best `metric` each search found so far against the compute spent. Returns each
    search's best and cost (also at the compute the cheapest search spent, and where they ran
    on different machines at the core-hours on the first's machine the cheapest spent,
    estimated: on_first_machine) and its (label, compute, best) curve."""
    rows, curves = [], []
    for one in ended.searches:
        trials, results = one.trials, one.results
        best = common.in_units(trials, metric).where(one.found).cummax().ffill()
        curves.append((one.label, one.spent, best))
        rows.append({"search": one.label, "trials run": len(trials),
                     "with a result": int(one.found.sum()),
                     "over time": int((trials["status"] == "OVER_TIME").sum()),
                     "diverged": int((trials["status"] == common.DIVERGED).sum()),
                     "core-hours": float(one.hours.iloc[-1]) if len(trials) else 0.0,
                     "machine": results.study.get("machine", "unrecorded"),
                     f"best {common.metric_label(metric)}": float(best.iloc[-1])
                     if len(trials) else math.nan})
    horizon = equal_compute([one.spent for one in ended.searches])
    within = (f"{horizon:.2f} core-hours" if ended.unit == "core-hours"
              else f"{horizon:.0f} trials")
    for row, (_, spent, best) in zip(rows, curves):
        row[f"best within {within}"] = float(best[spent <= horizon + 1e-12].max())
    table = pd.DataFrame(rows)
    _, scaled = on_first_machine(ended)
    if scaled:
        horizon = equal_compute(scaled)
        table[f"core-hours on {ended.searches[0].results.name}'s machine (estimated)"] = [
            float(h.iloc[-1]) for h in scaled]
        table[f"best within {horizon:.2f} of them"] = [
            float(best[hours <= horizon + 1e-12].max())
            for (_, _, best), hours in zip(curves, scaled)]
    return table, curves


def trials_compared(ended: Ended, metric: str = "acc_mean") -> tuple[pd.DataFrame, float]:
    """Whether one search's trials scored higher than another's (e.g. TPE's than random
    sampling's), within the compute both spent (history's horizon): Mann-Whitney's U test,
    two-sided, of the screen `metric` of the trials with a result. The best of each search is
    a single draw per sampler; the rank test of all their trials says whether one sampler
    spent its trials on better settings. Returns each search's trials with a result, median
    and quartiles, and the test's p."""
    horizon = equal_compute([one.spent for one in ended.searches])
    scores, rows = [], []
    for one in ended.searches:
        within = one.found & (one.spent <= horizon + 1e-12)
        score = common.in_units(one.trials[within], metric)
        scores.append(score.to_numpy())
        rows.append({"search": one.label, "with a result": len(score),
                     f"median {common.metric_label(metric)}": score.median(),
                     "lower quartile": score.quantile(0.25),
                     "upper quartile": score.quantile(0.75)})
    testable = len(scores) == 2 and all(len(x) > 0 for x in scores)
    p = float(stats.mannwhitneyu(*scores).pvalue) if testable else math.nan
    return pd.DataFrame(rows), p


def shared_start(ended: Ended) -> int:
    """How many configurations two searches of one space started alike, first trial on:
    TPE's startup trials are random draws from its seed, as a random search of the same
    sampler_seed draws them."""
    fields = list(ended.searches[0].results.study["space"])
    rows = [one.trials[fields].astype(str).to_numpy() for one in ended.searches]
    same = [(a == b).all() for a, b in zip(*rows)]
    return next((i for i, alike in enumerate(same) if not alike), len(same))


def pace(ended: Ended) -> pd.Series:
    """For each configuration two searches started alike (shared_start) and both ended with a
    result, the second's wall seconds over the first's: where they ran on different machines,
    how much longer the second machine takes for the same work, e.g. to give its trials a
    max_trial_seconds that cuts them after the same work."""
    shared = shared_start(ended)
    first, second = ended.searches
    both = first.found.iloc[:shared].to_numpy() & second.found.iloc[:shared].to_numpy()
    return pd.Series(second.trials["wall_seconds"].to_numpy()[:shared][both]
                     / first.trials["wall_seconds"].to_numpy()[:shared][both])


def on_first_machine(ended: Ended) -> tuple[pd.Series, list[pd.Series]]:
    """Where two searches ran on different machines: their pace, and each one's core-hours
    on the first's machine, estimated (the second's divided by the median pace); nothing
    where they ran on one machine."""
    if ended.unit != "trials" or len(ended.searches) != 2:
        return pd.Series(dtype=float), []
    ratios = pace(ended)
    if ratios.empty:
        return ratios, []
    first, second = ended.searches
    return ratios, [first.hours, second.hours / ratios.median()]


def equal_compute(spent: list[pd.Series]) -> float:
    """Where the samplers are compared: the compute the cheapest search spent."""
    return min((float(one.iloc[-1]) if len(one) else 0.0 for one in spent), default=0.0)


def best_so_far(folders: list[Path], out: Path, metric: str = "acc_mean") -> common.Section:
    """The history of searches as a figure (Optuna's own plots against trial numbers;
    core-hours is what a sampler is asked to save, where the searches ran on one machine)
    and its table. Two searches on different machines are also set against core-hours of the
    first's machine, the second's divided by their pace (on the configurations both ran)."""
    ended = ended_in_order(folders)
    unit = ended.unit
    table, curves = history(ended, metric)
    ratios, scaled = on_first_machine(ended)
    fig, axes = plt.subplots(1, 1 if ratios.empty else 2, squeeze=False,
                             figsize=(7 if ratios.empty else 13, 4))
    panels = [(axes[0, 0], [spent for _, spent, _ in curves],
               "core-hours spent" if unit == "core-hours" else "trials started")]
    section = common.Section(f"Best so far against {unit}")
    if unit == "trials":
        section.notes.append(
            "The searches ran on different machines (column machine), so their core-hours "
            "are not comparable: they are set side by side at equal trials started, each "
            "trial given the same iterations and screen.")
    if scaled:
        first, second = (one.results.name for one in ended.searches)
        panels.append((axes[0, 1], scaled, f"core-hours on {first}'s machine (estimated)"))
        section.notes.append(
            f"Right: {second}'s core-hours divided by "
            f"{ratios.median():.2f}, the median of how many times longer its trials took than "
            f"{first}'s for the {len(ratios)} configurations both ran with a result (from "
            f"{ratios.min():.2f} to {ratios.max():.2f}): an estimate of what it would have "
            f"spent on {first}'s machine.")
    for ax, spent, xlabel in panels:
        for (label, _, best), x in zip(curves, spent):
            ax.step(x, best, where="post", label=label)
        if len(curves) > 1:
            ax.axvline(equal_compute(spent), color="grey", linestyle=":", linewidth=1)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(f"best so far: {common.metric_label(metric)}")
        ax.legend()
    fig.suptitle(f"Best configuration found so far against the {unit} spent"
                 + ("" if ratios.empty else " (left) and the estimated core-hours (right)"))
    section.images.append(common.save_figure(fig, out / "best_so_far.png"))
    section.tables.append(common.Table("best_so_far", "Each search's best and its cost",
                                       table))
    return section


def search(results: common.Results, out: Path, metric: str = "acc_mean") -> list[common.Section]:
    if results.kind != "search":
        return [common.Section("Search analysis", notes=[
            f"not a search: study '{results.name}' is a {results.kind} study, so there is no "
            "parameter importance or λ scatter."])]
    return [importance(results, out), lambda_accuracy(results, out, metric)]


def main(argv: list[str] | None = None) -> None:
    args, results, _ = common.setup(argv, __doc__)
    common.write(search(results, args.out, args.metric), args.out)


if __name__ == "__main__":
    main()
