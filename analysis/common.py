"""Shared pieces of the analysis scripts: loading a RESULTS directory (written by
`raygm export`), the command line, factor levels and their colours, the order models are
shown in, 95% confidence intervals, Markdown tables, and how a script's figures and tables
are written.

Only trials with status TERMINATED are analysed: an unfinished trial's "final" accuracy
comes from an earlier iteration than the others', so mixing them would bias every level;
a trial answered from an earlier one's results (duplicate_of) counts once.
"""
from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # scripts run headless; set before pyplot is imported anywhere
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
from scipy import stats  # noqa: E402

from raygm.core import records  # noqa: E402
from raygm.core.eval_protocol import superseded  # noqa: E402

FINISHED = "TERMINATED"
DIVERGED = "DIVERGED"  # stopped by its own settings: counted apart, never averaged
MISSING = "n/a"


@dataclass
class Results:
    root: Path
    iterations: pd.DataFrame
    trials: pd.DataFrame
    study: dict

    @property
    def name(self) -> str:
        return self.study["name"]

    @property
    def kind(self) -> str:
        return self.study["kind"]

    @property
    def part_names(self) -> list[str]:
        """The studies a study run in parts joins (load), first part first; [] for one."""
        return [p["name"] for p in self.study.get("parts", [])]

    @property
    def factors(self) -> list[str]:
        return list(self.study.get("factors", []))

    @property
    def objectives(self) -> list[dict]:
        return list(self.study["objectives"])

    @property
    def finished(self) -> pd.DataFrame:
        """Finished trials, each configuration and seed once (a repeat a search proposed
        again was answered from the earlier trial: it is not a new measurement)."""
        done = self.trials["status"] == FINISHED
        if "duplicate_of" in self.trials:
            done &= self.trials["duplicate_of"].isna()
        return self.trials[done]

    @property
    def diverged(self) -> pd.DataFrame:
        return self.trials[self.trials["status"] == DIVERGED]

    def finished_iterations(self) -> pd.DataFrame:
        return self.iterations[self.iterations["trial_id"].isin(self.finished["trial_id"])]

    def is_continuous(self, factor: str) -> bool:
        """Sampled from an interval, so (almost) every trial has its own value: no levels."""
        space = self.study.get("space", {}).get(factor, {})
        return "uniform" in space or "loguniform" in space

    @property
    def launch_command(self) -> str | None:
        """The command line that launched the study, or None where the export does not say."""
        launched = self.study.get("launched") or {}
        if not launched.get("study_file"):
            return None
        return " ".join(["raygm study launch", launched["study_file"],
                         *(f"--set '{o}'" for o in launched.get("overrides") or [])])

    def resolve(self, path: str) -> Path:
        """Grid paths are absolute or relative to RESULTS."""
        return Path(path) if Path(path).is_absolute() else self.root / path


def load(root: Path) -> Results:
    """A results folder. A search that continued an exported one (study.json `continues`,
    a results folder beside it) holds that search's trials and iterations too, before its
    own: column `part` (0 for the first), paths relative to this folder, and study.json's
    `parts` (each part's name, machine, max_core_hours and max_trial_seconds)."""
    root = Path(root)
    results = Results(root=root,
                      iterations=pd.read_parquet(root / "iterations.parquet"),
                      trials=pd.read_parquet(root / "trials.parquet"),
                      study=json.loads((root / "study.json").read_text()))
    if not results.study.get("continues"):
        return results
    earlier = load(root.parent / Path(results.study["continues"]).name)
    parts = earlier.study.get("parts") or [part_of(earlier.study)]
    def beside(path):  # a path relative to the earlier folder, made relative to this one
        return path if not isinstance(path, str) or Path(path).is_absolute() \
            else f"../{earlier.root.name}/{path}"
    moved = earlier.trials.assign(part=earlier.trials.get("part", 0))
    for column in ("trial_dir", "synthetic_path"):
        moved[column] = moved[column].map(beside)
    moved["grid_paths"] = moved["grid_paths"].map(lambda paths: [beside(p) for p in paths])
    study = {**results.study, "parts": [*parts, part_of(results.study)]}
    if len({p["machine"] for p in study["parts"]}) > 1:
        study["machine"] = "; ".join(f"{p['machine']} ({p['name']})" for p in study["parts"])
    return Results(root=root, study=study,
                   iterations=pd.concat([earlier.iterations, results.iterations],
                                        ignore_index=True),
                   trials=pd.concat([moved, results.trials.assign(part=len(parts))],
                                    ignore_index=True))


def part_of(study: dict) -> dict:
    return {"name": study["name"], "machine": study.get("machine", "an unrecorded machine"),
            "max_core_hours": study.get("max_core_hours"),
            "max_trial_seconds": study.get("max_trial_seconds")}


def eval_net_column(folder: Path) -> list[str]:
    """["eval_net"] where the trials have it (not in exports from before the field)."""
    return [c for c in pq.read_schema(Path(folder) / "trials.parquet").names if c == "eval_net"]


def read_evaluations(folder: Path) -> pd.DataFrame:
    """evaluations.parquet with a column `superseded`: the evaluation used another
    augmentation than its protocol chooses today (it was made under an earlier version of
    DC's rules, raygm/core/eval_protocol.py)."""
    frame = pd.read_parquet(Path(folder) / "evaluations.parquet")
    # the settings DC's rules read, from each evaluation's trial
    rules = pd.read_parquet(Path(folder) / "trials.parquet",
                            columns=["trial_id", "dataset", "net_norm", "dsa", "eval_augment",
                                     *eval_net_column(folder)])
    settings = frame[["trial_id", "protocol", "arch", "augment"]].merge(rules, on="trial_id",
                                                                        how="left")
    frame["superseded"] = pd.Series([superseded(row) for row in settings.to_dict("records")],
                                    index=frame.index, dtype=bool)
    return frame


def latest_evaluations(evaluations: pd.DataFrame) -> pd.DataFrame:
    """One row of evaluations (read_evaluations) per (trial, protocol, architecture): its
    longest, then largest re-evaluation (`raygm evaluate` adds networks and epochs to
    earlier ones) of those not superseded."""
    evaluations = evaluations[~evaluations["superseded"]]
    return (evaluations.sort_values(["epochs", "networks"])
            .groupby(["trial_id", "protocol", "arch"], as_index=False).last())


# --- command line -------------------------------------------------------------------------

def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("results", metavar="RESULTS", type=Path,
                   help="directory written by `raygm export` (iterations.parquet, "
                        "trials.parquet, study.json)")
    p.add_argument("--out", metavar="DIR", type=Path, required=True,
                   help="directory for the PNGs and CSV tables (created if missing)")
    p.add_argument("--factor", metavar="NAME", nargs="+",
                   help="config fields to group by, one analysis each "
                        "(default: the factors in study.json)")
    p.add_argument("--metric", default=records.accuracy_column("mean"),
                   help="accuracy column: acc_mean (first evaluation architecture, the "
                        "default) or acc_mean_<Arch>")
    return p


def setup(argv: list[str] | None, description: str) -> tuple[argparse.Namespace, Results, list[str]]:
    """Parse the command line, load RESULTS, check the factors and metric, create --out."""
    p = parser(description)
    args = p.parse_args(argv)
    results = load(args.results)
    factors = args.factor or results.factors
    unknown = [f for f in factors if f not in results.trials.columns]
    if unknown:
        p.error(f"unknown factor(s) {', '.join(unknown)}; factors are config columns of "
                "trials.parquet")
    if not args.metric.startswith("acc_mean") or args.metric not in results.trials.columns:
        present = [c for c in results.trials.columns if c.startswith("acc_mean")]
        p.error(f"--metric {args.metric!r} is not an accuracy column; present: {', '.join(present)}")
    args.out.mkdir(parents=True, exist_ok=True)
    return args, results, factors


def run_per_factor(argv: list[str] | None, description: str, analyse) -> None:
    """The main of a script with one analysis per factor: analyse(results, factor, out, metric)."""
    args, results, factors = setup(argv, description)
    if not factors:
        print("study.json lists no factors: pass --factor NAME")
    write([analyse(results, factor, args.out, args.metric) for factor in factors], args.out)


# --- levels and colours -------------------------------------------------------------------

def level_of(value):
    """A hashable, comparable level: lists (eval_at, eval_archs) as tuples, missing as None."""
    if isinstance(value, (list, tuple, np.ndarray)):
        return tuple(value)
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return None
    return value.item() if isinstance(value, np.generic) else value


def _sort_key(level):
    return (level is None, level if level is not None else 0)


def levels(frame: pd.DataFrame, factor: str) -> list:
    return sorted({level_of(v) for v in frame[factor]}, key=_sort_key)


def by_level(frame: pd.DataFrame, factor: str):
    """(level, rows of that level) in sorted level order."""
    keys = frame[factor].map(level_of)
    for level in levels(frame, factor):
        yield level, frame[keys.map(lambda v: v == level)]


def label(level) -> str:
    if level is None:
        return MISSING
    if isinstance(level, float):
        return f"{level:g}"
    if isinstance(level, tuple):
        return ",".join(map(label, level))
    return str(level)


def hessian_term(frame: pd.DataFrame) -> pd.Series:
    """Each trial's higher-order term as one label: none, hvp, curvature (gauss_newton) or
    curvature (exact)."""
    return pd.Series([f"{mode} ({kind})" if mode == "curvature" else mode
                      for mode, kind in zip(frame["hessian"], frame["hessian_curvature"])],
                     index=frame.index, dtype=object)


# the order networks are shown in, as raygm.core.models lists them (written out: reading
# results needs no torch); networks not listed come after them, sorted
MODEL_ORDER = ("MLP", "ConvNet", "LeNet", "AlexNet", "AlexNetBN", "VGG11", "VGG11BN", "ResNet18",
               "ResNet18BN")


def model_order(models) -> list[str]:
    """The models, in MODEL_ORDER."""
    models = set(models)
    return [m for m in MODEL_ORDER if m in models] + sorted(models - set(MODEL_ORDER))


def level_colours(results: Results, factor: str) -> dict:
    """Same level, same colour in every plot: sorted levels of all trials (any status) map
    in order onto a qualitative colormap, whatever subset a plot shows."""
    all_levels = levels(results.trials, factor)
    cmap = plt.get_cmap("tab10" if len(all_levels) <= 10 else "tab20")
    return {level: cmap(i % cmap.N) for i, level in enumerate(all_levels)}


def cannot_group(results: Results, factor: str) -> str | None:
    """Why a factor has no levels to compare, or None when it has."""
    if results.is_continuous(factor):
        distinct = len(levels(results.finished, factor))
        return (f"`{factor}` is sampled from an interval in this search ({distinct} distinct "
                "values among finished trials), so it has no levels to compare; "
                "see search.py for its scatter against accuracy.")
    return None


# --- statistics ---------------------------------------------------------------------------

@dataclass
class Interval:
    """Mean with the half-width of its 95% Student-t confidence interval (NaN with one value)."""
    n: int
    mean: float
    std: float
    half: float


def ci95(values) -> Interval:
    x = np.asarray(values, dtype=float)
    n = len(x)
    if n < 2:
        return Interval(n, float(x.mean()) if n else math.nan, math.nan, math.nan)
    std = float(x.std(ddof=1))
    return Interval(n, float(x.mean()), std, float(stats.t.ppf(0.975, n - 1) * std / math.sqrt(n)))


def single_trial_note(counts: dict) -> list[str]:
    """Say which levels have one trial, hence no interval."""
    lonely = [label(level) for level, n in counts.items() if n == 1]
    return [f"one trial only, so no confidence interval: {', '.join(lonely)}"] if lonely else []


def metric_label(metric: str) -> str:
    """Axis label with unit for an accuracy or time column."""
    if metric.startswith("acc_mean_"):
        return f"test accuracy on {metric.removeprefix('acc_mean_')} (%)"
    protocol, _, arch = metric.partition("_acc_mean_")
    if arch:  # a re-evaluation (results_page): full_acc_mean_ConvNet, full_acc_mean_own
        where = "each set's own network" if arch == "own" else arch
        return f"test accuracy on {where}, {protocol} protocol (%)"
    if metric == "acc_mean":
        return "test accuracy (%)"
    if metric == "distill_seconds":
        return "distillation time (s)"
    if metric == "wall_seconds":
        return "wall time incl. evaluation (s)"
    if metric == "loss":
        return "matching loss"
    return metric


def iteration_axis(ax) -> None:
    ax.set_xlabel("distillation iteration")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def absent(results: Results, metrics: list[str]) -> str | None:
    """Why objectives cannot be read from trials.parquet, or None when they can."""
    missing = [m for m in metrics if m not in results.trials.columns]
    return f"not a column of trials.parquet: {', '.join(missing)}" if missing else None


def in_units(frame: pd.DataFrame, metric: str) -> pd.Series:
    """A column in the unit of its label: accuracies (fractions) in %."""
    return frame[metric] * 100.0 if "acc_mean" in metric else frame[metric]


# --- output -------------------------------------------------------------------------------

@dataclass
class Table:
    name: str  # CSV file stem in --out
    caption: str
    frame: pd.DataFrame


@dataclass
class Section:
    title: str
    notes: list[str] = field(default_factory=list)
    images: list[Path] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)


def save_figure(fig, path: Path) -> Path:
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def _cell(value) -> str:
    if isinstance(value, (list, tuple, np.ndarray)):
        return ",".join(map(_cell, value))
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    if isinstance(value, (float, np.floating)):
        return f"{value:.0f}" if abs(value) >= 1e4 else f"{value:.4g}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(frame: pd.DataFrame) -> str:
    lines = ["| " + " | ".join(map(str, frame.columns)) + " |",
             "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |"
              for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def section_markdown(section: Section, level: int = 2, images_in: str = "") -> str:
    """The section in Markdown; images_in: the images' folder relative to the page."""
    parts = ["#" * level + " " + section.title]
    parts += section.notes
    parts += [f"![{section.title}]({images_in}{image.name})" for image in section.images]
    for table in section.tables:
        parts += [f"{table.caption} (`{table.name}.csv`):", markdown_table(table.frame)]
    return "\n\n".join(parts) + "\n"


def write(sections: list[Section], out: Path) -> None:
    """Write each section's tables as CSV next to its PNGs and say what was written."""
    for section in sections:
        print(f"== {section.title}")
        for note in section.notes:
            print(f"   {note}")
        for image in section.images:
            print(f"   wrote {image}")
        for table in section.tables:
            path = out / f"{table.name}.csv"
            table.frame.to_csv(path, index=False)
            print(f"   wrote {path}")
