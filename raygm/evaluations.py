"""Re-evaluating a study's saved synthetic sets: `raygm evaluate` and a study's `confirm`.

The trials of a study screen its configurations with a cheap evaluation; the best ones are
then confirmed, every seed, under a fuller protocol (eval_protocol.PROTOCOLS), on any
architectures. Each (trial, protocol, networks, architecture) evaluation runs as a Ray task
with a trial's resources and is written to STUDY/evaluations/ as it finishes, so an
interrupted `raygm evaluate` goes on where it stopped; the export gathers them into
results/evaluations.parquet. An exported results folder can be re-evaluated too (e.g. after
a correction of the protocol, when the study folder is gone): its Parquet files gain the
new evaluations."""
from __future__ import annotations

import io
import json
import math
import posixpath
import statistics
import time
from dataclasses import dataclass, fields
from typing import Any

import pyarrow.parquet as pq
import ray
import torch
from ray import tune
from tqdm import tqdm

from . import export, gpu
from .config import RunConfig
from .data import load_dataset, resolve_data_dir
from .distill import resolve_device
from .eval_protocol import PROTOCOLS
from .evaluate import evaluate_network, protocol_config
from .files import absolute, filesystem, read_text, trial_files, write_atomic
from .study import LaunchError, Study
from .trainable import trial_config
from .tuning import EVALUATIONS, connect, load_evaluations, network_files, read_study


@dataclass(frozen=True)
class Candidate:
    """A finished trial that can be re-evaluated: its run config, its score on the study's
    first objective (NaN when missing) and its latest synthetic set (a path on `fs`)."""
    trial_id: str
    config: RunConfig
    score: float
    synthetic: str | None


def study_candidates(study: Study, path: str, fs) -> list[Candidate]:
    """A study folder's finished trials (Ray Tune's experiment state)."""
    analysis = tune.ExperimentAnalysis(path)
    metric = study.objectives[0]["metric"]
    return [Candidate(t.trial_id, trial_config(study, t.config),
                      (t.last_result or {}).get(metric, math.nan), trial_files(fs, t.path)[0])
            for t in analysis.trials if t.status == "TERMINATED"
            and not (t.last_result or {}).get("duplicate_of")]  # counted once


def exported_candidates(folder: str, metric: str) -> list[Candidate]:
    """An exported results folder's finished trials (trials.parquet, synthetic/)."""
    rows = pq.read_table(posixpath.join(folder, export.TRIALS)).to_pylist()
    return [Candidate(r["trial_id"], RunConfig.from_row(r),
                      math.nan if r.get(metric) is None else r[metric],
                      r["synthetic_path"] and posixpath.join(folder, r["synthetic_path"]))
            for r in rows if r["status"] == "TERMINATED" and not r.get("duplicate_of")]


def select_trials(candidates: list[Candidate], mode: str, which: str,
                  where: dict[str, Any] | None = None) -> list[Candidate]:
    """'all' candidates, or 'best:K': every candidate of the K configurations (all seeds
    pooled) with the best mean score (mode max or min); among the candidates whose run
    config has every `where` field's value (e.g. {"model": "MLP"}), if given."""
    known = {f.name for f in fields(RunConfig)}
    for key, value in (where or {}).items():
        if key not in known:
            raise LaunchError(f"--where {key}={value}: {key!r} is not a run config field; "
                              f"allowed: {', '.join(sorted(known))}")
        values = [getattr(c.config, key) for c in candidates]
        candidates = [c for c, v in zip(candidates, values) if v == value]
        if not candidates:
            raise LaunchError(f"--where {key}={value}: no finished trial has it; its values: "
                              + ", ".join(sorted(set(map(str, values)))))
    if which == "all":
        return candidates
    prefix, _, k = which.partition(":")
    if prefix != "best" or not k.isdigit() or int(k) < 1:
        raise LaunchError(f"--trials {which!r} is invalid; allowed: all, best:K (K >= 1)")
    groups: dict[str, list[Candidate]] = {}
    for c in candidates:
        groups.setdefault(json.dumps(c.config.replace(seed=0).to_dict(), sort_keys=True),
                          []).append(c)

    def score(group):
        values = [c.score for c in group if not math.isnan(c.score)]
        mean = statistics.fmean(values) if values else -math.inf if mode == "max" else math.inf
        return mean if mode == "max" else -mean
    best = sorted(groups.values(), key=score, reverse=True)[:int(k)]
    return [c for group in best for c in group]


def key_of(trial_id: str, protocol: str, epochs: int, augment: str, arch: str,
           network: int) -> str:
    return f"{trial_id}-{protocol}-{epochs}ep-{augment}-{arch}-{network}.json"


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
    return {"protocol": protocol, "epochs": run.eval_train_epochs(arch),
            "augment": run.eval_augmentation(arch), "arch": arch, "iteration": state["iteration"],
            "network": network, "acc": acc, "seconds": time.perf_counter() - start}


def evaluate_study(path: str, which: str = "best:3", archs: tuple[str, ...] | None = None,
                   models: int = 10, protocol: str = "full", epochs: int | None = None,
                   address: str | None = None, also_archs: tuple[str, ...] = (),
                   where: dict[str, Any] | None = None, data_dir: str | None = None,
                   download: bool | None = None) -> list[dict]:
    """Evaluate the chosen trials' (select_trials) latest synthetic sets by networks
    0..models-1 of the protocol, on archs (default: each trial's evaluation architectures,
    and also_archs); skip the networks evaluated already. PATH is a study folder or a folder
    its results were exported to (then its Parquet files gain the new evaluations). The
    data is found in data_dir, else the study's (else $RAYGM_DATA_DIR); download: whether
    missing files may be downloaded (default the study's; no for a results folder). Returns
    the evaluations (see tuning.load_evaluations) this request covers."""
    path = absolute(path)
    PROTOCOLS[protocol]  # an unknown protocol stops here, before Ray
    fs, root = filesystem(path)
    if export.is_export(path):
        meta = json.loads(read_text(path, export.STUDY_JSON))
        objective, resources = meta["objectives"][0], meta["resources"]
        candidates = exported_candidates(root, objective["metric"])
        data = {"data_dir": str(resolve_data_dir(data_dir)), "download": bool(download)}
    else:
        study, launch_info = read_study(path)
        objective, resources = study.objectives[0], launch_info["resources"]
        candidates = study_candidates(study, path, fs)
        data = {"data_dir": data_dir or launch_info["data_dir"],
                "download": launch_info["download"] if download is None else download}
        address = address if address is not None else launch_info["address"]
    trials = select_trials(candidates, objective["mode"], which, where)
    folder = posixpath.join(root, EVALUATIONS)
    done = {posixpath.basename(f) for f in network_files(path)} | {
        key_of(*(r[k] for k in ("trial_id", "protocol", "epochs", "augment", "arch",
                                "network"))) for r in export.exported_networks(path)}
    connect(address)
    task = ray.remote(num_cpus=resources["cpu"], num_gpus=resources["gpu"])(evaluate_task)
    pending, wanted = {}, set()
    for trial in sorted(trials, key=lambda t: t.trial_id):
        config = protocol_config(trial.config, protocol, models, epochs)
        blob = None  # the set, read and put into Ray's object store once per trial
        for arch in archs or dict.fromkeys((*trial.config.eval_architectures, *also_archs)):
            resolved = config.eval_train_epochs(arch), config.eval_augmentation(arch)
            wanted.add((trial.trial_id, protocol, *resolved, arch))
            todo = [n for n in range(models)
                    if key_of(trial.trial_id, protocol, *resolved, arch, n) not in done]
            if not todo or trial.synthetic is None:
                continue
            if blob is None:
                with fs.open_input_stream(trial.synthetic) as f:
                    blob = ray.put(f.read())
            for n in todo:
                ref = task.remote(blob, trial.config.to_dict(), arch, protocol, epochs, n,
                                  data["data_dir"], data["download"],
                                  max(1, int(resources["cpu"])))
                pending[ref] = trial.trial_id
    total = len(pending)
    with tqdm(total=total, desc="raygm evaluate", unit="network", disable=not total) as bar:
        while pending:
            [ref], _ = ray.wait(list(pending))
            trial_id = pending.pop(ref)
            r = {"trial_id": trial_id, **ray.get(ref)}
            write_atomic(folder, key_of(trial_id, protocol, r["epochs"], r["augment"],
                                        r["arch"], r["network"]), json.dumps(r).encode())
            bar.update()
            bar.write(f"{trial_id} {r['arch']} {protocol} network {r['network']}: "
                      f"{100 * r['acc']:.2f}% ({r['seconds']:.0f} s)")
    if export.is_export(path):
        export.add_evaluations(path)
        evaluations = export.read_evaluations(path)
    else:
        evaluations = load_evaluations(path)
    return [e for e in evaluations
            if (e["trial_id"], e["protocol"], e["epochs"], e["augment"], e["arch"]) in wanted]


def confirm_study(path: str, confirm: dict) -> list[dict]:
    """A study's `confirm` (study.py): its best configurations re-evaluated, every seed."""
    return evaluate_study(path, f"best:{confirm['top']}", models=confirm["eval_models"],
                          protocol=confirm["protocol"], epochs=confirm["eval_epochs"],
                          also_archs=tuple(confirm["also_archs"]))
