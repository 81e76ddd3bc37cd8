"""Parquet export of a tiny real study (one trial finishes, one fails)."""
import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import ray
import torch

from raygm.core import files
from raygm.studies import launch
from raygm.core.config import RunConfig
from raygm.studies.export import export_study
from raygm.studies.store import LaunchInfo, StudyFolder

from conftest import write_tiny_mnist
from study_checks import Reports, assert_reports_exported

FIXED = {"dataset": "MNIST", "model": "ConvNet", "net_width": 8, "net_depth": 2,
         "iterations": 4, "batch_real": 4, "batch_train": 8, "eval_at": [0, 2, 4],
         "eval_models": 1, "eval_epochs": 3, "execution": "eager",
         "eval_archs": ["ConvNet", "MLP"]}


@pytest.fixture(scope="module")
def launched(tmp_path_factory):
    """Exported folder of a study whose cpu trial finishes and whose cuda trial fails
    (no GPU here), so both statuses and an error message are exported. `raygm study launch`
    refuses a cuda trial on a cluster without GPUs, so the tuner is started directly."""
    root = tmp_path_factory.mktemp("export")
    raw = {"name": "exp", "fixed": FIXED, "grid": {"device": ["cpu", "cuda"]},
           "resources": {"cpu": 1}, "max_failures": 0}
    folder = StudyFolder(root / "out" / "exp")
    info = LaunchInfo(storage=str(root / "out"), data_dir=str(write_tiny_mnist(root / "data")),
                      resources={"cpu": 1, "gpu": 0})
    with folder.claim():
        folder.write_study(raw)
        folder.write_launch(info)
    reports = Reports()
    ray.init(num_cpus=2, include_dashboard=False)
    try:
        results = launch.new_tuner(folder.study(), folder, info, [reports]).fit()
    finally:
        ray.shutdown()
    return results.experiment_path, reports.results


@pytest.fixture(scope="module")
def study(launched):
    return launched[0]


def test_every_reported_metric_of_a_grid_study_is_exported(launched):
    assert_reports_exported(*launched)


def test_parquet_files_hold_the_documented_columns_and_types(study):
    out = Path(export_study(study))
    assert sorted(p.name for p in out.iterdir()) == ["evaluations.parquet", "grids",
                                                      "iterations.parquet", "study.json",
                                                      "synthetic", "trials.parquet"]
    iterations = pq.read_table(out / "iterations.parquet")
    trials = pq.read_table(out / "trials.parquet")
    schema = iterations.schema
    config_fields = [f.name for f in RunConfig.__dataclass_fields__.values()]
    assert schema.names[:2] == ["study", "trial_id"] and schema.names[2:2 + len(config_fields)] \
        == config_fields
    for name, kind in [("iteration", pa.int64()), ("loss", pa.float64()),
                       ("loss_class_9", pa.float64()), ("acc_mean_MLP", pa.float64()),
                       ("distill_seconds", pa.float64()), ("eval_at", pa.list_(pa.int64())),
                       ("eval_archs", pa.list_(pa.string())), ("ipc", pa.int64()),
                       ("hessian_weight", pa.float64()), ("outer_loop", pa.int64())]:
        assert schema.field(name).type == kind, name
    for name, kind in [("status", pa.string()), ("error", pa.string()),
                       ("grid_paths", pa.list_(pa.string())), ("acc_std_ConvNet", pa.float64())]:
        assert trials.schema.field(name).type == kind, name

    rows = pd.read_parquet(out / "iterations.parquet")
    done = rows[rows.device == "cpu"].set_index("iteration")
    assert list(done.index) == [0, 1, 2, 3, 4]
    # accuracy only where evaluated, losses only after a step
    assert done["acc_mean"].notna().tolist() == [True, False, True, False, True]
    assert done["acc_mean"].equals(done["acc_mean_ConvNet"])
    assert done["loss"].isna().tolist() == [True, False, False, False, False]
    assert (done["distill_seconds"].diff().dropna() > 0).all()
    assert done["loss"].iloc[1:].round(9).tolist() == \
        (done["loss_first"] + done["loss_higher"]).iloc[1:].round(9).tolist()

    table = pd.read_parquet(out / "trials.parquet").set_index("device")
    ok, failed = table.loc["cpu"], table.loc["cuda"]
    assert ok.status == "TERMINATED" and pd.isna(ok.error) and ok.iterations_done == 4
    assert ok.acc_mean == done["acc_mean"].loc[4] and ok.acc_mean_MLP == done["acc_mean_MLP"].loc[4]
    # the exception that stopped it (no GPU here: "RuntimeError: Found no NVIDIA driver ...")
    assert failed.status == "ERROR" and "Error" in failed.error
    assert [Path(p).name for p in ok.grid_paths] == ["grid_iter00000.png", "grid_iter00002.png",
                                                     "grid_iter00004.png"]
    assert all((out / p).stat().st_size > 0 for p in ok.grid_paths)
    synthetic = torch.load(out / ok.synthetic_path)
    assert synthetic["iteration"] == 4 and synthetic["images"].shape == (10, 1, 28, 28)
    meta = json.loads((out / "study.json").read_text())
    assert meta["kind"] == "grid" and meta["factors"] == ["device"]
    assert meta["fixed"]["iterations"] == 4 and "device" not in meta["fixed"]
    assert meta["max_trial_seconds"] == 0  # no cap: the budget line says so


def contents(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*")
            if p.is_file() and not p.name.startswith(".")}


def test_a_results_folder_exported_elsewhere_travels_alone(study, tmp_path):
    """`raygm export --to`: the tables and copies of the sets and grids, nothing that points
    back into the study folder."""
    out = Path(export_study(study, str(tmp_path / "results" / "exp")))
    moved = tmp_path / "moved"
    out.rename(moved)
    ok = pd.read_parquet(moved / "trials.parquet").set_index("device").loc["cpu"]
    assert ok.synthetic_path == f"synthetic/{ok.trial_id}.pt"
    assert torch.load(moved / ok.synthetic_path)["iteration"] == 4
    assert all((moved / p).stat().st_size > 0 for p in ok.grid_paths)
    # the same files as the study's own export; only trial_dir (where the trial's folder
    # was, relative to the results folder) differs
    here, there = contents(moved), contents(Path(export_study(study)))
    assert here.keys() == there.keys()
    assert all(here[name] == there[name] for name in here if name != "trials.parquet")
    mine = pd.read_parquet(moved / "trials.parquet").drop(columns="trial_dir")
    assert mine.equals(pd.read_parquet(Path(study) / "results" / "trials.parquet")
                       .drop(columns="trial_dir"))


def test_export_is_idempotent_and_atomic(study, monkeypatch):
    out = Path(export_study(study))
    before = contents(out)
    assert contents(Path(export_study(study))) == before

    real_filesystem = files.filesystem

    class HalfWrite:
        """A file system whose writes stop half-way, as when the process dies mid-write."""

        def __init__(self, fs):
            self.fs = fs

        def __getattr__(self, name):
            return getattr(self.fs, name)

        def open_output_stream(self, path):
            fs = self.fs

            class Stream:
                def __enter__(self):
                    self.f = fs.open_output_stream(path)
                    return self

                def write(self, data):
                    self.f.write(data[:len(data) // 2])
                    raise KeyboardInterrupt

                def __exit__(self, *exc):
                    self.f.close()

            return Stream()

    monkeypatch.setattr(files, "filesystem",
                        lambda path: (HalfWrite(real_filesystem(path)[0]), real_filesystem(path)[1]))
    with pytest.raises(KeyboardInterrupt):
        export_study(study)
    # the half-written data is only ever under a temporary name
    assert contents(out) == before
    monkeypatch.undo()
    export_study(study)
    assert contents(out) == before


def test_analysis_report_reads_a_real_export(study, tmp_path):
    """The analysis scripts (tested on hand-made fixtures in test_analysis.py) accept what
    the exporter really writes."""
    import subprocess
    import sys

    out = export_study(study)
    script = Path(__file__).parents[1] / "analysis" / "report.py"
    done = subprocess.run([sys.executable, str(script), out, "--out", str(tmp_path)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "report.md").read_text().count("TERMINATED") >= 1
    assert all(p.stat().st_size > 0 for p in tmp_path.glob("*.png"))
    assert {p.name for p in tmp_path.glob("*.png")} >= {"curves_device.png", "montage_device.png"}


def test_export_to_a_folder_it_may_not_replace_is_refused(study, tmp_path):
    """--to writes only into a new or empty folder or an export of the same study."""
    other = tmp_path / "other"
    other.mkdir()
    (other / "study.json").write_text(json.dumps({"name": "someone_else"}))
    pq.write_table(pa.table({"trial_id": ["x"]}), other / "trials.parquet")
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "thesis.tex").write_text("mine")
    (tmp_path / "file").write_text("mine")
    for target, says in ((other, "the export of study someone_else"),
                         (notes, "files that are not an export"), (tmp_path / "file", "a file")):
        before = contents(target) if target.is_dir() else target.read_bytes()
        with pytest.raises(FileExistsError, match=says):
            export_study(study, str(target))
        assert (contents(target) if target.is_dir() else target.read_bytes()) == before


def test_export_replaces_an_earlier_export_of_the_study_whole(study, tmp_path):
    out = Path(export_study(study, str(tmp_path / "exp")))
    (out / "synthetic" / "stale_trial.pt").write_bytes(b"from an earlier export")
    assert Path(export_study(study, str(out))) == out
    assert not (out / "synthetic" / "stale_trial.pt").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["exp"]  # nothing left beside it


def test_an_export_of_an_ended_study_is_no_snapshot(study, capsys):
    # (the rule for a study under way: test_status.py)
    export_study(study)  # the fixture's study has ended (one trial finished, one failed)
    assert "snapshot" not in capsys.readouterr().err
