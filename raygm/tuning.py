"""Studies on Ray Tune: launch, resume and inspect them.

A study directory (storage/name) holds Ray Tune's experiment (trials, checkpoints), the
study file it was launched from (study.yaml), how it was launched (launch.json) and, by
default, the Optuna storage (optuna.db, SQLite) of a search."""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

import optuna
import ray
import yaml
from ray import tune
from ray.tune.schedulers import ASHAScheduler
from ray.tune.search import Repeater
from ray.tune.search.optuna import OptunaSearch

from .data import resolve_data_dir
from .files import absolute, read_text, write_atomic
from .study import Study, load_study, parse_study
from .trainable import SearchSpace, distill_trial, param_space, trial_config

DEFAULT_STORAGE = "runs/studies"


def search_algorithm(study: Study, optuna_storage: str):
    if study.kind == "grid":
        return None
    searcher = OptunaSearch(space=SearchSpace(study), metric=study.metric, mode=study.mode,
                            seed=study.sampler_seed, study_name=study.name,
                            storage=optuna.storages.RDBStorage(optuna_storage))
    return Repeater(searcher, repeat=study.repeats) if study.repeats > 1 else searcher


def scheduler(study: Study):
    if study.scheduler["name"] == "none":
        return None
    return ASHAScheduler(time_attr="iteration", metric=study.metric, mode=study.mode,
                         max_t=max(study.max_iterations, 1),
                         grace_period=study.scheduler.get("grace_period", 1),
                         reduction_factor=study.scheduler.get("reduction_factor", 4))


def trainable(study: Study, data_dir: str | None):
    fn = tune.with_parameters(distill_trial, study=study, data_dir=data_dir)
    return tune.with_resources(fn, dict(study.resources))


def connect(address: str | None) -> None:
    """No address: a Ray started in this process (or the cluster of a Ray Job, which sets
    RAY_ADDRESS); 'auto' or 'ray://host:port': an existing cluster."""
    if not ray.is_initialized():
        ray.init(address=address)


def launch(study_file: str, storage: str | None = None, address: str | None = None,
           data_dir: str | None = None, optuna_storage: str | None = None,
           callbacks: list[tune.Callback] | None = None) -> tune.ResultGrid:
    study = load_study(study_file)  # every error in the file is reported before Ray starts
    storage = absolute(storage or DEFAULT_STORAGE)
    path = os.path.join(storage, study.name)
    if "://" not in path:
        if tune.Tuner.can_restore(path):
            raise FileExistsError(f"study {path} exists: continue it with "
                                  f"`raygm study resume {path}` or choose another --storage")
        Path(path).mkdir(parents=True, exist_ok=True)
    elif optuna_storage is None and study.kind == "search":
        raise ValueError("a search on remote storage needs --optuna-storage (a database URL)")
    launch_info = {
        "storage": storage, "address": address,
        # The driver's data folder, absolute so trials on this machine find it from their
        # working directories; nodes without it download (or set RAYGM_DATA_DIR).
        "data_dir": str(Path(resolve_data_dir(data_dir)).resolve()),
        "optuna_storage": optuna_storage or f"sqlite:///{Path(path) / 'optuna.db'}",
    }
    write_atomic(path, "study.yaml", Path(study_file).read_bytes())
    write_atomic(path, "launch.json", json.dumps(launch_info, indent=2).encode())
    connect(address)
    tuner = tune.Tuner(
        trainable(study, launch_info["data_dir"]),
        param_space=param_space(study),
        tune_config=tune.TuneConfig(
            search_alg=search_algorithm(study, launch_info["optuna_storage"]),
            scheduler=scheduler(study),
            num_samples=study.trials * study.repeats if study.kind == "search" else 1,
            max_concurrent_trials=study.max_concurrent or None),
        run_config=tune.RunConfig(
            name=study.name, storage_path=storage,
            failure_config=tune.FailureConfig(max_failures=study.max_failures),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=None), callbacks=callbacks,
            verbose=1),  # the status table only; every result is in the study folder
    )
    return tuner.fit()


def resume(path: str, address: str | None = None) -> tune.ResultGrid:
    """Continue an interrupted study: finished trials are kept, unfinished and errored
    ones continue from their latest checkpoints."""
    path = absolute(path)
    study, launch_info = read_study(path)
    connect(address if address is not None else launch_info["address"])
    tuner = tune.Tuner.restore(path, trainable(study, launch_info["data_dir"]),
                               resume_unfinished=True, resume_errored=True)
    return tuner.fit()


def read_study(path: str) -> tuple[Study, dict]:
    path = absolute(path)
    if not tune.Tuner.can_restore(path):
        raise FileNotFoundError(f"{path} holds no Ray Tune study (no experiment state)")
    study = parse_study(yaml.safe_load(read_text(path, "study.yaml")), f"{path}/study.yaml")
    return study, json.loads(read_text(path, "launch.json"))


def trial_table(path: str) -> list[dict]:
    """One row per trial: status, what the study varies, progress, latest accuracy."""
    path = absolute(path)
    study, _ = read_study(path)
    try:
        analysis = tune.ExperimentAnalysis(path)
    except ValueError:  # Ray Tune writes its first snapshot a moment after the study starts
        raise FileNotFoundError(f"{path}: no experiment state yet; the study has just "
                                "started, try again in a few seconds") from None
    rows = []
    for trial in sorted(analysis.trials, key=lambda t: t.trial_id):
        result = trial.last_result or {}
        config = trial_config(study, trial.config)
        row = {"trial": trial.trial_id, "status": trial.status,
               **{k: getattr(config, k) for k in study.factors}, "seed": config.seed,
               **{k: result.get(k) for k in ("iteration", *study.objective_names)},
               "failures": trial.num_failures}
        row["error"] = error_message(trial)[:100]
        rows.append(row)
    return rows


def error_message(trial) -> str:
    """Why an errored trial stopped: the last line of its traceback (the exception itself);
    '' for trials that did not end in an error (a retried failure shows in num_failures)."""
    if trial.status != "ERROR":
        return ""
    error = trial.get_error()
    lines = [line for line in str(error or "").splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


def pareto_front(path: str) -> list[dict]:
    """Optuna's best trials (the Pareto front with two objectives) of a search."""
    study, launch_info = read_study(path)
    if study.kind != "search":
        return []
    optuna_study = optuna.load_study(study_name=study.name, storage=launch_info["optuna_storage"])
    return [{"number": t.number, "values": t.values, "params": t.params}
            for t in optuna_study.best_trials]


def format_table(rows: list[dict]) -> str:
    if not rows:
        return "(no trials)"

    def cell(v):
        if isinstance(v, float):
            return "" if math.isnan(v) else f"{v:.4g}"
        return "" if v is None else str(v)

    keys = list(rows[0])
    cells = [[cell(r.get(k)) for k in keys] for r in rows]
    widths = [max(len(k), *(len(c[i]) for c in cells)) for i, k in enumerate(keys)]
    lines = ["  ".join(k.ljust(w) for k, w in zip(keys, widths))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)
