"""A study's results as Parquet, for pandas, polars or DuckDB on any machine.

STUDY/results/ gets iterations.parquet (one row per trial x reported iteration),
trials.parquet (one row per trial) and study.json (what the study varies and optimises);
the columns are listed in the README. Paths in them are relative to the results folder,
so the study folder can be copied elsewhere whole. Each file is written to a temporary
name and renamed, so a crash never leaves a half-written file; exporting again rewrites
the same rows."""
from __future__ import annotations

import json
import math
import posixpath
from dataclasses import fields
from typing import get_type_hints

import pyarrow as pa
import pyarrow.fs
import pyarrow.parquet as pq
from ray import tune

from .config import RunConfig, field_type
from .study import Study
from .trainable import trial_config
from .tuning import absolute, error_message, filesystem, read_study

RESULTS = "results"
LOSSES = ("loss", "loss_first", "loss_higher")
TIMES = ("seconds", "distill_seconds", "wall_seconds")


def arrow_type(hint) -> pa.DataType:
    item, is_tuple = field_type(hint)
    scalar = {str: pa.string(), int: pa.int64(), float: pa.float64()}[item]
    return pa.list_(scalar) if is_tuple else scalar


CONFIG_SCHEMA = [pa.field(f.name, arrow_type(get_type_hints(RunConfig)[f.name]))
                 for f in fields(RunConfig)]


def accuracy_columns(study: Study) -> list[str]:
    archs = {a for p in (study.grid_points or [{}]) for a in
             study.run_config(p, 0).eval_architectures}
    return [f"acc_{s}{suffix}" for suffix in ["", *(f"_{a}" for a in sorted(archs))]
            for s in ("mean", "std")]


def nan_to_none(value):
    return None if isinstance(value, float) and math.isnan(value) else value


def trial_files(fs, trial_path: str) -> tuple[str | None, list[str]]:
    """The latest synthetic.pt and one grid per evaluated iteration (from the latest
    checkpoint holding it: a resumed trial may have written one twice)."""
    found = fs.get_file_info(pyarrow.fs.FileSelector(trial_path, recursive=True,
                                                    allow_not_found=True))
    files = sorted(f.path for f in found if f.type == pyarrow.fs.FileType.File)
    synthetic = [p for p in files if p.endswith("/synthetic.pt")]
    grids = {posixpath.basename(p): p for p in files if posixpath.basename(p).startswith("grid_")}
    return (synthetic[-1] if synthetic else None), [grids[name] for name in sorted(grids)]


def export_study(path: str) -> str:
    """Write PATH/results/{iterations,trials}.parquet and study.json; returns the folder."""
    path = absolute(path)
    study, _ = read_study(path)
    fs, root = filesystem(path)
    out = posixpath.join(root, RESULTS)
    fs.create_dir(out, recursive=True)
    analysis = tune.ExperimentAnalysis(path)
    frames = analysis.trial_dataframes
    classes = sorted({c for df in frames.values() for c in df.columns if c.startswith("loss_class_")},
                     key=lambda c: int(c.rsplit("_", 1)[1]))
    accuracies = accuracy_columns(study)
    iteration_rows, trial_rows = [], []
    for trial in sorted(analysis.trials, key=lambda t: t.trial_id):
        config = trial_config(study, trial.config).to_dict()
        reports = frames.get(trial.trial_id)
        records = [] if reports is None or reports.empty else (
            # a trial restarted from a checkpoint reports some iterations twice: keep the last
            reports.drop_duplicates("iteration", keep="last").sort_values("iteration")
            .to_dict("records"))
        if records:
            config["device"] = records[-1].get("device", config["device"])
        base = {"study": study.name, "trial_id": trial.trial_id, **config}
        for r in records:
            evaluated = bool(r.get("evaluated"))
            row = {**base, "iteration": int(r["iteration"])}
            row.update({k: nan_to_none(r.get(k)) for k in (*LOSSES, *classes, *TIMES)})
            row.update({k: nan_to_none(r.get(k)) if evaluated else None for k in accuracies})
            iteration_rows.append(row)
        last = records[-1] if records else {}
        synthetic, grids = trial_files(fs, trial.path)
        trial_rows.append({
            **base, "status": trial.status, "error": error_message(trial) or None,
            "failures": trial.num_failures, "iterations_done": int(last.get("iteration", 0)),
            **{k: nan_to_none(last.get(k)) for k in accuracies},
            **{k: nan_to_none(last.get(k)) for k in TIMES[1:]},
            "trial_dir": posixpath.relpath(trial.path, out),
            "synthetic_path": posixpath.relpath(synthetic, out) if synthetic else None,
            "grid_paths": [posixpath.relpath(g, out) for g in grids]})
    doubles = [pa.field(k, pa.float64()) for k in (*LOSSES, *classes, *TIMES)]
    head = [pa.field("study", pa.string()), pa.field("trial_id", pa.string()), *CONFIG_SCHEMA]
    accuracy_fields = [pa.field(k, pa.float64()) for k in accuracies]
    write_parquet(fs, out, "iterations.parquet", iteration_rows, pa.schema(
        [*head, pa.field("iteration", pa.int64()), *doubles, *accuracy_fields]))
    write_parquet(fs, out, "trials.parquet", trial_rows, pa.schema(
        [*head, pa.field("status", pa.string()), pa.field("error", pa.string()),
         pa.field("failures", pa.int64()), pa.field("iterations_done", pa.int64()),
         *accuracy_fields,
         pa.field("distill_seconds", pa.float64()), pa.field("wall_seconds", pa.float64()),
         pa.field("trial_dir", pa.string()), pa.field("synthetic_path", pa.string()),
         pa.field("grid_paths", pa.list_(pa.string()))]))
    meta = {"name": study.name, "kind": study.kind, "factors": study.factors,
            "objectives": study.objectives, "space": study.space(), "repeats": study.repeats}
    write_atomic(fs, out, "study.json", json.dumps(meta, indent=2).encode())
    return out


def write_parquet(fs, folder: str, name: str, rows: list[dict], schema: pa.Schema) -> None:
    table = pa.Table.from_pylist(rows, schema=schema)
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    write_atomic(fs, folder, name, sink.getvalue().to_pybytes())


def write_atomic(fs, folder: str, name: str, data: bytes) -> None:
    tmp = posixpath.join(folder, f".{name}.tmp")
    with fs.open_output_stream(tmp) as f:
        f.write(data)
    fs.move(tmp, posixpath.join(folder, name))
