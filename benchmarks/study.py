"""Where a study's time goes: per trial, the seconds of setup, compilation, distillation,
evaluation, checkpointing and the rest (Ray Tune's reporting and syncing), the wait before
it started, and over the whole study (its confirmation included, when the study has one)
the slot utilisation (busy seconds / (slots x wall)) and the trials per core-hour.

Runs a study file (reduced with --set, like `raygm study launch`) on a local Ray of --cpus
CPUs, in a fresh storage folder, and prints a Markdown table.

    python benchmarks/study.py studies/init.yaml --set iterations=10 --set eval_at=[0,5,10] \\
        [--cpus 2] [--data-dir DIR] [--json OUT.json]
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time

import ray
from ray import tune

from common import machine
from raygm.studies import launch
from raygm.studies.reevaluation import confirm_study
from raygm.studies.study_file import load_study

PARTS = ("setup_seconds", "compile_seconds", "distill_seconds", "evaluate_seconds",
         "checkpoint_seconds")


class Timeline(tune.Callback):
    """When each trial started and ended (driver clock) and its last result."""

    def __init__(self):
        self.start, self.end, self.last = {}, {}, {}

    def on_trial_start(self, iteration, trials, trial, **info):
        self.start.setdefault(trial.trial_id, time.time())

    def on_trial_result(self, iteration, trials, trial, result, **info):
        self.last[trial.trial_id] = result

    def on_trial_complete(self, iteration, trials, trial, **info):
        self.end[trial.trial_id] = time.time()


def measure(study_file: str, overrides: list[str], cpus: int, data_dir: str | None,
            keep: str | None = None) -> dict:
    study = load_study(study_file, overrides)
    timeline = Timeline()
    ray.init(num_cpus=cpus, num_gpus=0, include_dashboard=False)
    try:
        with tempfile.TemporaryDirectory() as scratch:
            storage = keep or scratch
            began = time.time()
            results = launch.launch(study_file, storage=storage, data_dir=data_dir,
                                    overrides=overrides, callbacks=[timeline])
            trials_wall = time.time() - began
            errors = len(results.errors)
            confirmed = []
            if study.confirm:  # as `raygm study launch` does after the trials
                confirmed = confirm_study(results.experiment_path, study.confirm)
            wall = time.time() - began
    finally:
        ray.shutdown()
    slots = min(cpus / study.resources["cpu"], study.max_concurrent or float("inf"))
    trials = []
    for trial_id, result in sorted(timeline.last.items()):
        own = timeline.end[trial_id] - timeline.start[trial_id]
        row = {"trial": trial_id, **{k: result.get(k, 0.0) for k in PARTS},
               "wall_seconds": result["wall_seconds"], "busy_seconds": own,
               "waited_seconds": timeline.start[trial_id] - began}
        # compilation happens inside distillation and evaluation, so it is not subtracted
        row["other_seconds"] = own - sum(row[k] for k in PARTS if k != "compile_seconds")
        trials.append(row)
    # a confirmation task is busy for its networks' seconds
    confirm_busy = sum(e["seconds_per_model"] * e["networks"] for e in confirmed)
    busy = sum(t["busy_seconds"] for t in trials) + confirm_busy
    return {"machine": machine(), "study": study.name, "overrides": overrides, "cpus": cpus,
            "slots": slots, "trials": trials, "errors": errors, "wall_seconds": wall,
            "trials_wall_seconds": trials_wall, "confirmed": len(confirmed),
            "confirm_busy_seconds": confirm_busy,
            "utilisation": busy / (slots * wall),
            "trials_per_core_hour": len(trials) / (wall * cpus / 3600)}


def table(m: dict) -> str:
    head = ["trial", "setup", "compile", "distill", "evaluate", "checkpoint", "other",
            "busy", "waited"]
    keys = ["trial", *PARTS, "other_seconds", "busy_seconds", "waited_seconds"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for t in m["trials"]:
        lines.append("| " + " | ".join(t[k] if k == "trial" else f"{t[k]:.1f}" for k in keys)
                     + " |")
    means = {k: statistics.fmean(t[k] for t in m["trials"]) for k in keys[1:]}
    lines.append("| mean | " + " | ".join(f"{means[k]:.1f}" for k in keys[1:]) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("study", help="study file, e.g. studies/init.yaml")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--data-dir")
    parser.add_argument("--json", help="also write the measurement here")
    parser.add_argument("--storage", help="keep the study here (default: a temporary folder)")
    args = parser.parse_args()
    m = measure(args.study, args.set, args.cpus, args.data_dir, args.storage)
    print(f"\n    {m['machine']}; {m['cpus']} CPUs, {m['slots']:g} slots; study {m['study']} "
          f"with {' '.join(m['overrides'])}\n")
    print(table(m))
    if m["confirmed"]:
        print(f"\nconfirmation: {m['confirmed']} evaluations, "
              f"{m['confirm_busy_seconds']:.0f} busy seconds, "
              f"{m['wall_seconds'] - m['trials_wall_seconds']:.0f} s wall after the trials")
    print(f"\n{len(m['trials'])} trials ({m['errors']} errors) in {m['wall_seconds']:.0f} s: "
          f"slots busy {100 * m['utilisation']:.0f}% of the wall time, "
          f"{m['trials_per_core_hour']:.1f} trials per core-hour")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(m, f, indent=2)


if __name__ == "__main__":
    main()
