"""What a run reports: typed records, and every name derived from them.

`IterationRecord` (one distillation step), `EvaluationRecord` (one architecture evaluated
at one iteration) and `Progress` (running totals and the latest accuracies) make up the
`Report` that the run driver hands its reporters after each iteration. From them come the
flat metrics a trial reports (`Report.metrics`), the metrics a study may optimise
(`objective_metrics`) and the Parquet columns with their types (`iteration_columns`,
`trial_columns`), which the analysis scripts read. A new metric is added here, and where
it is computed.
"""
from __future__ import annotations

import math
import re
import statistics
from dataclasses import dataclass, field
from typing import Any

LOSSES = ("loss", "loss_first", "loss_higher")
# this step's seconds, then a run's cumulative ones: distillation steps, evaluation networks,
# writing checkpoints, setting up (data, networks); compilation (inside distill and evaluate)
# and wall time (everything, from the start of the run)
TIMES = ("seconds", "distill_seconds", "evaluate_seconds", "checkpoint_seconds",
         "setup_seconds", "compile_seconds", "wall_seconds")
CLASS_LOSS_PREFIX = "loss_class_"
# What a trial adds to every report about where and how it ran: seed, device and precision
# are also run-config columns (as resolved: auto -> cpu/cuda, fp32/bf16); node_id, the
# device's name and the GPU memory the trial may take (its share; NaN on a CPU) are
# trials.parquet columns.
PLACEMENT = {"node_id": str, "device_name": str, "memory_cap_gb": float}
CONTEXT = {"seed": int, "device": str, "precision": str, **PLACEMENT}
# the most GPU memory the run has held in tensors so far (NaN on a CPU)
MEMORY = "peak_memory_mb"
# a trial whose run diverged (distill.Diverged) reports it once, as its last report: this
# key holds the message, and the trial's status is DIVERGED (status table, trials.parquet)
DIVERGED = "diverged"
# trials.parquet's status: Ray Tune's, with a TERMINATED trial relabelled OVER_TIME (stopped at
# the study's max_trial_seconds) or DIVERGED; a trial with one of these will not run again
ENDED_STATUSES = ("TERMINATED", "OVER_TIME", "DIVERGED", "ERROR")
# a trial whose configuration and seed an earlier trial ran reports that trial's final
# metrics once, with duplicate_of = its id (trials.parquet)


def started_number(trial_id: str, trial_dir: str) -> int:
    """The order a study started its trials in, from trials.parquet's trial_dir: Ray Tune
    numbers trials in their folder names (`<trainable>_<trial id>_<number>_...`)."""
    return int(re.search(rf"{re.escape(trial_id)}_(\d+)_", trial_dir).group(1))


def class_loss_column(c: int) -> str:
    return f"{CLASS_LOSS_PREFIX}{c}"


def accuracy_column(stat: str, arch: str | None = None) -> str:
    """acc_mean / acc_std of the first evaluation architecture, or acc_<stat>_<arch>."""
    return f"acc_{stat}" + (f"_{arch}" if arch else "")


def accuracy_columns(archs) -> list[str]:
    return [accuracy_column(stat, arch) for arch in (None, *archs) for stat in ("mean", "std")]


def objective_metrics(archs) -> tuple[str, ...]:
    """Metrics a study may optimise, given the evaluation architectures of every trial."""
    return ("acc_mean", *(accuracy_column("mean", a) for a in archs), "loss",
            "distill_seconds", "wall_seconds")


def iteration_columns(archs, num_classes: int) -> dict[str, type]:
    """Columns of iterations.parquet after the config's (one row per trial x report)."""
    return {"iteration": int, **dict.fromkeys(LOSSES, float),
            **{class_loss_column(c): float for c in range(num_classes)},
            **dict.fromkeys(TIMES, float), MEMORY: float,
            **dict.fromkeys(accuracy_columns(archs), float), "evaluated": bool}


def trial_columns(archs) -> dict[str, type]:
    """Columns of trials.parquet after the config's (one row per trial)."""
    return {"status": str, "error": str, "failures": int, "iterations_done": int,
            **dict.fromkeys(accuracy_columns(archs), float),
            **dict.fromkeys(TIMES[1:], float), MEMORY: float, **PLACEMENT,
            "duplicate_of": str, DIVERGED: str, "trial_dir": str,
            "synthetic_path": str, "grid_paths": list[str]}


# evaluations.parquet, after the study/trial/config columns: one row per re-evaluation
# (`raygm evaluate`) of a trial's saved synthetic set
EVALUATION_COLUMNS = {"protocol": str, "networks": int, "epochs": int, "augment": str,
                      "arch": str, "iteration": int, "acc_mean": float, "acc_std": float,
                      "accs": list[float], "seconds_per_model": float}


def protocol_columns(protocols) -> dict[str, type]:
    """trials.parquet's columns for a trial's re-evaluations (its first architecture), by
    protocol: e.g. full_acc_mean next to the study's own (screening) acc_mean."""
    return {f"{p}_{stat}": float for p in protocols for stat in ("acc_mean", "acc_std")}


@dataclass(frozen=True)
class IterationRecord:
    iteration: int
    loss: float          # summed over classes, mean over outer steps: loss_first + loss_higher
    loss_first: float    # the gradient distance
    loss_higher: float   # λ × the higher-order term
    class_loss: tuple[float, ...]
    seconds: float

    def metrics(self) -> dict[str, float]:
        return {**{k: getattr(self, k) for k in (*LOSSES, "seconds")},
                **{class_loss_column(c): v for c, v in enumerate(self.class_loss)}}


@dataclass(frozen=True)
class EvaluationRecord:
    iteration: int
    arch: str
    acc_mean: float      # test accuracy (fraction), mean over the evaluation networks
    acc_std: float       # their population standard deviation
    accs: tuple[float, ...]
    seconds_per_model: float

    @classmethod
    def from_accs(cls, iteration: int, arch: str, accs, seconds: float) -> "EvaluationRecord":
        accs = tuple(accs)
        return cls(iteration, arch, statistics.fmean(accs), statistics.pstdev(accs), accs,
                   seconds / len(accs))


@dataclass
class Progress:
    """A run's running totals; checkpointed with the run so a resumed run goes on counting."""
    distill_seconds: float = 0.0
    evaluate_seconds: float = 0.0
    checkpoint_seconds: float = 0.0
    setup_seconds: float = 0.0
    compile_seconds: float = 0.0
    wall_seconds: float = 0.0
    peak_memory_mb: float = math.nan
    accuracy: dict[str, tuple[float, float]] = field(default_factory=dict)  # latest (mean, std)

    def metrics(self, archs) -> dict[str, float]:
        """Times and the latest accuracies (NaN before the first evaluation): searchers and
        schedulers expect their metric in every result."""
        nothing = (math.nan, math.nan)
        latest = {accuracy_column(stat, arch): value for arch in archs
                  for stat, value in zip(("mean", "std"), self.accuracy.get(arch, nothing))}
        first = {accuracy_column(stat): latest[accuracy_column(stat, archs[0])]
                 for stat in ("mean", "std")}
        return {**{k: getattr(self, k) for k in (*TIMES[1:], MEMORY)}, **first, **latest}


@dataclass(frozen=True)
class Snapshot:
    """The run's full state (Distillation.state_dict() and progress), when a checkpoint is
    due: at evaluation points, the last iteration and every checkpoint_every iterations."""
    state: dict[str, Any]
    grid: bool           # also an image grid: at evaluation points and the last iteration

    @property
    def iteration(self) -> int:
        return self.state["run"]["iteration"]


@dataclass(frozen=True)
class Report:
    """What the run driver hands every reporter after an iteration (and at iteration 0 when
    it is evaluated)."""
    iteration: int
    step: IterationRecord | None          # None at iteration 0
    evaluations: tuple[EvaluationRecord, ...]
    progress: Progress
    archs: tuple[str, ...]                # evaluation architectures; the first is acc_mean's
    snapshot: Snapshot | None

    def metrics(self) -> dict[str, Any]:
        """The flat metrics a trial reports; their names are columns of the export."""
        return {"iteration": self.iteration, **(self.step.metrics() if self.step else {}),
                **self.progress.metrics(self.archs), "evaluated": bool(self.evaluations)}
