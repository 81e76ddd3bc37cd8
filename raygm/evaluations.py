"""Re-evaluating a study's saved synthetic sets: `raygm evaluate` and a study's `confirm`.

The trials of a study screen its configurations with a cheap evaluation; the best ones are
then confirmed, every seed, under a fuller protocol (evaluate.PROTOCOLS), on any
architectures. Each (trial, protocol, networks, architecture) evaluation runs as a Ray task
with a trial's resources and is written to STUDY/evaluations/ as it finishes, so an
interrupted `raygm evaluate` goes on where it stopped; the export gathers them into
results/evaluations.parquet."""
from __future__ import annotations

import io
import json
import math
import posixpath
import statistics
import time
from dataclasses import fields
from typing import Any

import pyarrow.fs
import ray
import torch
from ray import tune

from .config import RunConfig
from .data import load_dataset
from . import gpu
from .distill import resolve_device
from .evaluate import PROTOCOLS, evaluate_network, protocol_config
from .files import absolute, filesystem, trial_files, write_atomic
from .study import LaunchError, Study
from .trainable import trial_config
from .tuning import EVALUATIONS, connect, load_evaluations, read_study


def select_trials(study: Study, analysis: tune.ExperimentAnalysis, which: str,
                  where: dict[str, Any] | None = None) -> list:
    """'all' finished trials, or 'best:K': every finished trial of the K configurations
    (all seeds pooled) with the best mean of the study's first objective; among the trials
    whose run config has every `where` field's value (e.g. {"model": "MLP"}), if given."""
    finished = [t for t in analysis.trials if t.status == "TERMINATED"
                and not (t.last_result or {}).get("duplicate_of")]  # counted once
    known = {f.name for f in fields(RunConfig)}
    configs = {t.trial_id: trial_config(study, t.config) for t in finished} if where else {}
    for key, value in (where or {}).items():
        if key not in known:
            raise LaunchError(f"--where {key}={value}: {key!r} is not a run config field; "
                              f"allowed: {', '.join(sorted(known))}")
        values = [getattr(configs[t.trial_id], key) for t in finished]
        finished = [t for t, v in zip(finished, values) if v == value]
        if not finished:
            raise LaunchError(f"--where {key}={value}: no finished trial has it; its values: "
                              + ", ".join(sorted(set(map(str, values)))))
    if which == "all":
        return finished
    prefix, _, k = which.partition(":")
    if prefix != "best" or not k.isdigit() or int(k) < 1:
        raise LaunchError(f"--trials {which!r} is invalid; allowed: all, best:K (K >= 1)")
    metric, mode = study.objectives[0]["metric"], study.objectives[0]["mode"]
    groups: dict[str, list] = {}
    for t in finished:
        config = trial_config(study, t.config).replace(seed=0).to_dict()
        groups.setdefault(json.dumps(config, sort_keys=True), []).append(t)

    def score(trials):
        values = [t.last_result.get(metric, math.nan) for t in trials]
        values = [v for v in values if not math.isnan(v)]
        mean = statistics.fmean(values) if values else -math.inf if mode == "max" else math.inf
        return mean if mode == "max" else -mean
    best = sorted(groups.values(), key=score, reverse=True)[:int(k)]
    return [t for trials in best for t in trials]


def key_of(trial_id: str, protocol: str, epochs: int, arch: str, network: int) -> str:
    return f"{trial_id}-{protocol}-{epochs}ep-{arch}-{network}.json"


def evaluate_task(synthetic: bytes, config: dict, arch: str, protocol: str, epochs: int | None,
                  network: int, data_dir: str, download: bool, threads: int) -> dict:
    """One evaluation network of a saved synthetic set (in a Ray worker): one task per
    network, so that the evaluations of a few sets still fill every slot."""
    torch.set_num_threads(threads)
    start = time.perf_counter()
    state = torch.load(io.BytesIO(synthetic), weights_only=False)
    run = protocol_config(RunConfig.from_dict(config), protocol, epochs=epochs)
    device = resolve_device("cuda" if ray.get_gpu_ids() and torch.cuda.is_available()
                            else "cpu")
    gpu.prepare(device, run.levers or (), gpu.memory_share(
        ray.get_runtime_context().get_assigned_resources().get("GPU", 0)))
    data = load_dataset(run.dataset, data_dir, download=download).to(device)
    # network n of the trial's own evaluation at that iteration (common random numbers)
    acc = evaluate_network(state["images"].to(device), state["labels"].to(device), data, run,
                           arch, state["iteration"], network)
    return {"protocol": protocol, "epochs": run.eval_train_epochs,
            "augment": run.eval_augmentation, "arch": arch, "iteration": state["iteration"],
            "network": network, "acc": acc, "seconds": time.perf_counter() - start}


def evaluate_study(path: str, which: str = "best:3", archs: tuple[str, ...] | None = None,
                   models: int = 10, protocol: str = "full", epochs: int | None = None,
                   address: str | None = None, also_archs: tuple[str, ...] = (),
                   where: dict[str, Any] | None = None) -> list[dict]:
    """Evaluate the chosen trials' (select_trials) latest synthetic sets by networks 0..models-1 of the
    protocol, on archs (default: each trial's evaluation architectures, and also_archs);
    skip the networks STUDY/evaluations holds already. Returns the evaluations (see
    tuning.load_evaluations) this request covers."""
    path = absolute(path)
    study, launch_info = read_study(path)
    PROTOCOLS[protocol]  # an unknown protocol stops here, before Ray
    analysis = tune.ExperimentAnalysis(path)
    trials = select_trials(study, analysis, which, where)
    fs, root = filesystem(path)
    folder = posixpath.join(root, EVALUATIONS)
    done = {posixpath.basename(f.path) for f in fs.get_file_info(
        pyarrow.fs.FileSelector(folder, allow_not_found=True))}
    connect(address if address is not None else launch_info["address"])
    resources = launch_info["resources"]
    task = ray.remote(num_cpus=resources["cpu"], num_gpus=resources["gpu"])(evaluate_task)
    pending, wanted = {}, set()
    for trial in sorted(trials, key=lambda t: t.trial_id):
        config = trial_config(study, trial.config)
        resolved = protocol_config(config, protocol, models, epochs).eval_train_epochs
        synthetic, _ = trial_files(fs, trial.path)
        blob = None  # the set, read and put into Ray's object store once per trial
        for arch in archs or dict.fromkeys((*config.eval_architectures, *also_archs)):
            wanted.add((trial.trial_id, protocol, resolved, arch))
            todo = [n for n in range(models)
                    if key_of(trial.trial_id, protocol, resolved, arch, n) not in done]
            if not todo or synthetic is None:
                continue
            if blob is None:
                with fs.open_input_stream(synthetic) as f:
                    blob = ray.put(f.read())
            for n in todo:
                ref = task.remote(blob, config.to_dict(), arch, protocol, epochs, n,
                                  launch_info["data_dir"], launch_info["download"],
                                  max(1, int(resources["cpu"])))
                pending[ref] = trial.trial_id
    total = len(pending)
    while pending:
        [ref], _ = ray.wait(list(pending))
        trial_id = pending.pop(ref)
        r = {"trial_id": trial_id, **ray.get(ref)}
        write_atomic(folder, key_of(trial_id, protocol, r["epochs"], r["arch"], r["network"]),
                     json.dumps(r).encode())
        print(f"raygm evaluate: {total - len(pending)}/{total} networks; {trial_id} "
              f"{r['arch']} {protocol} network {r['network']}: {100 * r['acc']:.2f}% "
              f"({r['seconds']:.0f} s)")
    return [e for e in load_evaluations(path)
            if (e["trial_id"], e["protocol"], e["epochs"], e["arch"]) in wanted]


def confirm_study(path: str, confirm: dict) -> list[dict]:
    """A study's `confirm` (study.py): its best configurations re-evaluated, every seed."""
    return evaluate_study(path, f"best:{confirm['top']}", models=confirm["eval_models"],
                          protocol=confirm["protocol"], epochs=confirm["eval_epochs"],
                          also_archs=tuple(confirm["also_archs"]))
