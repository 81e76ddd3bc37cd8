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

from . import export
from ..core import gpu
from ..core.config import RunConfig
from ..core.data import load_dataset, resolve_data_dir
from ..core.distill import resolve_device
from ..core.eval_protocol import PROTOCOLS
from ..core.evaluate import evaluate_network, protocol_config
from ..core.models import MODELS
from ..core.files import absolute, filesystem, read_text, trial_files
from .launch import connect
from .store import (EVALUATIONS, LaunchError, StudyFolder, existing, network_file,
                    network_files, put_network)
from .study_file import Confirm, Objective, Study
from .trial import trial_config


class Interrupted(Exception):
    """Ctrl-C during a re-evaluation: what was kept and what was not."""


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
    metric = study.objectives[0].metric
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


def refuse_missing(trials: list[Candidate], skip: bool) -> None:
    """Name the chosen trials whose synthetic set is gone: refused, or (skip) said."""
    missing = [t.trial_id for t in trials if t.synthetic is None]
    if missing and not skip:
        raise LaunchError(f"{len(missing)} chosen trial(s) have no saved synthetic set (their "
                          f"checkpoints are gone): {', '.join(missing)}; pass --skip-missing "
                          "to evaluate the others")
    if missing:
        print(f"raygm evaluate: skipped (no saved synthetic set): {', '.join(missing)}")


@dataclass(frozen=True)
class Source:
    """What a re-evaluation reads from a study folder or an exported results folder."""
    candidates: list[Candidate]
    objective: Objective
    resources: dict[str, float]
    data: dict[str, Any]  # data_dir, download
    address: str | None

    @classmethod
    def of(cls, path: str, data_dir: str | None, download: bool | None,
           address: str | None) -> "Source":
        if export.is_export(path):
            meta = json.loads(read_text(path, export.STUDY_JSON))
            objective = Objective(**meta["objectives"][0])
            return cls(exported_candidates(filesystem(path)[1], objective.metric), objective,
                       meta["resources"], {"data_dir": str(resolve_data_dir(data_dir)),
                                           "download": bool(download)}, address)
        folder = existing(path)
        study, info = folder.study(), folder.launch_info()
        return cls(study_candidates(study, path, filesystem(path)[0]), study.objectives[0],
                   info.resources, {"data_dir": data_dir or info.data_dir,
                                    "download": info.download if download is None else download},
                   address if address is not None else info.address)


def evaluate_study(path: str, which: str = "best:3", archs: tuple[str, ...] | None = None,
                   models: int = 10, protocol: str = "full", epochs: int | None = None,
                   address: str | None = None, also_archs: tuple[str, ...] = (),
                   where: dict[str, Any] | None = None, data_dir: str | None = None,
                   download: bool | None = None, skip_missing: bool = False) -> list[dict]:
    """Evaluate the chosen trials' (select_trials) latest synthetic sets by networks
    0..models-1 of the protocol, on archs (default: each trial's evaluation architectures,
    and also_archs); skip the networks evaluated already. A chosen trial whose synthetic set
    is gone is refused by name, before Ray, unless skip_missing. PATH is a study folder or a folder
    its results were exported to (then its Parquet files gain the new evaluations). The
    data is found in data_dir, else the study's (else $RAYGM_DATA_DIR); download: whether
    missing files may be downloaded (default the study's; no for a results folder). Returns
    the evaluations (see store.group_networks) this request covers."""
    path = absolute(path)
    PROTOCOLS[protocol]  # an unknown protocol stops here, before Ray
    for arch in (*(archs or ()), *also_archs):
        MODELS[arch]  # so does an unknown architecture
    fs, _ = filesystem(path)
    source = Source.of(path, data_dir, download, address)
    trials = select_trials(source.candidates, source.objective.mode, which, where)
    refuse_missing(trials, skip_missing)
    resources, data, address = source.resources, source.data, source.address
    done = {posixpath.basename(f) for f in network_files(path)} | {
        network_file(r) for r in export.exported_networks(path)}
    connect(address)
    task = ray.remote(num_cpus=resources["cpu"], num_gpus=resources["gpu"])(evaluate_task)
    pending, wanted = {}, set()
    for trial in sorted(trials, key=lambda t: t.trial_id):
        config = protocol_config(trial.config, protocol, models, epochs)
        blob = None  # the set, read and put into Ray's object store once per trial
        for arch in archs or dict.fromkeys((*trial.config.eval_architectures, *also_archs)):
            resolved = config.eval_train_epochs(arch), config.eval_augmentation(arch)
            wanted.add((trial.trial_id, protocol, *resolved, arch))
            todo = [n for n in range(models) if network_file(dict(
                trial_id=trial.trial_id, protocol=protocol, epochs=resolved[0],
                augment=resolved[1], arch=arch, network=n)) not in done]
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
        try:
            while pending:
                [ref], _ = ray.wait(list(pending))
                trial_id = pending.pop(ref)
                r = {"trial_id": trial_id, **ray.get(ref)}
                put_network(path, r)
                bar.update()
                bar.write(f"{trial_id} {r['arch']} {protocol} network {r['network']}: "
                          f"{100 * r['acc']:.2f}% ({r['seconds']:.0f} s)")
        except KeyboardInterrupt:
            for ref in pending:
                ray.cancel(ref, force=True)
            raise Interrupted(f"{bar.n} of the {total} networks were evaluated and are kept "
                              f"(in {posixpath.join(path, EVALUATIONS)}); the other "
                              f"{total - bar.n} were not") from None
    if export.is_export(path):
        export.add_evaluations(path)
        evaluations = export.read_evaluations(path)
    else:
        evaluations = StudyFolder(path).evaluations()
    return [e for e in evaluations
            if (e["trial_id"], e["protocol"], e["epochs"], e["augment"], e["arch"]) in wanted]


def confirm_study(path: str, confirm: Confirm) -> list[dict]:
    """A study's `confirm`: its best configurations re-evaluated, every seed."""
    return evaluate_study(path, f"best:{confirm.top}", models=confirm.eval_models,
                          protocol=confirm.protocol, epochs=confirm.eval_epochs,
                          also_archs=confirm.also_archs)
