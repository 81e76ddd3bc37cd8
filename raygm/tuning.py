"""Studies on Ray Tune: launch, resume and inspect them.

A study directory (storage/name) holds Ray Tune's experiment (trials, checkpoints), the
study file it was launched from (study.yaml), how it was launched (launch.json) and, by
default, the Optuna storage (optuna.db, SQLite) of a search."""
from __future__ import annotations

import json
import math
import os
import posixpath
import time
from dataclasses import asdict
from pathlib import Path

import optuna
import pyarrow.fs
import ray
import yaml
from ray import tune
from ray.tune.schedulers import ASHAScheduler
from ray.tune.search import Repeater
from ray.tune.search.optuna import OptunaSearch

from .config import ConfigError, RunConfig
from .data import load_dataset, resolve_data_dir
from .distill import check_fits
from .eval_protocol import superseded
from .files import absolute, filesystem, read_text, write_atomic
from .matching import cpu_description
from .records import EvaluationRecord
from .study import (SAMPLERS, LaunchError, Study, StudyError, apply_overrides, load_study,
                    parse_study, read_raw)
from .trainable import SearchSpace, distill_trial, param_space, trial_config

DEFAULT_STORAGE = "runs/studies"
STATUS_FILE = "status.json"
EVALUATIONS = "evaluations"  # re-evaluations of saved synthetic sets (evaluations.py)


def search_algorithm(study: Study, optuna_storage: str):
    if study.kind == "grid":
        return None
    options = {k: v for k, v in study.sampler.items() if k != "name"}
    kind, _ = SAMPLERS[study.sampler["name"]]
    sampler = getattr(optuna.samplers, kind)(seed=study.sampler_seed, **options)
    searcher = OptunaSearch(space=SearchSpace(study), metric=study.metric, mode=study.mode,
                            sampler=sampler, study_name=study.name,
                            storage=optuna.storages.RDBStorage(optuna_storage))
    return Repeater(searcher, repeat=study.repeats) if study.repeats > 1 else searcher


def scheduler(study: Study):
    if study.scheduler["name"] == "none":
        return None
    return ASHAScheduler(time_attr="iteration", metric=study.metric, mode=study.mode,
                         max_t=max(study.max_iterations, 1),
                         grace_period=study.scheduler.get("grace_period", 1),
                         reduction_factor=study.scheduler.get("reduction_factor", 4))


def trainable(study: Study, path: str, launch_info: dict):
    fn = tune.with_parameters(distill_trial, study=study, study_path=path,
                              data_dir=launch_info["data_dir"], download=launch_info["download"])
    return tune.with_resources(fn, dict(launch_info["resources"]))


def check_data(study: Study, data_dir: str | None, download: bool, file: str) -> None:
    """Every dataset the study uses is present and intact, and serves every trial's config
    (ipc no larger than its smallest class): checked before Ray starts."""
    configs = study.configs()
    for name in dict.fromkeys(c.dataset for c in configs):
        data = load_dataset(name, data_dir, download=download)
        for config in configs:
            if config.dataset == name:
                try:
                    check_fits(config, data)
                except ConfigError as exc:
                    raise StudyError(file, study.key_of(exc.field), exc.value,
                                     exc.allowed) from None


def trial_resources(study: Study, require_gpu: bool) -> dict:
    """What a trial asks Ray for. A study's GPU share is what a trial *may* use: on a
    cluster without GPUs trials run on the CPU (said once) instead of waiting forever,
    unless require_gpu keeps the request (an autoscaling cluster adds GPU nodes for it)."""
    resources = dict(study.resources)
    if require_gpu and not resources["gpu"]:
        raise LaunchError("--require-gpu: the study asks for no GPU (resources.gpu is 0)")
    if resources["gpu"] and not ray.cluster_resources().get("GPU", 0):
        if require_gpu:
            print(f"raygm: the cluster has no GPU yet; trials wait for GPU nodes "
                  f"(--require-gpu; each asks for {resources['gpu']} GPU)")
        else:
            print(f"raygm: the cluster has no GPU: trials run on the CPU "
                  f"({resources['cpu']} CPU each) instead of their {resources['gpu']} GPU; "
                  "pass --require-gpu to wait for GPU nodes instead")
            resources["gpu"] = 0
    return resources


def check_storage(storage: str, shared: bool) -> None:
    """Checkpoints must be where a restarted trial looks for them: on a cluster of several
    nodes a node-local folder is not (Ray Tune needs shared storage)."""
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    if "://" not in storage and len(nodes) > 1 and not shared:
        raise LaunchError(
            f"--storage {storage} is a folder on this node, but the cluster has {len(nodes)} "
            "nodes: checkpoints written on a worker would not be found when a trial restarts "
            "elsewhere. Use cloud storage, e.g. --storage s3://BUCKET/studies "
            "--optuna-storage postgresql://..., or a folder shared by every node at the same "
            "path (NFS) with --shared-storage")


def connect(address: str | None) -> None:
    """No address: a Ray started in this process (or the cluster of a Ray Job, which sets
    RAY_ADDRESS); 'auto' or 'ray://host:port': an existing cluster."""
    if not ray.is_initialized():
        ray.init(address=address)


def launch(study_file: str, storage: str | None = None, address: str | None = None,
           data_dir: str | None = None, optuna_storage: str | None = None,
           callbacks: list[tune.Callback] | None = None, overrides: list[str] | None = None,
           download: bool = True, require_gpu: bool = False,
           shared_storage: bool = False) -> tune.ResultGrid:
    """Check everything (the study file with its --set overrides, the data, the storage and
    the cluster) before anything is written or any trial starts; then run the study."""
    study = load_study(study_file, overrides)
    storage = absolute(storage or DEFAULT_STORAGE)
    path = os.path.join(storage, study.name)
    if "://" not in path and tune.Tuner.can_restore(path):
        raise FileExistsError(f"study {path} exists: continue it with "
                              f"`raygm study resume {path}` or choose another --storage")
    if "://" in path and optuna_storage is None and study.kind == "search":
        raise LaunchError("a search on remote storage needs --optuna-storage (a database URL)")
    # The driver's data folder, absolute so trials on this machine find it from their
    # working directories; nodes without it download (or set RAYGM_DATA_DIR).
    data_dir = str(Path(resolve_data_dir(data_dir)).resolve())
    check_data(study, data_dir, download, study_file)
    connect(address)
    check_storage(storage, shared_storage)
    launch_info = {
        "storage": storage, "address": address, "data_dir": data_dir, "download": download,
        "optuna_storage": optuna_storage or f"sqlite:///{Path(path) / 'optuna.db'}",
        "resources": trial_resources(study, require_gpu), "require_gpu": require_gpu,
        "shared_storage": shared_storage,
        "study_file": str(study_file), "overrides": overrides or [],
        "machine": cpu_description()}
    # the study as run (overrides applied), so status, resume and export read the same
    write_atomic(path, "study.yaml", yaml.safe_dump(
        apply_overrides(read_raw(Path(study_file).read_text(), study_file), overrides or [],
                        study_file), sort_keys=False).encode())
    write_atomic(path, "launch.json", json.dumps(launch_info, indent=2).encode())
    tuner = tune.Tuner(
        trainable(study, path, launch_info),
        param_space=param_space(study),
        tune_config=tune.TuneConfig(
            search_alg=search_algorithm(study, launch_info["optuna_storage"]),
            scheduler=scheduler(study),
            num_samples=study.trials * study.repeats if study.kind == "search" else 1,
            max_concurrent_trials=study.max_concurrent or None),
        run_config=tune.RunConfig(
            name=study.name, storage_path=storage,
            failure_config=tune.FailureConfig(max_failures=study.max_failures),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=None),
            callbacks=[LiveStatus(path), *(callbacks or [])],
            verbose=1),  # the status table only; every result is in the study folder
    )
    return tuner.fit()


def resume(path: str, address: str | None = None) -> tune.ResultGrid:
    """Continue an interrupted study: finished trials are kept, unfinished and errored
    ones continue from their latest checkpoints."""
    path = absolute(path)
    study, launch_info = read_study(path)
    connect(address if address is not None else launch_info["address"])
    check_storage(launch_info["storage"], launch_info.get("shared_storage", False))
    tuner = tune.Tuner.restore(path, trainable(study, path, launch_info),
                               resume_unfinished=True, resume_errored=True)
    return tuner.fit()


def read_study(path: str) -> tuple[Study, dict]:
    path = absolute(path)
    if not tune.Tuner.can_restore(path):
        raise FileNotFoundError(f"{path} holds no Ray Tune study (no experiment state)")
    file = f"{path}/study.yaml"
    return parse_study(read_raw(read_text(path, "study.yaml"), file), file), \
        json.loads(read_text(path, "launch.json"))


def trial_table(path: str) -> list[dict]:
    """One row per trial: status, what the study varies, progress, latest accuracy."""
    path = absolute(path)
    study, _ = read_study(path)
    try:
        analysis = tune.ExperimentAnalysis(path)
    except ValueError:  # Ray Tune writes its first snapshot a moment after the study starts
        raise FileNotFoundError(f"{path}: no experiment state yet; the study has just "
                                "started, try again in a few seconds") from None
    live = live_status(path).get("trials", {})
    evaluations = {}
    for e in load_evaluations(path):
        evaluations.setdefault(e["trial_id"], []).append(e)
    rows = []
    for trial in sorted(analysis.trials, key=lambda t: t.trial_id):
        reports = analysis.trial_dataframes.get(trial.trial_id)
        result = {} if reports is None or reports.empty else reports.iloc[-1].to_dict()
        config = trial_config(study, trial.config)
        # a finished trial's status is in Tune's snapshot; a running one only in status.json
        seen = live.get(trial.trial_id, {})
        status = trial.status if trial.status in ("TERMINATED", "ERROR") else \
            seen.get("status", trial.status)
        if status == "RUNNING":  # its result files lag behind the driver
            result["iteration"] = seen.get("iteration", result.get("iteration"))
        row = {"trial": trial.trial_id, "status": status,
               **{k: getattr(config, k) for k in study.factors}, "seed": config.seed,
               **{k: result.get(k) for k in ("iteration", *study.objective_names)},
               "failures": trial.num_failures}
        row.update({k: v for k, v in protocol_accuracies(
            evaluations.get(trial.trial_id, []), config).items()
            if k.endswith("_acc_mean")})
        row["error"] = error_message(trial)[:100]
        rows.append(row)
    return rows


class LiveStatus(tune.Callback):
    """The driver's own view of its trials, written to the study folder as status.json
    (at most once a second, and at every start and end): Ray Tune's experiment snapshot
    records running trials as PENDING, so `raygm study status` reads this instead."""

    def __init__(self, path: str):
        self.path, self.trials, self.written = path, {}, 0.0

    def _set(self, trial, status: str, iteration=None, now: bool = True) -> None:
        entry = self.trials.setdefault(trial.trial_id, {})
        entry["status"] = status
        if iteration is not None:
            entry["iteration"] = int(iteration)
        if now or time.time() - self.written > 1:
            self.written = time.time()
            write_atomic(self.path, STATUS_FILE, json.dumps(
                {"updated": self.written, "trials": self.trials}).encode())

    def on_trial_start(self, iteration, trials, trial, **info):
        self._set(trial, "RUNNING")

    def on_trial_result(self, iteration, trials, trial, result, **info):
        self._set(trial, "RUNNING", result.get("iteration"), now=False)

    def on_trial_recover(self, iteration, trials, trial, **info):
        self._set(trial, "PENDING")  # a failed worker; retried from its checkpoint

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._set(trial, "TERMINATED")

    def on_trial_error(self, iteration, trials, trial, **info):
        self._set(trial, "ERROR")


def live_status(path: str) -> dict:
    """status.json of a study folder ({} before its driver wrote one)."""
    try:
        return json.loads(read_text(path, STATUS_FILE))
    except (FileNotFoundError, ValueError):
        return {}


def network_files(path: str) -> list[str]:
    """The per-network evaluation files of PATH/evaluations/ (`raygm evaluate`, confirm)."""
    fs, root = filesystem(path)
    return sorted(f.path for f in fs.get_file_info(pyarrow.fs.FileSelector(
        posixpath.join(root, EVALUATIONS), allow_not_found=True)) if f.path.endswith(".json"))


def read_networks(path: str) -> list[dict]:
    """One record per evaluated network: trial_id, protocol, epochs, augment, arch,
    iteration, network, acc, seconds."""
    fs, _ = filesystem(path)
    records = []
    for file in network_files(path):
        with fs.open_input_stream(file) as f:
            records.append(json.loads(f.read()))
    return records


def group_networks(networks: list[dict]) -> list[dict]:
    """Per-network records as evaluations: one per (trial, protocol, epochs, augment,
    architecture, iteration), its networks in network order (a later record of a network
    replaces an earlier one); the keys are records.EVALUATION_COLUMNS and trial_id."""
    groups: dict[tuple, dict[int, dict]] = {}
    for r in networks:
        key = tuple(r[k] for k in ("trial_id", "protocol", "epochs", "augment", "arch",
                                   "iteration"))
        groups.setdefault(key, {})[r["network"]] = r
    results = []
    for (trial_id, protocol, epochs, augment, arch, iteration), found in groups.items():
        done = [found[n] for n in sorted(found)]
        record = EvaluationRecord.from_accs(iteration, arch, [r["acc"] for r in done],
                                            sum(r["seconds"] for r in done))
        results.append({"trial_id": trial_id, "protocol": protocol, "networks": len(done),
                        "epochs": epochs, "augment": augment,
                        **asdict(record), "accs": list(record.accs)})
    return results


def load_evaluations(path: str) -> list[dict]:
    """Every re-evaluation a study folder holds (group_networks of read_networks)."""
    return group_networks(read_networks(path))


def protocol_accuracies(evaluations: list[dict], config: RunConfig) -> dict[str, float]:
    """A trial's re-evaluated accuracy per protocol (records.protocol_columns) on its first
    evaluation architecture (that of its own acc_mean): of the evaluations with the
    augmentation the protocol chooses today (an evaluation made before a correction of DC's
    rules is superseded), the longest training, then the most networks."""
    arch = config.eval_architectures[0]
    found = {}
    for e in sorted(evaluations, key=lambda e: (e["epochs"], e["networks"])):
        if e["arch"] == arch and not superseded({**config.to_dict(), **e}):
            found.update({f"{e['protocol']}_acc_mean": e["acc_mean"],
                          f"{e['protocol']}_acc_std": e["acc_std"]})
    return found


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
