"""The one driver of a run: steps a `Distillation` to its last iteration and decides when
to evaluate, when a checkpoint (with or without an image grid) is due and what is recorded;
reporters (the CLI's files and progress bar, Ray Tune, the dashboard gauges) only write
down what it hands them, as torchtune's metric loggers do."""
from __future__ import annotations

import copy
import math
import time
from typing import Sequence

from .distill import Distillation
from .gpu import peak_memory_mb
from .models import compile_seconds
from .records import Progress, Report, Snapshot


class Reporter:
    """Receives every report of a run; subclasses override what they need."""

    def evaluating(self, iteration: int) -> None:
        """Called before the evaluation networks of an iteration are trained (slow)."""

    def log(self, report: Report) -> None:
        """Called after each iteration (and at iteration 0 when it is evaluated)."""

    def close(self, progress: Progress) -> None:
        """Called once the run has reached its last iteration."""


def run_to_end(run: Distillation, reporters: Sequence[Reporter], checkpoint_every: int = 0,
               resume: dict | None = None, setup_seconds: float = 0.0) -> Progress:
    """Step run to config.iterations, evaluating at config.eval_points (when eval_models > 0)
    and snapshotting at evaluation points, at the last iteration and every checkpoint_every
    iterations (0: never otherwise). resume: a Snapshot.state to go on from; its iteration
    was reported before it was taken, so the run goes on stepping. setup_seconds: what the
    caller spent before (loading data, building the run), counted in the progress."""
    c = run.config
    progress = Progress(**resume["progress"]) if resume is not None else Progress()
    if resume is not None:
        run.load_state_dict(resume["run"])
    progress.setup_seconds += setup_seconds
    start = time.perf_counter() - progress.wall_seconds - setup_seconds
    compiled_before = compile_seconds() - progress.compile_seconds

    def finish(step) -> None:
        evaluations = ()
        if run.iteration in c.eval_points and c.eval_models > 0:
            for reporter in reporters:
                reporter.evaluating(run.iteration)
            evaluating = time.perf_counter()
            evaluations = tuple(run.evaluate())
            progress.evaluate_seconds += time.perf_counter() - evaluating
            progress.accuracy.update({e.arch: (e.acc_mean, e.acc_std) for e in evaluations})
        if step is not None:
            progress.distill_seconds += step.seconds
        progress.compile_seconds = compile_seconds() - compiled_before
        # this process's peak, or the run's from before a resume if that was higher
        progress.peak_memory_mb = max((m for m in (progress.peak_memory_mb,
                                                   peak_memory_mb(run.device))
                                       if not math.isnan(m)), default=math.nan)
        progress.wall_seconds = time.perf_counter() - start
        grid = run.iteration in c.eval_points or run.iteration == c.iterations
        due = grid or (checkpoint_every > 0 and run.iteration % checkpoint_every == 0)
        snapshot = Snapshot({"run": run.state_dict(), "progress": copy.deepcopy(vars(progress))},
                            grid) if due else None
        report = Report(run.iteration, step, evaluations, copy.deepcopy(progress),
                        c.eval_architectures, snapshot)
        writing = time.perf_counter()
        for reporter in reporters:
            reporter.log(report)
        if snapshot is not None:  # counted from the next report on
            progress.checkpoint_seconds += time.perf_counter() - writing

    if resume is None and (0 in c.eval_points or c.iterations == 0):
        finish(None)
    while run.iteration < c.iterations:
        finish(run.step())
    progress.wall_seconds = time.perf_counter() - start
    for reporter in reporters:
        reporter.close(progress)
    return progress
