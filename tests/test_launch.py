"""Studies end to end on real (small) Ray clusters started by the tests."""
import json
import logging
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
import pandas as pd
import pytest
import ray
import torch
import yaml
from ray import tune
from ray.cluster_utils import Cluster

from raygm.cli import main
from raygm.studies import launch, status
from raygm.studies.store import LaunchError, LaunchInfo, StudyFolder
from raygm.core import records
from raygm.core.config import ConfigError, RunConfig
from raygm.core.data import load_dataset
from raygm.core.distill import Distillation
from raygm.studies.study_file import load_study, parse_study

from conftest import write_tiny_mnist
from study_checks import Reports, assert_reports_exported

# A study small enough for a test: a width-8 ConvNet on the tiny 10-class MNIST.
TINY = {"dataset": "MNIST", "model": "ConvNet", "net_width": 8, "net_depth": 2,
        "iterations": 3, "batch_real": 4, "batch_train": 8, "eval_at": [0, 3],
        "eval_models": 1, "eval_epochs": 3, "execution": "eager"}
# For a search over the model: ConvNet's width and depth stay at their defaults, which an MLP
# trial must leave them at.
ANY_MODEL = {k: v for k, v in TINY.items() if k not in ("model", "net_width", "net_depth")}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return str(write_tiny_mnist(tmp_path_factory.mktemp("data")))


def write_study(folder: Path, **keys) -> str:
    raw = {"name": "tiny", "fixed": dict(TINY), "resources": {"cpu": 0.5, "gpu": 0.25}}
    raw.update(keys)
    path = folder / f"{raw['name']}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return str(path)


class Concurrency(tune.Callback):
    """The most trials started and not yet finished at once, and every result."""

    def __init__(self):
        self.running, self.most, self.results = 0, 0, []

    def on_trial_start(self, iteration, trials, trial, **info):
        self.running += 1
        self.most = max(self.most, self.running)

    def on_trial_complete(self, iteration, trials, trial, **info):
        self.running -= 1

    def on_trial_result(self, iteration, trials, trial, result, **info):
        self.results.append(result)


@pytest.fixture(scope="module")
def local_ray():
    """2 CPUs and one declared GPU: 0.25-GPU trials are placed four at a time and fall
    back to the CPU, because this machine has no GPU."""
    ray.init(num_cpus=2, num_gpus=1, include_dashboard=False)
    yield
    ray.shutdown()


def test_a_config_error_raised_in_a_ray_worker_reaches_the_driver_intact(local_ray):
    @ray.remote
    def bad_config():
        return RunConfig(ipc=0)

    with pytest.raises(ConfigError) as info:
        ray.get(bad_config.remote())
    assert "'ipc' = 0 is invalid; allowed: an integer >= 1" in str(info.value)
    assert info.value.field == "ipc"


def test_grid_study_runs_fractional_gpu_trials_four_at_a_time(local_ray, tmp_path, data_dir):
    watch = Concurrency()
    # long enough (a few seconds) that the first trial is still running when the fourth starts
    fixed = {**TINY, "iterations": 30, "eval_at": [0, 30]}
    results = launch.launch(write_study(tmp_path, fixed=fixed, grid={"init": ["noise", "real"]},
                                        repeats=2),
                            storage=str(tmp_path / "out"), data_dir=data_dir, callbacks=[watch])
    assert not results.errors and len(results) == 4
    assert watch.most == 4
    finals = [r.metrics for r in results]
    assert {m["seed"] for m in finals} == {0, 1}
    assert all(m["iteration"] == 30 and 0 <= m["acc_mean"] <= 1 and m["device"] == "cpu"
               for m in finals)
    evaluated = [r for r in watch.results if r["evaluated"]]
    assert sorted({r["iteration"] for r in evaluated}) == [0, 30]
    assert all(f"loss_class_{k}" in r for r in watch.results if r["iteration"] > 0 for k in range(10))
    assert all(set(records.CONTEXT) <= set(r) for r in watch.results)  # where each trial ran
    path = os.path.relpath(results.experiment_path)  # as typed on the command line
    table = status.trial_table(path)
    assert [row["status"] for row in table] == ["TERMINATED"] * 4
    assert sorted(row["init"] for row in table) == ["noise", "noise", "real", "real"]
    # a trial's result files lagging behind Tune's snapshot (read as it ends): the table
    # still has its final iteration and accuracy
    for name in ("progress.csv", "result.json"):
        log = Path(results[0].path) / name
        log.write_text("".join(log.read_text().splitlines(keepends=True)[:-1]))
    row = next(r for r in status.trial_table(path) if r["trial"] == results[0].metrics["trial_id"])
    assert row["iteration"] == 30 and row["acc_mean"] == results[0].metrics["acc_mean"]
    # the final checkpoint holds the synthetic set, its grid and the full run state
    files = {p.name for p in Path(results[0].checkpoint.path).iterdir()}
    assert {"state.pt", "synthetic.pt", "grid_iter00030.png"} <= files
    with pytest.raises(FileExistsError, match="raygm study resume"):
        launch.launch(write_study(tmp_path, grid={"init": ["noise"]}),
                      storage=str(tmp_path / "out"), data_dir=data_dir)


def test_search_keeps_the_optuna_study_and_averages_repeats(local_ray, tmp_path, data_dir,
                                                            capsys):
    path = write_study(tmp_path, name="search",
                       search={"lr_img": {"loguniform": [0.01, 1.0]},
                               "init": {"choice": ["noise", "real"]}},
                       trials=2, repeats=2, sampler_seed=3, sampler="random")
    results = launch.launch(path, storage=str(tmp_path / "out"), data_dir=data_dir)
    assert not results.errors and len(results) == 4
    storage = f"sqlite:///{tmp_path / 'out' / 'search' / 'optuna.db'}"
    study = optuna.load_study(study_name="search", storage=storage)
    assert study.metric_names == ["acc_mean"]  # optuna-dashboard shows the metric's name
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == 2
    by_params = {}
    for r in results:
        key = (r.config["lr_img"], r.config["init"])
        by_params.setdefault(key, []).append(r.metrics["acc_mean"])
    for t in complete:  # Optuna sees the mean over the two seeds of each configuration
        accs = by_params[(t.params["lr_img"], t.params["init"])]
        assert len(accs) == 2 and t.value == pytest.approx(sum(accs) / 2)
    capsys.readouterr()
    main(["study", "status", results.experiment_path])  # one objective: its best trial
    shown = capsys.readouterr().out
    assert "Optuna's best trial:" in shown and "Pareto" not in shown


def test_search_over_model_with_a_conditional_weight(local_ray, tmp_path, data_dir):
    """Each trial's own architecture gets its accuracy columns in the export, and λ is an
    Optuna parameter exactly of the trials whose higher-order term is on."""
    reports = Reports()
    path = write_study(tmp_path, name="models", fixed=ANY_MODEL, search={
        "model": {"choice": ["MLP", "ConvNet"]},
        "hessian": {"choice": ["none", "curvature"]},
        "hessian_weight": {"loguniform": [1.0e-4, 1.0e-2], "when": {"hessian": ["curvature"]}}},
        trials=6, sampler_seed=1, sampler={"name": "tpe", "multivariate": True, "group": True})
    results = launch.launch(path, storage=str(tmp_path / "out"), data_dir=data_dir,
                            callbacks=[reports])
    assert not results.errors and len(results) == 6
    assert_reports_exported(results.experiment_path, reports.results)
    trials = pd.read_parquet(Path(results.experiment_path) / "results" / "trials.parquet")
    assert set(trials.model) == {"MLP", "ConvNet"}
    for model in ("MLP", "ConvNet"):
        other = ({"MLP", "ConvNet"} - {model}).pop()
        rows = trials[trials.model == model]
        assert rows[f"acc_mean_{model}"].notna().all() and rows[f"acc_mean_{other}"].isna().all()
        assert (rows[f"acc_mean_{model}"] == rows["acc_mean"]).all()
    storage = f"sqlite:///{tmp_path / 'out' / 'models' / 'optuna.db'}"
    sampled = optuna.load_study(study_name="models", storage=storage).trials
    assert {t.params["hessian"] for t in sampled} == {"none", "curvature"}
    for t in sampled:
        assert ("hessian_weight" in t.params) == (t.params["hessian"] == "curvature")
    off = trials[trials.hessian == "none"]
    assert (off.hessian_weight == 0).all()  # the config default: the term is off


@pytest.mark.parametrize("sampler, kind, options", [
    (None, optuna.samplers.TPESampler, {}), ("random", optuna.samplers.RandomSampler, {}),
    ({"name": "tpe", "multivariate": True, "group": True}, optuna.samplers.TPESampler,
     {"_multivariate": True, "_group": True})])
def test_a_search_samples_with_the_sampler_its_file_names(sampler, kind, options, tmp_path):
    raw = {"name": "s", "fixed": {"iterations": 2, "eval_at": [2]}, "trials": 2,
           "search": {"lr_img": {"loguniform": [0.01, 1.0]}}, "sampler_seed": 5}
    if sampler:
        raw["sampler"] = sampler
    searcher = launch.search_algorithm(parse_study(raw, "s.yaml"),
                                       f"sqlite:///{tmp_path / 'optuna.db'}", "s.yaml")
    assert type(searcher._sampler) is kind
    for name, value in options.items():
        assert getattr(searcher._sampler, name) == value


def test_a_configuration_and_seed_already_run_is_not_run_again(local_ray, tmp_path, data_dir):
    """A 4-trial search over two models proposes a model and seed it has run: it is answered
    from the earlier trial's final report, marked duplicate_of, and counted once."""
    reports = Reports()
    path = write_study(tmp_path, name="dedupe", fixed=ANY_MODEL, trials=4, max_concurrent=1,
                       search={"model": {"choice": ["MLP", "ConvNet"]}}, sampler_seed=0)
    results = launch.launch(path, storage=str(tmp_path / "out"), data_dir=data_dir,
                            callbacks=[reports])
    assert not results.errors and len(results) == 4
    assert_reports_exported(results.experiment_path, reports.results)
    trials = pd.read_parquet(Path(results.experiment_path) / "results" / "trials.parquet")
    ran = trials[trials.duplicate_of.isna()]
    assert sorted(ran.model) == sorted(set(trials.model))  # each configuration ran once
    for row in trials[trials.duplicate_of.notna()].itertuples():
        original = trials.set_index("trial_id").loc[row.duplicate_of]
        assert (row.model, row.acc_mean) == (original.model, original.acc_mean)
        assert pd.isna(row.synthetic_path)  # nothing was computed


def test_two_objective_search_yields_a_pareto_front(local_ray, tmp_path, data_dir):
    reports = Reports()
    fixed = {k: v for k, v in TINY.items() if k != "batch_real"}
    path = write_study(tmp_path, name="pareto", fixed=fixed,
                       search={"batch_real": {"choice": [2, 8]}},
                       trials=3, objectives=[{"metric": "acc_mean", "mode": "max"},
                                             {"metric": "distill_seconds", "mode": "min"}])
    results = launch.launch(path, storage=str(tmp_path / "out"), data_dir=data_dir,
                            callbacks=[reports])
    assert not results.errors
    assert_reports_exported(results.experiment_path, reports.results)
    front = status.pareto_front(results.experiment_path)
    points = [(r.metrics["acc_mean"], r.metrics["distill_seconds"]) for r in results]
    assert front and all(len(t["values"]) == 2 for t in front)
    for t in front:  # nothing measured dominates a front member
        acc, seconds = t["values"]
        assert not any(a >= acc and s <= seconds and (a, s) != (acc, seconds) for a, s in points)


def test_asha_study_runs_with_accuracy_reported_every_iteration(local_ray, tmp_path, data_dir):
    fixed = {**TINY, "iterations": 4, "eval_at": [1, 2, 3, 4]}
    path = write_study(tmp_path, name="asha", fixed=fixed, grid={"init": ["noise", "real"]},
                       repeats=2, scheduler={"name": "asha", "grace_period": 1,
                                             "reduction_factor": 2})
    scheduler = launch.scheduler(load_study(path))
    assert (scheduler._time_attr, scheduler.metric, scheduler._max_t) == ("iteration", "acc_mean", 4)
    results = launch.launch(path, storage=str(tmp_path / "out"), data_dir=data_dir)
    assert not results.errors and len(results) == 4
    assert all(1 <= r.metrics["iteration"] <= 4 for r in results)


def test_asha_horizon_is_the_longest_trial(tmp_path):
    fixed = {k: v for k, v in TINY.items() if k not in ("iterations", "eval_at")}
    path = write_study(tmp_path, name="asha", fixed=fixed, grid={"iterations": [2, 6]},
                       scheduler="asha")
    assert launch.scheduler(load_study(path))._max_t == 6


class KillWorker(tune.Callback):
    """SIGKILLs the trial's worker process once, when it reports `at`."""

    def __init__(self, at):
        self.at, self.killed, self.iterations = at, False, []

    def on_trial_result(self, iteration, trials, trial, result, **info):
        self.iterations.append(result["iteration"])
        if not self.killed and result["iteration"] == self.at:
            self.killed = True
            os.kill(result["pid"], signal.SIGKILL)


def test_trial_whose_worker_dies_resumes_to_the_uninterrupted_result(local_ray, tmp_path,
                                                                        data_dir):
    fixed = {**TINY, "iterations": 6, "eval_at": [6]}
    kill = KillWorker(at=3)
    results = launch.launch(write_study(tmp_path, fixed=fixed, grid={"init": ["noise"]},
                                        checkpoint_every=1, max_failures=1,
                                        resources={"cpu": 1}),
                            storage=str(tmp_path / "out"), data_dir=data_dir, callbacks=[kill])
    assert kill.killed and not results.errors
    [row] = status.trial_table(results.experiment_path)
    assert row["status"] == "TERMINATED" and row["failures"] == 1 and row["error"] == ""
    # after the kill the trial went on from its checkpoint, not from the start
    restart = kill.iterations.index(3) + 1
    assert kill.iterations[restart:] and kill.iterations[restart] > 1
    assert kill.iterations[-1] == 6
    resumed = torch.load(Path(results[0].checkpoint.path) / "synthetic.pt")["images"]

    study = load_study(write_study(tmp_path, fixed=fixed, grid={"init": ["noise"]}))
    config = study.run_config({"init": "noise"}, 0).replace(device="cpu")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in the trial (1 CPU)
    try:
        run = Distillation(config, load_dataset("MNIST", data_dir, download=False))
        for _ in range(6):
            run.step()
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(resumed, run.images.detach())


def test_a_search_starts_no_trial_once_its_trials_have_run_max_core_hours(local_ray, tmp_path,
                                                                         data_dir, capsys):
    """A budget of 12 core-seconds, trials of about 6 s one at a time (1 CPU each): the
    search asks for trials while the ended ones have run less, then none; the study is
    complete (no snapshot, nothing to resume) with fewer trials than `trials`."""
    fixed = {**TINY, "iterations": 40, "eval_at": [40]}
    path = write_study(tmp_path, name="budget", fixed=fixed, trials=30, sampler="random",
                       search={"lr_img": {"loguniform": [0.01, 1.0]}}, resources={"cpu": 1},
                       max_concurrent=1, max_core_hours=12 / 3600)
    results = launch.launch(path, storage=str(tmp_path / "out"), data_dir=data_dir)
    assert not results.errors
    seconds = [r.metrics["time_total_s"] for r in sorted(
        results, key=lambda r: r.metrics["timestamp"])]
    assert 1 <= len(seconds) < 30
    assert sum(seconds[:-1]) < 12 <= sum(seconds)  # each started under budget; then none
    assert "the trials have run max_core_hours (0.00333333): no new trials" in \
        capsys.readouterr().out
    assert status.stopped(results.experiment_path) is None


def test_a_grid_in_parts_resumes_with_the_runs_it_had_left_and_the_hours_run(tmp_path):
    """launch.Grid's state, as Ray Tune saves it into the study folder and restores it on
    `raygm study resume`: the runs not yet started, and the seconds run against the budget."""
    study = parse_study({"name": "g", "fixed": {"iterations": 2, "eval_at": [2]},
                         "grid": {"init": ["noise", "real"]}, "repeats": 2,
                         "max_core_hours": 1.0}, "g.yaml")
    grid = launch.search_algorithm(study, "", "g.yaml")
    assert grid.suggest("a") == {"point": {"init": "noise"}, "repeat": 0}
    grid.on_trial_result("a", {"time_total_s": 3000.0})
    grid.save(str(tmp_path / "grid.pkl"))
    resumed = launch.Grid(study, [])
    resumed.restore(str(tmp_path / "grid.pkl"))
    assert [resumed.suggest(t) for t in "bc"] == [{"point": {"init": "noise"}, "repeat": 1},
                                                  {"point": {"init": "real"}, "repeat": 0}]
    resumed.on_trial_complete("b", {"time_total_s": 700.0})  # 3700 s: the hour is run
    assert resumed.suggest("d") == launch.Searcher.FINISHED


def test_a_diverging_trial_is_a_result_not_a_number(local_ray, tmp_path, data_dir, capsys):
    """A search whose trial diverges (lr_img 1e30) and one that outlasts max_trial_seconds
    (20000 iterations, stopped by Ray Tune at 15 s): they end DIVERGED and OVER_TIME in the
    status table and trials.parquet (the diverged one with no accuracy, the slow one with its
    iteration-0 evaluation's, which is not its result), and Optuna records both as pruned
    (TPE counts their settings among the worst); the other trial is untouched."""
    reports = Reports()
    fixed = {k: v for k, v in TINY.items() if k not in ("iterations", "eval_at")}
    # seed 33: Optuna's RandomSampler proposes these three of the four combinations first
    path = write_study(tmp_path, name="diverge", fixed=fixed, trials=3, sampler="random",
                       search={"iterations": {"choice": [4, 20000]},
                               "lr_img": {"choice": [0.1, 1.0e30]}},
                       max_concurrent=1, sampler_seed=33, max_trial_seconds=15)
    results = launch.launch(path, storage=str(tmp_path / "out"), data_dir=data_dir,
                            callbacks=[reports])
    assert not results.errors
    assert_reports_exported(results.experiment_path, reports.results)
    table = {(row["lr_img"], row["iterations"]): row
             for row in status.trial_table(results.experiment_path)}
    assert {k: row["status"] for k, row in table.items()} == {
        (0.1, 4): "TERMINATED", (1.0e30, 4): "DIVERGED", (0.1, 20000): "OVER_TIME"}
    assert 1 < table[0.1, 20000]["iteration"] < 20000
    trials = pd.read_parquet(Path(results.experiment_path) / "results" / "trials.parquet")
    trials = trials.set_index(["lr_img", "iterations"])
    diverged, slow = trials.loc[(1.0e30, 4)], trials.loc[(0.1, 20000)]
    assert diverged.status == "DIVERGED" and pd.isna(diverged.acc_mean)
    assert "diverged at iteration" in diverged.diverged and "lr_img=1e+30" in diverged.diverged
    assert slow.status == "OVER_TIME" and 1 < slow.iterations_done < 20000
    # the diverged trial's steps cost what they cost (the best-so-far figure's x axis)
    steps = pd.read_parquet(Path(results.experiment_path) / "results" / "iterations.parquet")
    steps = steps[(steps.trial_id == diverged.trial_id) & (steps.iteration < 2)]
    assert diverged.wall_seconds > steps.wall_seconds.max() > 0
    assert diverged.distill_seconds == steps.distill_seconds.max() > 0
    storage = f"sqlite:///{tmp_path / 'out' / 'diverge' / 'optuna.db'}"
    states = {(t.params["lr_img"], t.params["iterations"]): t.state
              for t in optuna.load_study(study_name="diverge", storage=storage).trials}
    pruned = optuna.trial.TrialState.PRUNED
    assert states == {(1.0e30, 4): pruned, (0.1, 20000): pruned,
                      (0.1, 4): optuna.trial.TrialState.COMPLETE}
    # optuna-dashboard's link back to Ray: each Optuna trial names its Ray trial and outcome
    attrs = {(t.params["lr_img"], t.params["iterations"]): t.user_attrs
             for t in optuna.load_study(study_name="diverge", storage=storage).trials}
    assert {k: (a["ray_trial_id"], a["status"], a["seed"]) for k, a in attrs.items()} == {
        k: (row["trial"], row["status"], 0) for k, row in table.items()}
    # the launch's own lines say how each trial ended
    out = capsys.readouterr().out
    for k, row in table.items():
        assert f"{row['trial']}  finished  at iteration" in out
    assert f"{table[1.0e30, 4]['trial']}  finished  at iteration 2/4: DIVERGED" in out
    assert f"{table[0.1, 20000]['trial']}  finished  at iteration" in out and \
        "OVER_TIME: stopped at max_trial_seconds 15 s" in out
    assert "evaluated iteration 4/4: accuracy" in out
    # live curves: Ray Tune's TensorBoard event file in each trial's folder (tensorboard
    # --logdir STUDY), with raygm's metrics as tags
    ok = trials.loc[(0.1, 4)]
    trial_dir = Path(results.experiment_path) / "results" / ok.trial_dir  # as exported
    files = list(trial_dir.glob("events.out.tfevents*"))
    assert len(files) == 1
    scalars = event_scalars(files[0])
    assert len(scalars["ray/tune/loss"]) == 4 and len(scalars["ray/tune/iteration"]) == 5
    assert scalars["ray/tune/acc_mean"][-1] == pytest.approx(ok.acc_mean)


def test_a_search_with_an_optuna_storage_that_is_no_url_leaves_nothing(local_ray, tmp_path,
                                                                        data_dir):
    path = write_study(tmp_path, name="nourl", trials=1,
                       search={"lr_img": {"loguniform": [0.01, 1.0]}})
    with pytest.raises(LaunchError, match="--optuna-storage not a url.*allowed: a database URL"):
        launch.launch(path, storage=str(tmp_path / "out"), data_dir=data_dir,
                      optuna_storage="not a url")
    assert not (tmp_path / "out" / "nourl").exists()


def test_a_study_stopped_before_its_first_snapshot_resumes(local_ray, tmp_path, data_dir):
    """Killed after raygm took the folder but before Ray Tune wrote anything: resume starts
    it as launched."""
    path = write_study(tmp_path, name="early", grid={"init": ["noise"]})
    study = load_study(path)
    folder = StudyFolder(tmp_path / "out" / "early")
    with folder.claim():
        folder.write_study(yaml.safe_load(Path(path).read_text()))
        folder.write_launch(LaunchInfo(storage=str(tmp_path / "out"), data_dir=data_dir,
                                       resources=dict(study.resources)))
    assert not folder.has_experiment()
    results = launch.resume(folder.path)
    assert not results.errors and len(results) == 1
    assert [r["status"] for r in status.trial_table(folder.path)] == ["TERMINATED"]


@pytest.mark.parametrize("changes, says", [
    ({"resources": {"cpu": 3}}, "resources.cpu = 3 is more than any node"),
    ({"fixed": {**TINY, "device": "cuda"}, "resources": {"cpu": 1}},
     "device is cuda but the cluster has no GPU")])
def test_trials_the_cluster_could_never_run_are_refused_before_they_wait(changes, says,
                                                                         tmp_path, data_dir):
    """On a 2-CPU cluster without GPUs: a 3-CPU trial or a cuda one would wait forever (or fail
    in its worker): refused, and nothing is written."""
    ray.shutdown()
    ray.init(num_cpus=2, num_gpus=0, include_dashboard=False)
    try:
        with pytest.raises(LaunchError, match=says):
            launch.launch(write_study(tmp_path, grid={"init": ["noise"]}, **changes),
                          storage=str(tmp_path / "out"), data_dir=data_dir)
    finally:
        ray.shutdown()
    assert not (tmp_path / "out").exists()


@pytest.fixture
def no_local_ray():
    """The tests below start their own Ray (a multi-node cluster, a driver process)."""
    ray.shutdown()


def test_study_on_a_multi_node_cluster(no_local_ray, tmp_path, data_dir):
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    cluster.add_node(num_cpus=1)
    try:
        ray.init(address=cluster.address)
        path = write_study(tmp_path, grid={"init": ["noise", "real"]}, resources={"cpu": 1})
        # a folder on one node cannot hold the checkpoints of a multi-node cluster...
        with pytest.raises(LaunchError, match="cluster has 2 nodes.*s3://"):
            launch.launch(path, storage=str(tmp_path / "out"), address=cluster.address,
                          data_dir=data_dir)
        assert not (tmp_path / "out").exists()  # refused before anything was written
        # ...unless every node sees it (here: one machine)
        results = launch.launch(path, storage=str(tmp_path / "out"), address=cluster.address,
                                data_dir=data_dir, shared_storage=True)
        assert not results.errors and len(results) == 2
        # one CPU per node and one CPU per trial: the two trials ran on different nodes
        assert len({r.metrics["node_id"] for r in results}) == 2
    finally:
        ray.shutdown()
        cluster.shutdown()


SHIPPED = Path(__file__).parents[1] / "studies"
# (no net_width: models.yaml also matches with MLP and LeNet, which have no width to set)
REDUCED = ["iterations=1", "eval_at=[1]", "eval_models=1", "eval_epochs=2", "batch_real=4",
           "execution=eager", "repeats=1"]


def test_a_shipped_gpu_study_runs_on_the_cpu_of_a_cluster_without_gpus(no_local_ray, tmp_path,
                                                                       data_dir, capsys):
    ray.init(num_cpus=2, num_gpus=0, include_dashboard=False)
    try:
        assert load_study(SHIPPED / "models.yaml").resources["gpu"] > 0
        results = launch.launch(str(SHIPPED / "models.yaml"), storage=str(tmp_path / "out"),
                                data_dir=data_dir, overrides=REDUCED)
        assert "the cluster has no GPU: trials run on the CPU" in capsys.readouterr().out
        assert not results.errors and len(results) == 3
        assert {r.metrics["device"] for r in results} == {"cpu"}
        launched = json.loads((Path(results.experiment_path) / "launch.json").read_text())
        assert launched["resources"] == {"cpu": 1, "gpu": 0} and launched["overrides"] == REDUCED
        # the study folder holds the study as run, so status and export read the same
        assert StudyFolder(results.experiment_path).study().fixed["iterations"] == 1
        # --require-gpu keeps the request (on an autoscaling cluster, GPU nodes come up)
        study = load_study(SHIPPED / "models.yaml", REDUCED)
        assert launch.trial_resources(study, require_gpu=True) == {"cpu": 1, "gpu": 0.25}
    finally:
        ray.shutdown()


def raygm(*args, **kw):
    return subprocess.Popen([sys.executable, "-m", "raygm.cli", *args], start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


ITERATIONS = 200


def snapshot(study) -> list[dict]:
    """The trial table of a study being launched; [] until Tune's first snapshot can be read
    (the file can exist before it is whole: status then says to try again)."""
    try:
        return status.trial_table(str(study))
    except FileNotFoundError:
        return []


def test_killed_driver_is_finished_by_resume_without_rerunning_trials(no_local_ray, tmp_path,
                                                                       data_dir):
    # long enough to be seen RUNNING: status.json takes a trial's latest iteration at most
    # once a second, and 30 tiny iterations can end sooner
    fixed = {**TINY, "iterations": ITERATIONS, "eval_at": [ITERATIONS]}
    path = write_study(tmp_path, fixed=fixed, grid={"init": ["noise", "real", "white", "grey"]},
                       resources={"cpu": 1}, max_concurrent=1)
    study = tmp_path / "out" / "tiny"
    driver = raygm("study", "launch", path, "--storage", str(tmp_path / "out"),
                   "--data-dir", data_dir)
    finished, unfinished, running = [], [], []
    deadline = time.time() + 240
    # until a trial has finished, another is not, and one was seen running (a fast first
    # trial can finish between two looks: the next one is then seen)
    while not (finished and unfinished and running) and time.time() < deadline:
        time.sleep(0.2)
        table = snapshot(study)
        if table:
            finished = [r for r in table if r["status"] == "TERMINATED"]
            unfinished = [r for r in table if r["status"] != "TERMINATED"]
            running += [r for r in table if r["status"] == "RUNNING" and r["iteration"]]
    os.killpg(driver.pid, signal.SIGKILL)
    driver.wait()
    assert finished, "no trial finished before the deadline"
    assert running, "status never showed a RUNNING trial with its latest iteration"
    warned = []  # Ray Tune's: a trial without results yet (a pending one) as a failure
    handler = logging.Handler()
    handler.emit = warned.append
    tune_log = logging.getLogger("ray.tune.analysis.experiment_analysis")
    tune_log.addHandler(handler)
    try:
        table = status.trial_table(str(study))
    finally:
        tune_log.removeHandler(handler)
    assert any(r["status"] != "TERMINATED" for r in table), "the driver finished before the kill"
    assert not [r.getMessage() for r in warned]  # status shows pending trials without a page of them
    done = {r["trial"]: (study / d.name / "result.json").read_bytes()
            for r in table if r["status"] == "TERMINATED"
            for d in study.iterdir() if r["trial"] in d.name}

    resumed = time.time()
    resume = raygm("study", "resume", str(study))
    output, _ = resume.communicate(timeout=300)
    assert resume.returncode == 0, output
    table = status.trial_table(str(study))
    assert [r["status"] for r in table] == ["TERMINATED"] * 4
    # the live view is the resumed driver's, not a copy from before it that Tune synced back
    live = StudyFolder(str(study)).status()
    assert live["updated"] > resumed
    assert {s["status"] for s in live["trials"].values()} == {"TERMINATED"}
    assert all(r["iteration"] == ITERATIONS for r in table)
    for trial, before in done.items():  # finished trials were not run again
        after = next(d for d in study.iterdir() if trial in d.name) / "result.json"
        assert after.read_bytes() == before
    assert StudyFolder(str(study)).launch_info().data_dir == data_dir


def test_one_ctrl_c_stops_the_study_or_its_confirmation_and_resume_goes_on(no_local_ray,
                                                                          tmp_path, data_dir):
    """Ctrl-C during the trials ends the run with no confirmation of a half study; Tune's
    handler outlives a run no signal ended, yet one Ctrl-C during the confirmation must also
    stop the driver at once, keeping the networks evaluated; resume evaluates the others."""
    networks = 6  # 3 for each of the 2 trials: both confirmed, whichever ranks first
    fixed = {**TINY, "iterations": ITERATIONS, "eval_at": [ITERATIONS]}
    path = write_study(tmp_path, fixed=fixed, grid={"init": ["noise", "real"]},
                       resources={"cpu": 1}, max_concurrent=1,
                       confirm={"top": 2, "eval_models": 3, "protocol": "study",
                                "eval_epochs": 300})
    study = tmp_path / "out" / "tiny"

    def ctrl_c_once(driver, ready):
        deadline = time.time() + 240
        while not ready() and time.time() < deadline:
            time.sleep(0.2)
        os.killpg(driver.pid, signal.SIGINT)  # what Ctrl-C in its terminal sends
        output, _ = driver.communicate(timeout=60)
        assert driver.returncode == 1, output
        assert f"raygm study resume {study}" in output
        return output

    def one_trial_ended():
        ended = [r["status"] == "TERMINATED" for r in snapshot(study)]
        return ended and any(ended) and not all(ended)
    output = ctrl_c_once(raygm("study", "launch", path, "--storage", str(tmp_path / "out"),
                               "--data-dir", data_dir), one_trial_ended)
    assert "raygm study: 1 of 2 trials have ended; `raygm study resume" in output, output
    assert not list(study.glob("evaluations/*.json"))  # no confirmation of half a study

    output = ctrl_c_once(raygm("study", "resume", str(study)),
                         lambda: list(study.glob("evaluations/*.json")))
    assert "the confirmation stopped" in output, output
    kept = {p.name: p.read_bytes() for p in study.glob("evaluations/*.json")}
    assert 1 <= len(kept) < networks, output

    resume = raygm("study", "resume", str(study))
    output, _ = resume.communicate(timeout=300)
    assert resume.returncode == 0, output
    after = {p.name: p.read_bytes() for p in study.glob("evaluations/*.json")}
    assert len(after) == networks and all(after[name] == kept[name] for name in kept)



def test_launches_on_a_running_head_leave_it_and_its_dashboard_running(tmp_path, data_dir):
    """README's lasting dashboard: `ray start --head`, then launches with --address (and
    RAY_AUTH_MODE=token, which makes the driver send the head's token): both studies run
    on that one cluster, which is still up after them. Subprocesses: this module's own Ray
    stays apart."""
    ray_bin = Path(sys.executable).with_name("ray")
    temp = Path(tempfile.mkdtemp(prefix="rh", dir="/tmp"))  # Ray's socket paths must be short
    ports = free_ports(2)
    head = subprocess.Popen(
        [ray_bin, "start", "--head", "--block", f"--port={ports[0]}", "--num-cpus=1",
         f"--dashboard-port={ports[1]}", f"--temp-dir={temp}", "--disable-usage-stats"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAYGM_DATA_DIR": data_dir}
    address = f"127.0.0.1:{ports[0]}"
    try:
        wait_for_head(ray_bin, address, env, ports[1])
        for name in ("first", "second"):
            path = write_study(tmp_path, name=name, resources={"cpu": 1, "gpu": 0})
            done = subprocess.run([sys.executable, "-m", "raygm.cli", "study", "launch", path,
                                   "--storage", str(tmp_path / "out"), "--address", address],
                                  env=env, capture_output=True, text=True, timeout=300)
            assert done.returncode == 0, done.stderr[-2000:]
            assert f"raygm: Ray dashboard at http://127.0.0.1:{ports[1]}" in done.stdout
        nodes = {pd.read_parquet(tmp_path / "out" / name / "results" / "trials.parquet")
                 .node_id.item() for name in ("first", "second")}
        assert len(nodes) == 1  # one cluster ran both
        assert subprocess.run([ray_bin, "status", f"--address={address}"], env=env,
                              capture_output=True, timeout=60).returncode == 0
    finally:
        os.killpg(head.pid, signal.SIGTERM)  # `ray start --block` stops what it started
        head.wait(timeout=60)


def event_scalars(path: Path) -> dict[str, list[float]]:
    """A TensorBoard event file's scalars by tag (TFRecord framing: length, its CRC, the
    Event, its CRC), read with the protobufs of tensorboardX, which Ray Tune writes with."""
    from tensorboardX.proto.event_pb2 import Event

    data, i, scalars = path.read_bytes(), 0, {}
    while i < len(data):
        (length,) = struct.unpack("<Q", data[i:i + 8])
        event = Event.FromString(data[i + 12:i + 12 + length])
        i += 12 + length + 4
        for value in event.summary.value:
            scalars.setdefault(value.tag, []).append(value.simple_value)
    return scalars


def free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def wait_for_head(ray_bin: Path, address: str, env: dict, dashboard_port: int,
                  seconds: float = 120) -> None:
    """Until the head answers and its dashboard serves (which it registers for drivers)."""
    deadline = time.monotonic() + seconds
    while True:
        up = subprocess.run([ray_bin, "status", f"--address={address}"], env=env,
                            capture_output=True, timeout=60).returncode == 0
        try:
            socket.create_connection(("127.0.0.1", dashboard_port), timeout=5).close()
        except OSError:
            up = False
        if up:
            return
        assert time.monotonic() < deadline, f"no Ray head with a dashboard at {address}"
        time.sleep(2)
