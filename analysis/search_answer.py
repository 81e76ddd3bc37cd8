"""The results page's section on a search (issue 26): what Optuna found on a dataset, and
whether it holds up under DC's protocol against DC's default configuration.

Studies it reads, by what their study.json says: the TPE search of the dataset (kind
search, sampler tpe), a random search of the same space (sampler random, optional), the
confirmation written by `python -m analysis.found` (name found_*), and DC's default
configuration at the confirmation's iterations (REFERENCE: the matching-model study's ConvNet
trials, or the precision check's in bf16, whichever was distilled in the confirmation's
precision; confirmed under the full protocol with the same seeds).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import optuna
import pandas as pd
import yaml

from analysis import common, final, search
from analysis.questions import TABLE_ONE
from raygm.core import records

# DC's default configuration at 200 iterations, 5 seeds, each set confirmed under DC's
# full protocol: the studies that answer "which network to match with" (ConvNet rows, fp32),
# and the precision check's (the same configuration and seeds at precision auto: bf16)
REFERENCE = {"MNIST": (("models_2h", "precision_2h"), {"model": "ConvNet"}),
             "FashionMNIST": (("fashion_models_2h", "precision_2h_fashion"),
                              {"model": "ConvNet"})}
TARGET = {"MNIST": 93.0, "FashionMNIST": 73.0}  # issue 26's goal, % at ipc 1
CONFIRMED = "full_acc_mean"  # the confirmation's protocol: DC's full protocol


@dataclass
class Searches:
    dataset: str
    tpe: common.Results
    random: common.Results | None = None
    found: common.Results | None = None  # the confirmation that confirmed the most sets
    again: list[common.Results] = field(default_factory=list)  # the other confirmations
    defaults: list[common.Results] = field(default_factory=list)  # REFERENCE's studies

    @property
    def reference(self) -> common.Results | None:
        """Of DC's default's studies, the one distilled in the precision of the
        confirmation's sets, so that the paired test differs in the configuration alone
        (bf16 and fp32 agree within 0.3 pp on these sets, BENCHMARKS.md); the first where
        none matches."""
        if self.found is not None:
            want = arithmetic(self.found.finished)
            for study in self.defaults:
                if arithmetic(default_rows(study, self.dataset)) == want:
                    return study
        return next(iter(self.defaults), None)


def owns(results: common.Results) -> bool:
    """Whether this section answers for the study: a search, or the confirmation of one
    (neither is a designed comparison of one question's levels)."""
    return results.kind == "search" or results.name.startswith("found_")


def confirmations(others: list[common.Results]) -> list[common.Results]:
    """The dataset's confirmation studies, the one that confirmed the most sets first (e.g.
    all five configurations before an earlier run of the best one alone)."""
    def confirmed_sets(o):
        return int(o.finished[CONFIRMED].notna().sum()) if CONFIRMED in o.finished else 0
    return sorted((o for o in others if owns(o) and o.kind != "search"),
                  key=confirmed_sets, reverse=True)


def collect(folders: list[Path]) -> list[Searches]:
    """The searches under results/, one per dataset that has a TPE search."""
    loaded = [common.load(folder) for folder in folders]
    by_name = {r.name: r for r in loaded}
    # a search continued by a later part answers through it (common.load joins the parts)
    continued = {Path(r.study["continues"]).name for r in loaded if r.study.get("continues")}
    loaded = [r for r in loaded if r.root.name not in continued]

    def dataset(r):
        return r.study.get("fixed", {}).get("dataset")

    found = []
    for r in loaded:
        if r.kind != "search" or (r.study.get("sampler") or {}).get("name") != "tpe":
            continue
        others = [o for o in loaded if o is not r and dataset(o) == dataset(r)]
        confirming = confirmations(others)
        found.append(Searches(
            dataset(r), r,
            random=next((o for o in others if o.kind == "search" and
                         (o.study.get("sampler") or {}).get("name") == "random"), None),
            found=next(iter(confirming), None), again=confirming[1:],
            defaults=[by_name[n] for n in REFERENCE.get(dataset(r), ((), {}))[0]
                      if n in by_name]))
    return found


def budget(results: common.Results) -> str:
    trials = results.trials
    counts = trials["status"].value_counts()
    ended = trials[trials["status"].isin(records.ENDED_STATUSES)]
    hours = (ended["wall_seconds"].sum() * results.study["resources"].get("cpu", 1)) / 3600
    fixed = results.study["fixed"]
    limit = results.study.get("max_core_hours")
    parts = results.study.get("parts", [])
    sampler = dict(results.study.get("sampler") or {"name": "tpe"})
    options = ", ".join(k if v is True else f"{k}={v}" for k, v in sampler.items()
                        if k != "name")
    sampler = sampler["name"] + (f" ({options})" if options else "")
    return (f"Budget: {fixed['dataset']}, ipc {fixed['ipc']}, {fixed['iterations']} "
            f"iterations, 1 seed per configuration, screen: {fixed.get('eval_models')} "
            f"ConvNets x {fixed.get('eval_epochs')} epochs; {len(ended)} configurations "
            f"({counts.get(common.FINISHED, 0)} with a result, {counts.get('OVER_TIME', 0)} "
            f"stopped at max_trial_seconds{trial_limit(results)}, "
            f"{counts.get(common.DIVERGED, 0)} diverged, "
            f"{counts.get('ERROR', 0)} failed); {hours:.1f} core-hours"
            + (f" (max_core_hours {limit:g}: no trial started past it)" if limit and not parts
               else "")
            + (f", in {len(parts)} parts, each a study continuing the one before: "
               + "; ".join(f"`{p['name']}`" + (f" (max_core_hours {p['max_core_hours']:g})"
                                                if p["max_core_hours"] else "") for p in parts)
               if parts else "")
            + " on "
            f"{results.study.get('machine', 'an unrecorded machine')}; sampler {sampler}.")


def trial_limit(results: common.Results) -> str:
    """max_trial_seconds as the study's parts set it, e.g. " (1000 s in `a`; 1470 s in `b`,
    `c`)": a part run on a slower machine may be given more seconds for the same work."""
    parts = results.study.get("parts") or [common.part_of(results.study)]
    caps: dict = {}
    for part in parts:
        caps.setdefault(part.get("max_trial_seconds") or 0, []).append(f"`{part['name']}`")
    if len(caps) == 1:
        cap = next(iter(caps))
        return f" ({cap:g} s)" if cap else ""
    return " (" + "; ".join(f"{f'{cap:g} s' if cap else 'none'} in {', '.join(names)}"
                            for cap, names in caps.items()) + ")"


def top_table(results: common.Results, top: int = 5) -> pd.DataFrame:
    objective = results.objectives[0]["metric"]
    best = results.finished.sort_values(objective, ascending=False).head(top)
    space = list(results.study["space"])
    rows = []
    for row in best.itertuples(index=False):
        rows.append({"trial": row.trial_id, "screen %": 100 * getattr(row, objective),
                     **{k: common.level_of(getattr(row, k)) if search.sampled(
                         results.study["space"][k], row) else "" for k in space}})
    return pd.DataFrame(rows)


SLICE_FIELDS = 5  # fields per slice figure: Optuna draws them in one row


def slice_figures(results: common.Results, out: Path) -> list[Path]:
    """Optuna's slice plot of the finished trials, each searched field against accuracy, in
    figures of SLICE_FIELDS fields (all fifteen in one row would be four metres wide); a
    field no finished trial sampled (λ where every hvp trial ran over time) has no dots."""
    study, _ = search.optuna_study(results)
    if len(study.trials) < 2:
        return []
    space = [f for f in results.study["space"] if any(f in t.params for t in study.trials)]
    paths = []
    for n, start in enumerate(range(0, len(space), SLICE_FIELDS), 1):
        # Optuna gives each field half the rc figure width
        with plt.rc_context({"figure.figsize": (6, 3.2)}):
            axes = optuna.visualization.matplotlib.plot_slice(
                study, params=space[start:start + SLICE_FIELDS])
        axes = list(getattr(axes, "flat", [axes]))
        axes[0].set_ylabel(f"screen: {results.objectives[0]['metric']} (0-1)")
        for ax in axes:  # long levels (DSA's strategy) and log ticks would overlap
            ax.tick_params(axis="x", labelrotation=25, labelsize=8)
        fig = axes[0].figure
        paths.append(common.save_figure(fig, out / f"slice_{n}.png"))
    return paths


def default_rows(reference: common.Results, dataset: str) -> pd.DataFrame:
    """DC's default configuration's finished trials in a reference study (its ConvNet)."""
    rows = reference.finished
    for key, value in REFERENCE[dataset][1].items():
        rows = rows[rows[key] == value]
    return rows


def reference_trials(searches: Searches) -> pd.DataFrame:
    return default_rows(searches.reference, searches.dataset)


def arithmetic(trials: pd.DataFrame) -> str:
    """The precision the sets were distilled and evaluated in (a trial records what
    `precision: auto` chose on its CPU), with counts where a study mixed them, e.g. resumed
    on a CPU where auto chooses otherwise."""
    counts = trials["precision"].value_counts() if "precision" in trials else pd.Series()
    if len(counts) <= 1:
        return next(iter(counts.index), "an unrecorded precision")
    return "mixed precision: " + ", ".join(f"{p} for {n} sets" for p, n in counts.items())


def confirmed(searches: Searches) -> tuple[list[dict], dict]:
    """Each found configuration's full-protocol accuracies by seed with their paired test
    against DC's default configuration at the same iterations and seeds, and the default's
    accuracies by seed."""
    found = searches.found
    reference = reference_trials(searches)
    ref = dict(zip(reference["seed"], 100 * reference[CONFIRMED]))
    trials = found.finished.dropna(subset=[CONFIRMED])
    configs = trials[found.factors].apply(lambda r: tuple(map(common.level_of, r)), axis=1)
    rows = []
    for config, group in trials.groupby(configs, sort=False):
        values = dict(zip(group["seed"], 100 * group[CONFIRMED]))
        seeds = [s for s in values if s in ref]
        rows.append({"config": dict(zip(found.factors, config)), "values": values,
                     "screen": 100 * group["acc_mean"].mean(),
                     "ci": common.ci95(list(values.values())),
                     "test": final.compare(np.array(list(ref.values())),
                                           np.array(list(values.values())),
                                           np.array([ref[s] for s in seeds]),
                                           np.array([values[s] for s in seeds]))})
    return rows, ref


def verdict(test: dict) -> str:
    low, high = test["95% CI low (pp)"], test["95% CI high (pp)"]
    return ("better than DC's default" if low > 0 else
            "worse than DC's default" if high < 0 else "cannot tell at this budget")


def difference(test: dict, unit: str = "") -> str:
    return (f"{test['mean difference (pp)']:+.1f} [{test['95% CI low (pp)']:+.1f}, "
            f"{test['95% CI high (pp)']:+.1f}]{unit}, {test['test']}, p={test['p']:.2g}")


def configuration(config: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in config.items() if v is not None)


def confirmation(searches: Searches) -> tuple[pd.DataFrame, list[str]]:
    """The confirmation table: each found configuration under DC's full protocol, and its
    paired difference to DC's default configuration."""
    dataset = searches.dataset
    found, ref = confirmed(searches)
    rows, words = [], []
    for f in found:
        test, ci = f["test"], f["ci"]
        rows.append({
            "configuration": configuration(f["config"]),
            "screen (1 seed) %": f["screen"],
            "full protocol %": f"{ci.mean:.1f} ± {ci.half:.1f} (n={ci.n})",
            "difference to DC's default (pp)": difference(test),
            "verdict": verdict(test),
            **{f"{method} (published) %": TABLE_ONE[method].get(dataset)
               for method in ("DC", "DSA")}})
    if ref:
        ci = common.ci95(list(ref.values()))
        words.append(f"DC's default configuration ({searches.reference.name}, ConvNet, seeds "
                     f"{', '.join(map(str, sorted(ref)))}): {ci.mean:.1f} ± {ci.half:.1f} % "
                     f"under the same protocol, in {arithmetic(reference_trials(searches))}.")
    for other in searches.again:
        again = replace(searches, found=other, again=[])
        for f in confirmed(again)[0]:
            row = next((n for n, g in enumerate(found, 1) if g["config"] == f["config"]), None)
            ci = f["ci"]
            words.append(
                f"Confirmed again in `{other.name}` (on "
                f"{other.study.get('machine', 'an unrecorded machine')}, in "
                f"{arithmetic(other.finished)}): "
                + (f"row {row} of the table" if row else configuration(f["config"]))
                + f" reaches {ci.mean:.1f} ± {ci.half:.1f} % (n={ci.n}), "
                f"{difference(f['test'], ' pp')} against DC's default in "
                f"`{again.reference.name}` ({verdict(f['test'])}).")
    if found:
        mean = max(f["ci"].mean for f in found)
        words.append(f"Target {TARGET[dataset]:g} %: the best confirmed configuration reaches "
                     f"{mean:.1f} %, so the target is {'met' if mean >= TARGET[dataset] else 'missed'}.")
    return pd.DataFrame(rows), words


def glance(folders: list[Path]) -> list[str]:
    """The page's at-a-glance line per confirmed search: the best confirmed configuration
    against DC's default, and TPE against random sampling at equal compute (their bests, and
    their trials ranked)."""
    lines = []
    for searches in collect(folders):
        if searches.found is None or searches.reference is None:
            continue
        found, _ = confirmed(searches)
        if not found:
            continue
        best = max(found, key=lambda f: f["ci"].mean)
        test = best["test"]
        low, high = test["95% CI low (pp)"], test["95% CI high (pp)"]
        line = (f"- What does a search find? {searches.dataset} (`{searches.tpe.name}`, "
                f"confirmed in `{searches.found.name}`, full protocol, vs DC's default): best "
                f"{best['ci'].mean:.1f} % (target {TARGET[searches.dataset]:g} %), "
                f"{test['mean difference (pp)']:+.1f} pp [{low:+.1f}, {high:+.1f}] "
                f"({verdict(test)})")
        if searches.random is not None:
            ended = search.ended_in_order([searches.tpe.root, searches.random.root])
            history, _ = search.history(ended)
            column = next(c for c in history.columns if c.startswith("best within"))
            table, p = search.trials_compared(ended)
            medians = table.filter(like="median").iloc[:, 0]
            line += "; " + " vs ".join(f"{r['search']} {r[column]:.1f} %"
                                       for _, r in history.iterrows()) + \
                f" screen, each {column.removeprefix('best ')} (their trials' medians " \
                f"{medians.iloc[0]:.1f} vs {medians.iloc[1]:.1f} %, Mann-Whitney p = {p:.2g})"
            estimated = [c for c in history.columns if c.endswith(" of them")]
            if estimated:  # different machines: also at equal core-hours, estimated
                hours = estimated[0].removeprefix("best within ").removesuffix(" of them")
                line += (f"; within {hours} core-hours of {searches.tpe.name}'s machine "
                         "(the second search's estimated): " + " vs ".join(
                             f"{r[estimated[0]]:.1f} %" for _, r in history.iterrows()))
        lines.append(line)
    return lines


def samplers_compared(tpe: common.Results, random: common.Results) -> str:
    """TPE's trials against random sampling's (search.trials_compared), in words and a table."""
    ended = search.ended_in_order([tpe.root, random.root])
    table, p = search.trials_compared(ended)
    median = table.filter(like="median").columns[0]
    ours, theirs = table[median]
    if not p < 0.05:
        verdict = "cannot tell at this budget whether either sampler's trials score higher"
    else:
        verdict = f"TPE's trials score {'higher' if ours > theirs else 'lower'} than random's"
    return ("Did TPE spend its trials on better settings than random sampling? Screen "
            "accuracy of the trials with a result, within the compute both spent: median "
            f"{ours:.1f} % (TPE) against {theirs:.1f} % (random), Mann-Whitney U test "
            f"(two-sided) p = {p:.2g}: {verdict}. The two searches started their first "
            f"{search.shared_start(ended)} configurations alike (TPE's "
            "startup trials are random draws from the same sampler_seed), which the test "
            "counts in both. Each sampler ran one search, so the best of "
            "each (the figure above) is one draw: whether TPE's best would beat random's "
            "again is not tested here.\n\n" + common.markdown_table(table))


def found_yaml(found: common.Results, studies: Path) -> str:
    """The shipped study the confirmation was launched from (`analysis.found` writes it), the
    command line where overrides changed what ran (e.g. only its best configuration), and how
    many of its runs (configuration x seed) are confirmed where a later part is still to run."""
    launched = found.study.get("launched") or {}
    path = studies / Path(launched.get("study_file") or f"{found.name}.yaml").name
    if not path.exists():
        return ""
    text = f"The configurations as a runnable study (`studies/{path.name}`):\n\n" + "\n".join(
        "    " + line for line in path.read_text().splitlines())
    if launched.get("overrides"):
        text += f"\n\nThis confirmation ran it as `{found.launch_command}`."
    grid = yaml.safe_load(path.read_text()).get("grid") or []
    # analysis.found writes a grid block per configuration
    shipped = (len(grid) if isinstance(grid, list) else 1) * found.study["repeats"]
    confirmed_runs = int(found.finished[CONFIRMED].notna().sum())
    if confirmed_runs < shipped and found.study.get("max_core_hours"):
        text += (f"\n\nSo far {confirmed_runs} of its {shipped} runs (configuration x seed) "
                 f"are confirmed: `{found.name}` ended at its max_core_hours, and a later part "
                 "continuing it runs the rest.")
    return text


FACTOR_NOTE = (
    "A `factor` f > 1 (IDC's multi-formation) stores each synthetic image as f x f smaller "
    "images packed into one image of the dataset's size: the same storage as ipc images, "
    "decoded into f² x ipc training images (upsampled) wherever the set is used. A found "
    "configuration with f > 1 therefore trains its evaluation networks on f² times the "
    "images of DC's set at equal storage: it is the comparison at equal bytes, not at equal "
    "image count.")


def section(searches: Searches, out: Path, studies: Path) -> str:
    tpe = searches.tpe
    figures = out / "results" / tpe.name
    figures.mkdir(parents=True, exist_ok=True)
    where = f"results/{tpe.name}/"
    parts = [f"## What does a search find? (`{tpe.name}`, {searches.dataset})", budget(tpe),
             "Labels are hard (one class per synthetic image); every confirmed number below is "
             "under DC's full protocol.",
             f"Best configurations by the screen:\n\n{common.markdown_table(top_table(tpe))}"]
    folders = [tpe.root] + ([searches.random.root] if searches.random else [])
    history, importance = search.best_so_far(folders, figures), search.importance(tpe, figures)
    common.write([history, importance], figures)  # their tables as CSV beside the figures
    parts.append(common.section_markdown(history, level=3, images_in=where))
    if searches.random:
        parts.append(f"Random search of the same space (`{searches.random.name}`): "
                     + budget(searches.random))
        parts.append(samplers_compared(tpe, searches.random))
    else:
        parts.append("No random search of this space under results/: whether TPE beat "
                     "random sampling cannot be told on this dataset.")
    parts.append(common.section_markdown(importance, level=3, images_in=where))
    images = slice_figures(tpe, figures)
    if images:
        parts.append("### Accuracy against each searched field\n\n" + "\n".join(
            f"![slice {n}]({where}{image.name})" for n, image in enumerate(images, 1)))
    parts.append("### Confirmation under DC's protocol")
    if searches.found is None or searches.reference is None:
        parts.append("Not confirmed yet: no confirmation study of the found configurations "
                     "under results/ (or no DC default to compare with).")
    else:
        table, words = confirmation(searches)
        parts += [found_yaml(searches.found, studies), budget_line(searches.found),
                  common.markdown_table(table), *words]
    parts.append(FACTOR_NOTE)
    return "\n\n".join(p for p in parts if p) + "\n"


def budget_line(found: common.Results) -> str:
    fixed = found.study["fixed"]
    hours = found.trials["wall_seconds"].sum() * found.study["resources"].get("cpu", 1) / 3600
    parts = [f"`{name}`" for name in found.part_names]
    return (f"Confirmation (`{found.name}`"
            + (f", in {len(parts)} parts: {', '.join(parts)}" if parts else "")
            + f"): {fixed['iterations']} iterations, "
            f"{found.study['repeats']} seeds from {fixed.get('seed', 0)} per configuration "
            f"(paired with DC's default by seed), each set evaluated under DC's full protocol "
            f"({found.study['confirm']['eval_models']} networks); {hours:.1f} core-hours "
            f"(distillation and screen) on {found.study.get('machine', 'an unrecorded machine')}"
            f", in {arithmetic(found.finished)}.")


def sections(folders: list[Path], out: Path, studies: Path = Path("studies")) -> str:
    return "\n".join(section(s, out, studies) for s in collect(folders))
