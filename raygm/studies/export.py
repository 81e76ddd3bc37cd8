"""A study's results as Parquet, for pandas, polars or DuckDB on any machine.

STUDY/results/ (or another folder) gets iterations.parquet (one row per trial x reported
iteration), trials.parquet (one row per trial), evaluations.parquet (the re-evaluations),
study.json (what the study varies and optimises), and a copy of each trial's latest
synthetic set and image grids (synthetic/, grids/, tens of kilobytes per trial); the
columns are listed in the README. Paths in them are relative to the results folder, which
therefore travels alone (e.g. committed next to the page generated from it). Each file is
written to a temporary name and renamed, so a crash never leaves a half-written file;
exporting again rewrites the same rows."""
from __future__ import annotations

import json
import math
import posixpath
import shutil
import sys
from dataclasses import asdict, fields
from pathlib import Path
from typing import get_type_hints

import pyarrow as pa
import pyarrow.fs
import pyarrow.parquet as pq

from ..core import records
from ..core.config import RunConfig, field_type
from ..core.data import DATASETS
from ..core.files import (absolute, beside, filesystem, read_text, replace_folder, trial_files,
                          write_atomic)
from .status import (error_message, experiment_analysis, protocol_accuracies, stopped,
                     trial_status)
from .store import LaunchInfo, StudyFolder, existing, group_networks, network_files, read_networks
from .study_file import Study
from .trial import trial_config

# the files of a results folder (Parquet tables, what the study varies)
ITERATIONS, TRIALS, EVALUATIONS = "iterations.parquet", "trials.parquet", "evaluations.parquet"
STUDY_JSON = "study.json"
# the key columns of both tables, then the run config's fields
HEAD = {"study": str, "trial_id": str}


def arrow_type(hint) -> pa.DataType:
    item, is_list = field_type(hint)
    scalar = {str: pa.string(), int: pa.int64(), float: pa.float64(), bool: pa.bool_()}[item]
    return pa.list_(scalar) if is_list else scalar


def arrow_schema(columns: dict) -> pa.Schema:
    return pa.schema([pa.field(name, arrow_type(hint)) for name, hint in columns.items()])


CONFIG_COLUMNS = {f.name: get_type_hints(RunConfig)[f.name] for f in fields(RunConfig)}


def nan_to_none(value):
    return None if isinstance(value, float) and math.isnan(value) else value


def copy_into(fs, source: str | None, out: str, name: str) -> str | None:
    """source copied to out/name; returns name (relative to out), None without a source."""
    if source is None:
        return None
    with fs.open_input_stream(source) as f:
        write_atomic(posixpath.join(out, posixpath.dirname(name)), posixpath.basename(name),
                     f.read())
    return name


def export_target(out: str, study: str) -> str:
    """Where to write an export to `out` (refused unless it is new, empty, or an export of
    the same study): `out` itself, or a new folder beside it that replaces it when complete
    (a local folder; object stores are written in place)."""
    if "://" in out:
        return out
    target = Path(out)
    if target.exists() and not target.is_dir():
        raise FileExistsError(f"--to {out} is a file; allowed: a folder")
    if not target.exists() or not any(target.iterdir()):
        return out
    named = json.loads(read_text(out, STUDY_JSON)).get("name") if is_export(out) else None
    if named != study:
        raise FileExistsError(f"--to {out} holds " + (f"the export of study {named}" if named
                                                      else "files that are not an export")
                              + f"; allowed: a new or empty folder, or an export of {study}")
    return str(beside(target))


def export_study(path: str, to: str | None = None) -> str:
    """Write the study's results to `to` (default PATH/results), replacing an earlier
    export of the study there whole; returns the folder."""
    folder = existing(path)
    study, info = folder.study(), folder.launch_info()
    final = absolute(to) if to is not None else folder.results()
    out = export_target(final, study.name)
    try:
        write_export(folder, study, info, out)
    except BaseException:
        if out != final:  # a half export never replaces a whole one
            shutil.rmtree(out, ignore_errors=True)
        raise
    if out != final:
        replace_folder(Path(final), Path(out))
    note = stopped(path)
    if note:
        print(f"raygm: {note}: this export is a snapshot of a study in progress (export again "
              "when the study completes)", file=sys.stderr)
    return final


def write_export(folder: StudyFolder, study: Study, info: LaunchInfo, out: str) -> None:
    """Writes the export to out."""
    path = folder.path
    fs, _ = filesystem(path)
    analysis = experiment_analysis(path)
    trials = sorted(analysis.trials, key=lambda t: t.trial_id)
    configs = {t.trial_id: trial_config(study, t.config) for t in trials}
    # every architecture any trial evaluates on, every class of any trial's dataset
    archs = sorted({a for c in configs.values() for a in c.eval_architectures})
    classes = max((DATASETS[c.dataset].num_classes for c in configs.values()), default=0)
    iteration_columns = records.iteration_columns(archs, classes)
    evaluations = folder.evaluations()
    protocols = sorted({e["protocol"] for e in evaluations})
    trial_columns = {**records.trial_columns(archs), **records.protocol_columns(protocols)}
    accuracies = records.accuracy_columns(archs)
    iteration_rows, trial_rows, evaluation_rows = [], [], []
    for trial in trials:
        config = configs[trial.trial_id].to_dict()
        reports = analysis.trial_dataframes.get(trial.trial_id)
        reported = [] if reports is None or reports.empty else (
            # a trial restarted from a checkpoint reports some iterations twice: keep the last
            reports.drop_duplicates("iteration", keep="last").sort_values("iteration")
            .to_dict("records"))
        last = reported[-1] if reported else {}
        # cumulative seconds as last reported: a diverged trial's final report has only its
        # wall time (from older runs not even that), yet its steps cost what they cost
        spent = {k: r[k] for r in reported for k in records.TIMES[1:]
                 if r.get(k) is not None and r[k] == r[k]}
        # as the trial resolved them (auto device and precision)
        config.update({k: last[k] for k in ("device", "precision") if k in last})
        base = {"study": study.name, "trial_id": trial.trial_id, **config}
        for r in reported:
            evaluated = bool(r.get("evaluated"))
            iteration_rows.append({**base, **{k: nan_to_none(r.get(k)) for k in iteration_columns},
                                   **{k: nan_to_none(r.get(k)) if evaluated else None
                                      for k in accuracies}})
        synthetic, grids = trial_files(fs, trial.path)
        mine = [e for e in evaluations if e["trial_id"] == trial.trial_id]
        evaluation_rows += [{**base, **{k: e[k] for k in records.EVALUATION_COLUMNS}}
                            for e in mine]
        confirmed = protocol_accuracies(mine, configs[trial.trial_id])
        trial_rows.append({
            **base, **{k: nan_to_none(last.get(k)) for k in trial_columns}, **spent,
            **confirmed,
            "status": trial_status(trial, last, study), "error": error_message(trial) or None,
            "failures": trial.num_failures, "iterations_done": int(last.get("iteration", 0)),
            "trial_dir": posixpath.relpath(trial.path, out),
            "synthetic_path": copy_into(fs, synthetic, out,
                                        f"synthetic/{trial.trial_id}.pt"),
            "grid_paths": [copy_into(fs, g, out,
                                     f"grids/{trial.trial_id}/{posixpath.basename(g)}")
                           for g in grids]})
    head = {**HEAD, **CONFIG_COLUMNS}
    write_parquet(out, ITERATIONS, iteration_rows, arrow_schema({**head, **iteration_columns}))
    write_parquet(out, TRIALS, trial_rows, arrow_schema({**head, **trial_columns}))
    write_parquet(out, EVALUATIONS, evaluation_rows,
                  arrow_schema({**head, **records.EVALUATION_COLUMNS}))
    meta = {**described(study), "resources": info.resources, "machine": info.machine,
            "launched": {"study_file": info.study_file, "overrides": info.overrides}}
    write_atomic(out, STUDY_JSON, json.dumps(meta, indent=2).encode())


def described(study: Study) -> dict:
    """What study.json says of the study itself (a continuation compares its part with it)."""
    return {"name": study.name, "kind": study.kind, "factors": study.factors,
            "fixed": study.fixed, "grid": study.grid if not study.search else None,
            "sampler": study.sampler if study.search else None,
            "objectives": [asdict(o) for o in study.objectives], "space": study.space(),
            "repeats": study.repeats, "confirm": study.confirm and asdict(study.confirm),
            "max_trial_seconds": study.max_trial_seconds,
            "max_core_hours": study.max_core_hours, "continues": study.continues or None}


def is_export(path: str) -> bool:
    """Whether PATH is a results folder (export_study's) rather than a study folder."""
    path = absolute(path)
    fs, root = filesystem(path)
    files = fs.get_file_info([posixpath.join(root, n) for n in (STUDY_JSON, TRIALS)])
    return all(f.type == pyarrow.fs.FileType.File for f in files) \
        and not StudyFolder(path).has_experiment()


def exported_networks(path: str) -> list[dict]:
    """A results folder's evaluations.parquet as store.read_networks's per-network
    records (networks 0..networks-1 of each evaluation, as `raygm evaluate` runs them)."""
    if not is_export(path):
        return []
    rows = pq.read_table(posixpath.join(filesystem(path)[1], EVALUATIONS)).to_pylist()
    return [{"trial_id": r["trial_id"], **{k: r[k] for k in (
        "protocol", "epochs", "augment", "arch", "iteration")}, "network": n, "acc": acc,
        "seconds": r["seconds_per_model"]} for r in rows for n, acc in enumerate(r["accs"])]


def add_evaluations(path: str) -> None:
    """Merge the networks `raygm evaluate` wrote to a results folder's evaluations/ into
    its evaluations.parquet and the protocol columns of trials.parquet, then remove them."""
    fs, root = filesystem(path)
    files = network_files(path)
    evaluations = group_networks(exported_networks(path) + read_networks(path))
    trials = pq.read_table(posixpath.join(root, TRIALS))
    rows = trials.to_pylist()
    configs = {r["trial_id"]: RunConfig.from_row(r) for r in rows}
    columns = records.protocol_columns(sorted({e["protocol"] for e in evaluations}))
    for r in rows:
        mine = [e for e in evaluations if e["trial_id"] == r["trial_id"]]
        r.update({**dict.fromkeys(columns), **protocol_accuracies(mine, configs[r["trial_id"]])})
    by_trial = {r["trial_id"]: r for r in rows}
    head = {**HEAD, **CONFIG_COLUMNS}
    write_parquet(root, EVALUATIONS, [
        {**{k: by_trial[e["trial_id"]][k] for k in head},
         **{k: e[k] for k in records.EVALUATION_COLUMNS}}
        for e in sorted(evaluations, key=lambda e: (e["trial_id"], e["protocol"], e["epochs"],
                                                    e["arch"]))],
        arrow_schema({**head, **records.EVALUATION_COLUMNS}))
    schema = trials.schema
    for name in columns:
        if name not in schema.names:
            schema = schema.append(pa.field(name, pa.float64()))
    write_parquet(root, TRIALS, rows, schema)
    for file in files:  # in the Parquet files now
        fs.delete_file(file)
    if files:
        fs.delete_dir(posixpath.dirname(files[0]))


def read_evaluations(path: str) -> list[dict]:
    """A results folder's evaluations, as StudyFolder.evaluations gives a study folder's."""
    return group_networks(exported_networks(path))


def write_parquet(folder: str, name: str, rows: list[dict], schema: pa.Schema) -> None:
    sink = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), sink)
    write_atomic(folder, name, sink.getvalue().to_pybytes())
