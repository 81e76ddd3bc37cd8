"""What a study is doing: its trials' table (status, settings, progress, accuracies), the
driver's live view (LiveStatus), a search's best trials."""
from __future__ import annotations

import logging
import math
import time

import optuna
from ray import tune

from ..core.config import RunConfig
from ..core.eval_protocol import superseded
from ..core.records import DIVERGED, ENDED_STATUSES
from .store import LaunchError, StudyFolder, existing
from .study_file import Study
from .trial import trial_config


def experiment_analysis(path: str) -> tune.ExperimentAnalysis:
    """Ray Tune's view of a study folder, without its warning about every trial that has no
    results yet: each pending trial of a running or stopped study is one, so a study of 25
    trials opened a `raygm study status` with a page of them."""
    log = logging.getLogger("ray.tune.analysis.experiment_analysis")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        return tune.ExperimentAnalysis(path)
    finally:
        log.setLevel(level)


def trial_table(path: str) -> list[dict]:
    """One row per trial: status, what the study varies, progress, latest accuracy."""
    folder = existing(path)
    study = folder.study()
    try:
        analysis = experiment_analysis(folder.path)
    except ValueError:  # Ray Tune writes its first snapshot a moment after the study starts
        raise FileNotFoundError(f"{folder.path}: no experiment state yet; the study has just "
                                "started, try again in a few seconds") from None
    live = folder.status().get("trials", {})
    evaluations = {}
    for e in folder.evaluations():
        evaluations.setdefault(e["trial_id"], []).append(e)
    rows = []
    for trial in sorted(analysis.trials, key=lambda t: t.trial_id):
        reports = analysis.trial_dataframes.get(trial.trial_id)
        result = {} if reports is None or reports.empty else reports.iloc[-1].to_dict()
        # a trial's result files can lag a moment behind Tune's snapshot (seen: a trial shown
        # ended at 199/200 without its accuracy); the snapshot keeps its last result too
        if (trial.last_result or {}).get("iteration", -1) > result.get("iteration", -1):
            result = dict(trial.last_result)
        config = trial_config(study, trial.config)
        # a finished trial's status is in Tune's snapshot; a running one only in status.json
        seen = live.get(trial.trial_id, {})
        status = trial_status(trial, result, study) if trial.status in ("TERMINATED", "ERROR") \
            else seen.get("status", trial.status)
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


def core_hours(seconds, study: Study) -> float:
    """Core-hours of trials that ran these seconds (time_total_s) each: a study's budget."""
    return sum(seconds) * study.resources.get("cpu", 1) / 3600


def unfinished(statuses: list[str], planned: int, hours: float = 0.0,
               budget: float = 0.0) -> str | None:
    """What a study lacks (statuses: its trials'; planned: its number of trials; hours: the
    core-hours they have run, of the study's budget max_core_hours), or None once it is
    complete: every trial has ended, and it has all the trials it plans or has run its budget.
    Results pages and commits want whole studies."""
    ended = sum(s in ENDED_STATUSES for s in statuses)
    if ended == len(statuses) and (ended >= planned or 0 < budget <= hours):
        return None
    return f"{ended} of {planned} trials have ended"


def stopped(path: str) -> str | None:
    """unfinished() of a study folder: how a run that ended before its study (Ctrl-C: Ray
    Tune ended it, keeping its state) left it, or None."""
    folder = existing(path)
    study = folder.study()
    hours = core_hours(((t.last_result or {}).get("time_total_s", 0)
                        for t in experiment_analysis(folder.path).trials), study)
    return unfinished([r["status"] for r in trial_table(path)],
                      folder.launch_info().trials or study.num_trials, hours,
                      study.max_core_hours)


class LiveStatus(tune.Callback):
    """The driver's own view of its trials, written to the study folder as status.json
    (at most once a second, and at every start and end): Ray Tune's experiment snapshot
    records running trials as PENDING, so `raygm study status` reads this instead."""

    def __init__(self, folder: StudyFolder):
        self.folder, self.trials, self.written = folder, {}, 0.0

    def __setstate__(self, state: dict) -> None:
        # Ray Tune pickles its callbacks into tuner.pkl; raygm before store.py kept a path
        if "path" in state:
            state = {**state, "folder": StudyFolder(state["path"])}
            del state["path"]
        self.__dict__.update(state)

    def _set(self, trial, status: str, iteration=None, now: bool = True) -> None:
        entry = self.trials.setdefault(trial.trial_id, {})
        entry["status"] = status
        if iteration is not None:
            entry["iteration"] = int(iteration)
        if now or time.time() - self.written > 1:
            self.written = time.time()
            self.folder.write_status({"updated": self.written, "trials": self.trials})

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


def trial_status(trial, last: dict, study: Study) -> str:
    """Ray Tune's status of a trial, or how a TERMINATED one ended early (ended_early; last:
    its last report)."""
    if trial.status != "TERMINATED":
        return trial.status
    return ended_early(study, trial.config, last) or trial.status


def ended_early(study: Study, params: dict, last: dict) -> str | None:
    """DIVERGED: ended by its own divergence; OVER_TIME: stopped by Tune at the study's
    max_trial_seconds; None: neither (params: its Tune config; last: its last report)."""
    if isinstance(last.get(DIVERGED), str):  # Tune's tables hold NaN where unreported
        return "DIVERGED"
    return "OVER_TIME" if over_time(study, params, last) else None


def over_time(study: Study, params: dict, last: dict) -> bool:
    """Stopped at max_trial_seconds before its last iteration: its accuracy, if any, is an
    earlier evaluation's, not the trial's result."""
    limit = study.max_trial_seconds
    return bool(limit) and last.get("time_total_s", 0) >= limit and \
        last.get("iteration", 0) < trial_config(study, params).iterations


def error_message(trial) -> str:
    """Why an errored trial stopped; '' for trials that did not end in an error (a retried
    failure shows in num_failures)."""
    return error_line(trial.get_error()) if trial.status == "ERROR" else ""


def error_line(error) -> str:
    """The last line of an error's traceback: the exception itself."""
    lines = [line for line in str(error or "").splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


def pareto_front(path: str) -> list[dict]:
    """Optuna's best trials of a search: its best, or the Pareto front of two objectives."""
    folder = existing(path)
    study = folder.study()
    if study.kind != "search":
        return []
    storage = folder.optuna_storage(folder.launch_info())
    try:
        optuna_study = optuna.load_study(study_name=study.name, storage=storage)
    except Exception as exc:  # SQLAlchemy's and Optuna's errors for a broken database vary
        raise LaunchError(f"the study's Optuna storage {storage} cannot be read "
                          f"({type(exc).__name__}: {str(exc).splitlines()[0]}); allowed: the "
                          "database the search wrote") from None
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
