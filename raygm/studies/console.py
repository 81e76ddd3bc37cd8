"""What a launch prints while its study runs: one line per trial event and, now and then, a
compact table of the running trials (a Ray Tune callback: Tune's own tables are off, and the
trials' own logs are on the Ray dashboard's Logs page)."""
from __future__ import annotations

import math
import sys
import time

from ray import tune

from ..core.records import DIVERGED
from .status import ended_early, error_line, format_table
from .study_file import Study
from .trial import settings_text, trial_config


class Console(tune.Callback):
    """Lines: started (with the varied settings), evaluated (iteration and accuracy),
    finished (its result, DIVERGED or OVER_TIME), failed (its error's first line). Every
    `every` seconds, if anything changed or a trial is evaluating, a table of the unfinished
    trials: iteration of the study's iterations, latest loss and accuracy, and what each
    does now."""

    def __init__(self, study: Study, path: str, machine: str, every: float = 120.0,
                 out=None, trials: int = 0):
        self.study, self.path, self.machine, self.every, self.out, self.trials = \
            study, path, machine, every, out, trials
        self.latest: dict[str, dict] = {}  # trial id: its last result and when it came
        self.shown, self.changed = time.monotonic(), False

    @property
    def planned(self) -> int:
        """The trials this launch runs (a grid continuing a part: those it left); consoles
        pickled into a study folder before this was kept have no `trials`."""
        return self.__dict__.get("trials") or self.study.num_trials

    def _print(self, text: str) -> None:
        print(text, file=self.out or sys.stdout, flush=True)

    def _line(self, trial, text: str) -> None:
        self._print(f"{time.strftime('%H:%M:%S')} {trial.trial_id}  {text}")
        self.changed = True

    def setup(self, **info):
        self._print(f"raygm: study {self.study.name}, {self.planned} trials, on "
                    f"{self.machine}; live curves: tensorboard --logdir {self.path}")

    def on_trial_start(self, iteration, trials, trial, **info):
        config = trial_config(self.study, trial.config)
        self._line(trial, f"started   {settings_text(self.study, config)}, seed {config.seed}")

    def on_trial_result(self, iteration, trials, trial, result, **info):
        self.latest[trial.trial_id] = {**result, "received": time.monotonic()}
        self.changed = True
        if result.get("evaluated") and not result.get(DIVERGED):
            self._line(trial, f"evaluated iteration {self._progress(trial, result)}: "
                              f"{self._accuracy(result)}")

    def on_trial_complete(self, iteration, trials, trial, **info):
        last = self.latest.pop(trial.trial_id, {})
        early = ended_early(self.study, trial.config, last)
        if early == "DIVERGED":
            outcome = f"DIVERGED: {last[DIVERGED]}"
        elif early == "OVER_TIME":
            outcome = (f"OVER_TIME: stopped at max_trial_seconds "
                       f"{self.study.max_trial_seconds:g} s")
        elif last.get("duplicate_of"):
            outcome = f"{self._accuracy(last)} (the result of trial {last['duplicate_of']})"
        else:
            outcome = self._accuracy(last)
        self._line(trial, f"finished  at iteration {self._progress(trial, last)}: {outcome}")

    def on_trial_error(self, iteration, trials, trial, **info):
        self.latest.pop(trial.trial_id, None)
        self._line(trial, f"failed    {error_line(trial.get_error())}")

    def on_step_end(self, iteration, trials, **info):
        if time.monotonic() - self.shown < self.every:
            return
        rows = [self._row(t) for t in trials if t.status in ("RUNNING", "PENDING", "PAUSED")]
        # a long evaluation reports nothing until it ends: its row says how long it has run
        if not self.changed and not any(r.get("now", "").startswith("evaluating")
                                        for r in rows):
            return
        done = sum(t.status in ("TERMINATED", "ERROR") for t in trials)
        self._print(f"{time.strftime('%H:%M:%S')} {done} of {self.planned} trials "
                    f"done\n" + format_table(rows))
        self.shown, self.changed = time.monotonic(), False

    def _row(self, trial) -> dict:
        config = trial_config(self.study, trial.config)
        last = self.latest.get(trial.trial_id, {})
        row = {"trial": trial.trial_id, "status": trial.status,
               **{k: getattr(config, k) for k in self.study.factors},
               "iteration": self._progress(trial, last), "loss": last.get("loss"),
               "acc_mean": last.get("acc_mean")}
        if trial.status == "RUNNING":
            row["now"] = self._doing(config, last)
        return row

    @staticmethod
    def _doing(config, last: dict) -> str:
        """What a running trial does: it reports after each iteration, evaluating first where
        the iteration is an evaluation point, so the next report's iteration says which."""
        if not last:
            return "starting" + (" (evaluating at 0)" if 0 in config.eval_points else "")
        since = time.monotonic() - last["received"]
        if last.get("iteration", 0) + 1 in config.eval_points:
            return f"evaluating, {since:.0f} s"
        return "distilling"

    def _progress(self, trial, result: dict) -> str:
        """The study's own iteration count (Tune's training_iteration also counts the report
        of the evaluation at iteration 0)."""
        iteration = result.get("iteration", 0)
        return f"{iteration}/{trial_config(self.study, trial.config).iterations}"

    @staticmethod
    def _accuracy(result: dict) -> str:
        acc = result.get("acc_mean", math.nan)
        return "no accuracy" if acc is None or math.isnan(acc) else f"accuracy {100 * acc:.2f} %"
