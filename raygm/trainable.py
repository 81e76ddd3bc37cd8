"""One gradient-matching run as a Ray Tune function trainable.

Reports after every iteration and at evaluation points, checkpoints the whole run state
(synthetic set, optimiser, RNG) so a restarted trial continues exactly where it stopped,
and publishes live metrics to the Ray dashboard."""
from __future__ import annotations

import math
import tempfile
import time
import warnings
from pathlib import Path

import ray
import torch
from ray import tune
from ray.tune.search.repeater import TRIAL_INDEX
from ray.util.metrics import Gauge

from .data import load_dataset
from .distill import Distillation
from .outputs import save_grid, save_synthetic
from .config import RunConfig
from .study import Study

STATE_FILE = "state.pt"


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


class DashboardMetrics:
    """Live per-trial gauges on the Ray dashboard's metrics view (via Prometheus)."""

    def __init__(self, study: str, trial: str):
        tags = ("study", "trial")
        self.gauges = {
            "iteration": Gauge("raygm_iteration", "distillation iterations done", tags),
            "loss": Gauge("raygm_matching_loss", "gradient-matching loss, all classes", tags),
            "acc_mean": Gauge("raygm_accuracy", "latest evaluation accuracy", tags),
        }
        for gauge in self.gauges.values():
            gauge.set_default_tags({"study": study, "trial": trial})

    def update(self, metrics: dict) -> None:
        for key, gauge in self.gauges.items():
            if not math.isnan(metrics.get(key, math.nan)):
                gauge.set(metrics[key])


DISTRIBUTIONS = {"choice": tune.choice, "uniform": tune.uniform, "loguniform": tune.loguniform}


def param_space(study: Study) -> dict:
    """What Ray Tune varies: a grid's points x repeats, or a search's distributions."""
    if study.kind == "grid":
        return {"point": tune.grid_search(study.grid_points),
                "repeat": tune.grid_search(list(range(study.repeats)))}
    return {key: (DISTRIBUTIONS[dist](values) if dist == "choice" else DISTRIBUTIONS[dist](*values))
            for key, spec in study.search.items() for dist, values in spec.items()}


def trial_config(study: Study, params: dict) -> RunConfig:
    """A trial's run configuration from its Ray Tune config (the layout of param_space).
    Grid studies carry the repeat as a grid axis, searches get it from tune's Repeater."""
    sampled = dict(params["point"]) if study.kind == "grid" else \
        {k: params[k] for k in study.search}
    return study.run_config(sampled, params.get("repeat", params.get(TRIAL_INDEX, 0)))


def distill_trial(params: dict, *, study: Study, data_dir: str | None) -> None:
    config = trial_config(study, params)
    config = config.replace(device=trial_device(config.device))
    node_id = ray.get_runtime_context().get_node_id()
    torch.set_num_threads(trial_threads())
    data = load_dataset(config.dataset, data_dir, download=True)
    run = Distillation(config, data)
    dashboard = DashboardMetrics(study.name, tune.get_context().get_trial_id())
    # Every report carries the latest accuracies (NaN before the first evaluation), as
    # Tune's searchers and schedulers expect their metric in every result; `evaluated`
    # marks the reports where they were measured.
    latest = {f"acc_{stat}{suffix}": math.nan for stat in ("mean", "std")
              for suffix in ["", *(f"_{arch}" for arch in config.eval_architectures)]}
    totals = {"distill_seconds": 0.0, "wall_seconds": 0.0, **latest}
    checkpoint = tune.get_checkpoint()
    if checkpoint:
        with checkpoint.as_directory() as folder:
            state = torch.load(Path(folder) / STATE_FILE, weights_only=False)
        run.load_state_dict(state["run"])
        totals = state["totals"]
    start = time.perf_counter() - totals["wall_seconds"]

    def finish_iteration(metrics: dict) -> None:
        """Evaluate if due, then report; checkpoint at evaluations, every N and at the end."""
        evaluate = run.iteration in config.eval_points and config.eval_models > 0
        if evaluate:
            for i, result in enumerate(run.evaluate()):
                for stat in ("mean", "std"):
                    totals[f"acc_{stat}_{result['arch']}"] = result[f"acc_{stat}"]
                    if i == 0:  # the first evaluation architecture is the study's objective
                        totals[f"acc_{stat}"] = result[f"acc_{stat}"]
        totals["wall_seconds"] = time.perf_counter() - start
        metrics.update(totals, evaluated=evaluate, iteration=run.iteration, seed=config.seed,
                       device=config.device,
                       node_id=node_id)
        dashboard.update(metrics)
        last = run.iteration == config.iterations
        if not (evaluate or last or run.iteration % study.checkpoint_every == 0):
            tune.report(metrics)
            return
        with tempfile.TemporaryDirectory() as folder:
            state = run.state_dict()
            torch.save({"run": state, "totals": totals}, Path(folder) / STATE_FILE)
            save_synthetic(state, folder)
            if evaluate or last:
                save_grid(run.images, run.data, folder, run.iteration)
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))

    # Iteration 0 (the initialisation) is reported only when it is evaluated; a resumed
    # run's checkpoint was taken after its iteration's evaluation, so it goes on stepping.
    if not checkpoint and (0 in config.eval_points or config.iterations == 0):
        finish_iteration({})
    while run.iteration < config.iterations:
        record = run.step()
        totals["distill_seconds"] += record["seconds"]
        metrics = {k: record[k] for k in ("loss", "loss_first", "loss_higher", "seconds")}
        metrics.update({f"loss_class_{k}": v for k, v in enumerate(record["class_loss"])})
        finish_iteration(metrics)
