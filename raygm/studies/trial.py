"""One gradient-matching run as a Ray Tune function trainable.

Reports after every iteration and at evaluation points, checkpoints the whole run state
(synthetic set, optimiser; no random state: streams.py) so a restarted trial continues
exactly where it stopped, and publishes live metrics to the Ray dashboard."""
from __future__ import annotations

import logging
import math
import tempfile
import time
import warnings
from pathlib import Path

import ray
import torch
from optuna.distributions import (BaseDistribution, CategoricalDistribution,
                                  FloatDistribution, IntDistribution)
from ray import tune
from ray.tune.search.repeater import TRIAL_INDEX
from ray.tune.trainable import wrap_function
from ray.util.metrics import Gauge

from ..core.config import SCALAR_TYPES, RunConfig
from ..core.data import load_dataset
from ..core.distill import Distillation, Diverged
from ..core.driver import Reporter, run_to_end
from ..core.gpu import device_name, memory_cap_gb, memory_share
from ..core.outputs import save_snapshot
from ..core.records import DIVERGED, Report
from .store import StudyFolder
from .study_file import Study, distribution

STATE_FILE = "state.pt"  # in each checkpoint: the run's state (Distillation.state_dict)


def trial_device(config_device: str) -> str:
    """The GPU when Ray gave this trial one and torch can use it, else the CPU."""
    if config_device != "auto":
        return config_device
    if ray.get_gpu_ids():
        if torch.cuda.is_available():
            return "cuda"
        warnings.warn("Ray assigned a GPU but torch sees none; running on the CPU")
    return "cpu"


def trial_threads() -> int:
    """torch threads = this trial's CPU share (at least one), so trials don't oversubscribe."""
    cpus = tune.get_context().get_trial_resources().required_resources.get("CPU", 1)
    return max(1, int(cpus))


class DashboardMetrics(Reporter):
    """Live per-trial gauges on the Ray dashboard's metrics view (via Prometheus)."""

    GAUGES = {"iteration": ("raygm_iteration", "distillation iterations done"),
              "loss": ("raygm_matching_loss", "gradient-matching loss, all classes"),
              "acc_mean": ("raygm_accuracy", "latest evaluation accuracy")}

    def __init__(self, study: str, trial: str):
        self.gauges = {key: Gauge(name, text, ("study", "trial"))
                       for key, (name, text) in self.GAUGES.items()}
        for gauge in self.gauges.values():
            gauge.set_default_tags({"study": study, "trial": trial})

    def log(self, report: Report) -> None:
        metrics = report.metrics()
        for key, gauge in self.gauges.items():
            if not math.isnan(metrics.get(key, math.nan)):
                gauge.set(metrics[key])


def settings_text(study: Study, config: RunConfig) -> str:
    """The settings a study varies, as one short text (trial lines, the launch's table)."""
    def short(v):
        return f"{v:.3g}" if isinstance(v, float) else str(v)
    return ", ".join(f"{k}={short(getattr(config, k))}" for k in study.factors)


class TrialLog(Reporter):
    """One line in the trial's own log (the Ray dashboard's Logs page of its actor) per
    evaluation and checkpoint, naming the trial and its varied settings; they replace Ray
    Train's line per checkpoint, which names only its folder."""

    def __init__(self, trial: str, settings: str, iterations: int):
        self.trial, self.settings, self.iterations = trial, settings, iterations
        logging.getLogger("ray.train._internal.storage").setLevel(logging.WARNING)

    def evaluating(self, iteration: int) -> None:
        print(f"raygm {self.trial} [{self.settings}] iteration {iteration}/{self.iterations}: "
              "evaluating", flush=True)

    def log(self, report: Report) -> None:
        if not (report.evaluations or report.snapshot):
            return
        m = report.metrics()
        parts = [f"loss {m['loss']:.4g}" if "loss" in m else "",
                 f"accuracy {100 * m['acc_mean']:.2f} %" if report.evaluations else "",
                 "checkpoint" if report.snapshot else ""]
        print(f"raygm {self.trial} [{self.settings}] iteration {report.iteration}/"
              f"{self.iterations}: " + ", ".join(p for p in parts if p), flush=True)


def named(function) -> type:
    """The function trainable as the class Ray Tune makes of it, whose actors carry their
    trial's name: Ray shows an actor's repr on the dashboard's Actors page and before each
    line of its log (Tune's own repr is the function's name, the same for every trial)."""
    class NamedTrial(wrap_function(function)):
        def __repr__(self) -> str:
            return self.trial_name

    NamedTrial.__name__ = NamedTrial.__qualname__ = NamedTrial._name  # the Actors page's class
    return NamedTrial


class TuneReport(Reporter):
    """tune.report after every iteration, with a checkpoint (run state, synthetic set and,
    at evaluation points and the end, its image grid) whenever the driver says one is due."""

    def __init__(self, data, context: dict):
        self.data, self.context = data, context

    def log(self, report: Report) -> None:
        metrics = {**report.metrics(), **self.context}
        if report.snapshot is None:
            tune.report(metrics)
            return
        with tempfile.TemporaryDirectory() as folder:
            torch.save(report.snapshot.state, Path(folder) / STATE_FILE)
            save_snapshot(folder, report.snapshot, self.data)
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))


def param_space(study: Study) -> dict:
    """What Ray Tune varies in a grid: its points x repeats. A search's space is the
    searcher's (SearchSpace), and so are the runs of a grid in parts (launch.Grid)."""
    if study.kind == "grid" and not study.grid_in_parts:
        return {"point": tune.grid_search(study.grid_points),
                "repeat": tune.grid_search(list(range(study.repeats)))}
    return {}


def applies(spec: dict, params: dict) -> bool:
    """Whether a search field is sampled, given the fields sampled before it (its `when`)."""
    return all(params.get(k) in allowed for k, allowed in spec.get("when", {}).items())


def optuna_distribution(key: str, spec: dict) -> BaseDistribution:
    """A search field's distribution as Optuna holds it (an int field's range as ints)."""
    dist, values = distribution(spec)
    if dist == "choice":
        return CategoricalDistribution(values)
    kind = IntDistribution if SCALAR_TYPES[key] is int else FloatDistribution
    return kind(*values, log=dist == "loguniform")


class SearchSpace:
    """A search as Optuna's define-by-run function (OptunaSearch's `space`): fields are
    sampled in the file's order, and a field with `when` only where its condition holds,
    so trials outside it have no such parameter (in optuna.db as in the trial config)."""

    def __init__(self, study: Study):
        self.search = study.search

    def __call__(self, trial) -> None:
        for key, spec in self.search.items():
            if not applies(spec, trial.params):
                continue
            d = optuna_distribution(key, spec)
            if isinstance(d, CategoricalDistribution):
                trial.suggest_categorical(key, d.choices)
            elif isinstance(d, IntDistribution):
                trial.suggest_int(key, d.low, d.high, log=d.log)
            else:
                trial.suggest_float(key, d.low, d.high, log=d.log)


def trial_config(study: Study, params: dict) -> RunConfig:
    """A trial's run configuration from its Ray Tune config (param_space's layout, which
    launch.Grid keeps). Grid studies carry the repeat as a grid axis, searches get it from
    tune's Repeater."""
    sampled = dict(params["point"]) if study.kind == "grid" else \
        {k: params[k] for k in study.search if k in params}
    return study.run_config(sampled, params.get("repeat", params.get(TRIAL_INDEX, 0)))


class RememberFinished(Reporter):
    """Records the run's last report in the study folder's finished/ once it has reached its
    end, so that a search proposing the same configuration and seed again is answered
    without recomputing."""

    def __init__(self, folder: StudyFolder, config: RunConfig, context: dict):
        self.folder, self.config, self.context, self.last = folder, config, context, {}

    def log(self, report: Report) -> None:
        self.last = {**report.metrics(), **self.context}

    def close(self, progress) -> None:
        self.folder.put_finished(self.config, tune.get_context().get_trial_id(), self.last)


def distill_trial(params: dict, *, study: Study, study_path: str, data_dir: str | None,
                  download: bool) -> None:
    started = time.perf_counter()
    config = trial_config(study, params)
    folder = StudyFolder(study_path)
    if (earlier := folder.finished(config)) is not None:  # same configuration and seed: done
        tune.report({**earlier["metrics"], "duplicate_of": earlier["trial_id"]})
        return
    sampled = config  # the key of finished/: the config before the node resolves it
    config = config.replace(device=trial_device(config.device))
    if config.device.startswith("cuda") and config.gpu_memory_fraction is None:
        # the trial's share of the GPU (0.25 when four trials share one) caps its memory
        config = config.replace(gpu_memory_fraction=memory_share(
            tune.get_context().get_trial_resources().required_resources.get("GPU", 0)))
    torch.set_num_threads(trial_threads())
    data = load_dataset(config.dataset, data_dir, download=download)
    resume = None
    if checkpoint := tune.get_checkpoint():
        with checkpoint.as_directory() as saved:
            resume = torch.load(Path(saved) / STATE_FILE, weights_only=False)
    run = Distillation(config, data)
    context = {"seed": config.seed, "device": config.device, "precision": run.config.precision,
               "node_id": ray.get_runtime_context().get_node_id(),
               "device_name": device_name(run.device),
               "memory_cap_gb": memory_cap_gb(run.device, config.gpu_memory_fraction)}
    name = tune.get_context().get_trial_name()
    try:
        run_to_end(run, [TrialLog(name, settings_text(study, sampled), config.iterations),
                         DashboardMetrics(study.name, tune.get_context().get_trial_id()),
                         TuneReport(data, context), RememberFinished(folder, sampled, context)],
                   checkpoint_every=study.checkpoint_every, resume=resume,
                   setup_seconds=time.perf_counter() - started)
    except Diverged as exc:  # a result of its settings: no retry, no accuracy
        wall = time.perf_counter() - started + (resume["progress"]["wall_seconds"] if resume
                                                 else 0.0)  # what it cost, as run_to_end counts
        tune.report({"iteration": exc.iteration, DIVERGED: str(exc), **context,
                     "wall_seconds": wall,
                     **{metric: math.nan for metric in study.objective_names}})
