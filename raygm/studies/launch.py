"""Studies on Ray Tune: launch and resume them (the folder's files: store.py)."""
from __future__ import annotations

import importlib
import math
import os
import pickle
import signal
import socket
import sys
import threading
from pathlib import Path

import optuna
import ray
from ray import tune
from ray.tune.schedulers import ASHAScheduler
from ray.tune.search import Repeater, Searcher
from ray.tune.search.optuna import OptunaSearch

from ..core.config import ConfigError
from ..core.data import load_dataset, resolve_data_dir
from ..core.distill import check_fits
from ..core.files import absolute
from ..core.machine import cpu_description
from .console import Console
from .continuation import earlier_trials, grid_runs, sampler_seed
from .status import LiveStatus, core_hours, ended_early
from .store import LaunchError, LaunchInfo, StudyFolder, existing
from .study_file import SAMPLERS, Study, StudyError, apply_overrides, load_study, read_raw
from .trial import SearchSpace, distill_trial, named, param_space

DEFAULT_STORAGE = "runs/studies"
# Ray Tune pickles a study's callbacks and Optuna search space into its folder (tuner.pkl, the
# searcher's state) by module name: folders launched before raygm.core / raygm.studies
# name these modules, which resume maps to where the classes live now.
MOVED_MODULES = {"raygm.tuning": "raygm.studies.status", "raygm.trainable": "raygm.studies.trial"}


def adopt_moved_modules() -> None:
    for old, new in MOVED_MODULES.items():
        sys.modules.setdefault(old, importlib.import_module(new))


class Search(OptunaSearch):
    """Ray Tune's OptunaSearch, telling Optuna that a trial which ended without its result (it
    diverged, or was stopped at max_trial_seconds) was pruned: a NaN accuracy would be
    refused, leaving the trial RUNNING in optuna.db, and an earlier evaluation's accuracy is
    not the trial's. TPE then counts its settings among the worst, and so learns to avoid
    settings too slow for the study's limit. Every Optuna trial gets user attributes (shown by
    optuna-dashboard): its Ray trial id, and once it ends its seed and raygm status. It
    suggests no trial past the study's max_core_hours (budget_spent)."""

    def __init__(self, study: Study, **options):
        super().__init__(**options)
        # saved with the searcher's state: suggested params, seconds run by each trial
        self.study, self.suggested, self.seconds = study, {}, {}

    def suggest(self, trial_id: str) -> dict | str | None:
        if budget_spent(self.study, self.seconds):
            return Searcher.FINISHED
        params = super().suggest(trial_id)
        if isinstance(params, dict):
            self.suggested[trial_id] = params
            # optuna-dashboard's link to `raygm study status` and the trial's folder
            self._ot_trials[trial_id].set_user_attr("ray_trial_id", trial_id)
        return params

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        self.seconds[trial_id] = result.get("time_total_s", 0.0)
        super().on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None,
                          error: bool = False) -> None:
        if result:
            self.seconds[trial_id] = result.get("time_total_s", 0.0)
        metrics = self.metric if isinstance(self.metric, list) else [self.metric]
        params = self.suggested.pop(trial_id, {})
        status = "ERROR" if error else ended_early(self.study, params, result or {}) \
            or "TERMINATED"
        if trial_id in self._ot_trials:  # Ray's map of its trials to Optuna's
            ot_trial = self._ot_trials[trial_id]
            ot_trial.set_user_attr("status", status)
            if result and "seed" in result:
                ot_trial.set_user_attr("seed", int(result["seed"]))
        if result and (status != "TERMINATED" or
                       not all(math.isfinite(result.get(m, math.nan)) for m in metrics)):
            result = None  # no value and no error: Optuna's PRUNED
        super().on_trial_complete(trial_id, result, error)


def budget_spent(study: Study, seconds: dict[str, float]) -> bool:
    """Whether trials that ran these seconds (each trial's time_total_s) have run the
    study's max_core_hours: then no new trial starts and those under way finish, so that
    searches are compared at one budget and a study longer than a sitting ends whole, as a
    part that another continues (continuation.py)."""
    budget = study.max_core_hours
    if budget and core_hours(seconds.values(), study) >= budget:
        # Tune asks no more once told FINISHED: said once
        print(f"raygm study: the trials have run max_core_hours ({budget:g}): no new "
              "trials; those under way finish")
        return True
    return False


class Grid(Searcher):
    """The runs of a grid in parts (continuation.grid_runs: those no earlier part ended), one
    trial each, in the file's order: Ray Tune queues every run of a grid_search as a trial at
    once, but asks a searcher for one trial at a time, so that no run starts past
    max_core_hours."""

    def __init__(self, study: Study, runs: list[dict]):
        super().__init__()
        self.study, self.runs, self.seconds = study, runs, {}

    def suggest(self, trial_id: str) -> dict | str:
        if not self.runs or budget_spent(self.study, self.seconds):
            return Searcher.FINISHED
        return self.runs.pop(0)

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        self.seconds[trial_id] = result.get("time_total_s", 0.0)

    def on_trial_complete(self, trial_id: str, result: dict | None = None,
                          error: bool = False) -> None:
        if result:
            self.seconds[trial_id] = result.get("time_total_s", 0.0)

    # the runs left and the seconds run, for a resumed study (Tuner.restore)
    def save(self, checkpoint_path: str) -> None:
        Path(checkpoint_path).write_bytes(pickle.dumps(self.__dict__))

    def restore(self, checkpoint_path: str) -> None:
        self.__dict__.update(pickle.loads(Path(checkpoint_path).read_bytes()))


def search_algorithm(study: Study, optuna_storage: str, file: str):
    if study.kind == "grid":
        # a grid run whole is Tune's grid_search, every trial queued at once (an autoscaling
        # cluster sees them all)
        return Grid(study, grid_runs(study, file)) if study.grid_in_parts else None
    options = {k: v for k, v in study.sampler.items() if k != "name"}
    kind, _ = SAMPLERS[study.sampler["name"]]
    sampler = getattr(optuna.samplers, kind)(seed=sampler_seed(study, file), **options)
    try:
        storage = optuna.storages.RDBStorage(optuna_storage)
    except Exception as exc:  # SQLAlchemy's errors for a URL it cannot use vary by dialect
        raise LaunchError(f"--optuna-storage {optuna_storage}: {type(exc).__name__}: {exc}; "
                          "allowed: a database URL such as sqlite:///path/optuna.db or "
                          "postgresql://user@host/db") from None
    searcher = Search(study, space=SearchSpace(study), metric=study.metric, mode=study.mode,
                      sampler=sampler, study_name=study.name, storage=storage)
    # the searcher has created the Optuna study: name its values (optuna-dashboard's axes)
    ot_study = optuna.load_study(study_name=study.name, storage=storage)
    ot_study.set_metric_names(study.objective_names)
    if study.continues and not ot_study.trials:  # once: a launch resumed before Tune's
        ot_study.add_trials(earlier_trials(study, file))  # first snapshot has them
    return Repeater(searcher, repeat=study.repeats) if study.repeats > 1 else searcher


def scheduler(study: Study):
    if study.scheduler.name == "none":
        return None
    return ASHAScheduler(time_attr="iteration", metric=study.metric, mode=study.mode,
                         max_t=max(study.max_iterations, 1),
                         grace_period=study.scheduler.grace_period,
                         reduction_factor=study.scheduler.reduction_factor)


def trainable(study: Study, folder: StudyFolder, info: LaunchInfo):
    fn = tune.with_parameters(distill_trial, study=study, study_path=folder.path,
                              data_dir=info.data_dir, download=info.download)
    return tune.with_resources(named(fn), dict(info.resources))


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
    largest = max((n["Resources"].get("CPU", 0) for n in ray.nodes() if n.get("Alive")),
                  default=0)
    if resources["cpu"] > largest:  # no node could ever run a trial: PENDING forever
        raise LaunchError(f"resources.cpu = {resources['cpu']} is more than any node of the "
                          f"cluster has; allowed: at most {largest:g}")
    if not require_gpu and not ray.cluster_resources().get("GPU", 0) and any(
            c.device.startswith("cuda") for c in study.configs()):
        raise LaunchError("a trial's device is cuda but the cluster has no GPU; allowed: "
                          "device auto (the GPU where Ray gives one) or cpu, or "
                          "--require-gpu to wait for GPU nodes")
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


def check_writable(storage: str) -> None:
    """--storage is a folder this process may create folders in (local storage; an object
    store says so itself at its first write)."""
    if "://" in storage:
        return
    existing_parent = Path(storage)
    while not existing_parent.exists():
        existing_parent = existing_parent.parent
    if not existing_parent.is_dir():
        raise LaunchError(f"--storage {storage}: {existing_parent} is a file; allowed: a folder")
    if not os.access(existing_parent, os.W_OK | os.X_OK):
        raise LaunchError(f"--storage {storage}: {existing_parent} is not writable by this user")


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
        check_reachable(address)
        # the trials' own output stays in their logs (the dashboard's Logs page, `ray logs`):
        # the launch prints Console's lines
        context = ray.init(address=address, log_to_driver=False)
        if context.dashboard_url:
            print(f"raygm: Ray dashboard at http://{context.dashboard_url} (its sign-in token: "
                  "`ray get-auth-token`); each trial is an actor named after it, with its log")


def check_reachable(address: str | None) -> None:
    """A host:port address answers (ray.init waits minutes on one that does not)."""
    if address in (None, "auto"):
        return
    host, _, port = address.split("://")[-1].rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=10).close()
    except (OSError, ValueError) as exc:
        raise LaunchError(f"--address {address}: no Ray cluster answers there ({exc}); "
                          "allowed: host:port or ray://host:port of a running cluster (ray "
                          "start --head), auto, or none for a local Ray") from None


def launch(study_file: str, storage: str | None = None, address: str | None = None,
           data_dir: str | None = None, optuna_storage: str | None = None,
           callbacks: list[tune.Callback] | None = None, overrides: list[str] | None = None,
           download: bool = True, require_gpu: bool = False,
           shared_storage: bool = False) -> tune.ResultGrid:
    """Check everything (the study file with its --set overrides, the data, the storage and
    the cluster) before anything is written or any trial starts; then run the study."""
    study = load_study(study_file, overrides)
    storage = absolute(storage or DEFAULT_STORAGE)
    check_writable(storage)
    folder = StudyFolder(os.path.join(storage, study.name))
    if "://" not in folder.path and (folder.has_experiment() or folder.claimed()):
        raise FileExistsError(f"study {folder.path} exists: continue it with "
                              f"`raygm study resume {folder.path}` or choose another --storage")
    if "://" in folder.path and optuna_storage is None and study.kind == "search":
        raise LaunchError("a search on remote storage needs --optuna-storage (a database URL)")
    # The driver's data folder, absolute so trials on this machine find it from their
    # working directories; nodes without it download (or set RAYGM_DATA_DIR).
    data_dir = str(Path(resolve_data_dir(data_dir)).resolve())
    check_data(study, data_dir, download, study_file)
    # a grid continuing an earlier part runs what that part left; the parts are one study
    trials = len(grid_runs(study, study_file)) if study.kind == "grid" else study.num_trials
    if study.continues and study.kind == "search":
        earlier_trials(study, study_file)
    connect(address)
    check_storage(storage, shared_storage)
    info = LaunchInfo(
        storage=storage, address=address, data_dir=data_dir, download=download,
        optuna_storage=optuna_storage, resources=trial_resources(study, require_gpu),
        require_gpu=require_gpu, shared_storage=shared_storage, study_file=str(study_file),
        overrides=overrides or [], machine=cpu_description(), trials=trials)
    # the study as run (overrides applied), so status, resume and export read the same
    raw = apply_overrides(read_raw(Path(study_file).read_text(), study_file), overrides or [],
                          study_file)
    with folder.claim():  # a second launch of the name is refused from here on
        folder.write_study(raw)
        folder.write_launch(info)
        tuner = new_tuner(study, folder, info, callbacks)
    return fit(tuner)


def fit(tuner: tune.Tuner) -> tune.ResultGrid:
    """Tuner.fit, then SIGINT as before it: Tune's handler (end the run, keep its state)
    outlives a run no signal ended, and would swallow a Ctrl-C meant for the confirmation
    that follows."""
    handler = signal.getsignal(signal.SIGINT)
    try:
        return tuner.fit()
    finally:
        # None: not set from Python; off the main thread Tune sets none (nor may we)
        if handler is not None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, handler)


def new_tuner(study: Study, folder: StudyFolder, info: LaunchInfo,
              callbacks: list[tune.Callback] | None = None) -> tune.Tuner:
    space = param_space(study)
    return tune.Tuner(
        trainable(study, folder, info),
        param_space=space,
        tune_config=tune.TuneConfig(
            search_alg=search_algorithm(study, folder.optuna_storage(info), info.study_file),
            scheduler=scheduler(study),
            # a grid_search holds its trials; a searcher is asked for the launch's
            num_samples=1 if space else info.trials or study.num_trials,
            max_concurrent_trials=study.max_concurrent or None),
        run_config=tune.RunConfig(
            name=folder.name, storage_path=folder.storage,
            # Tune's own per-trial stop: a trial past the limit ends unevaluated (OVER_TIME)
            stop={"time_total_s": study.max_trial_seconds} if study.max_trial_seconds else None,
            failure_config=tune.FailureConfig(max_failures=study.max_failures),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=None),
            callbacks=[LiveStatus(folder),
                       Console(study, folder.path, info.machine, trials=info.trials),
                       *(callbacks or [])],
            verbose=0),  # Console's lines instead of Tune's tables; results: the study folder
    )


def resume(path: str, address: str | None = None) -> tune.ResultGrid:
    """Continue an interrupted study: finished trials are kept, unfinished and errored
    ones continue from their latest checkpoints. A study stopped before Ray Tune's first
    snapshot of it starts again as launched."""
    folder = StudyFolder(path)
    if not folder.has_experiment() and not folder.claimed():
        folder = existing(path)  # neither: says what is missing
    study, info = folder.study(), folder.launch_info()
    adopt_moved_modules()
    connect(address if address is not None else info.address)
    check_storage(folder.storage, info.shared_storage)
    if not folder.has_experiment():
        return fit(new_tuner(study, folder, info))
    folder.drop_status()
    return fit(tune.Tuner.restore(folder.path, trainable(study, folder, info),
                                  resume_unfinished=True, resume_errored=True))
