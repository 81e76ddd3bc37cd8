"""`raygm evaluate` and a study's confirm: saved synthetic sets re-evaluated as Ray tasks."""
import csv
import io

import pandas as pd
import pytest
import ray
import torch
import yaml

from raygm.studies import status
from raygm.cli import main
from raygm.core import evaluate as evaluate_module
from raygm.core.config import RunConfig
from raygm.core.evaluate import protocol_config
from raygm.studies.reevaluation import evaluate_study, evaluate_task
from raygm.studies.store import LaunchError

from conftest import write_tiny_mnist

FIXED = {"dataset": "MNIST", "model": "ConvNet", "net_width": 8, "net_depth": 2,
         "iterations": 2, "batch_real": 4, "batch_train": 8, "eval_at": [2],
         "eval_models": 1, "eval_epochs": 3, "execution": "eager"}


def test_the_full_protocol_is_dcs():
    config = protocol_config(RunConfig(eval_models=1, eval_epochs=3, eval_augment="none"),
                             "full", 10)
    assert (config.eval_models, config.eval_train_epochs("ConvNet"),
            config.eval_augmentation("ConvNet")) == (10, 1000, "dc")
    fashion = protocol_config(RunConfig(dataset="FashionMNIST", eval_augment="dc"), "full")
    assert (fashion.eval_train_epochs("ConvNet"), fashion.eval_augmentation("ConvNet")) == \
        (300, "none")


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """A finished grid study (2 inits x 2 seeds) whose file asks for a confirmation."""
    root = tmp_path_factory.mktemp("evaluate")
    path = root / "confirm.yaml"
    path.write_text(yaml.safe_dump({
        "name": "confirm", "fixed": FIXED, "grid": {"init": ["noise", "real"]}, "repeats": 2,
        "resources": {"cpu": 1}, "confirm": {"top": 1, "eval_models": 2, "protocol": "study",
                                     "also_archs": ["MLP"]}}))
    ray.init(num_cpus=2, include_dashboard=False)
    try:
        main(["study", "launch", str(path), "--storage", str(root / "out"),
              "--data-dir", str(write_tiny_mnist(root / "data"))])
        yield root / "out" / "confirm"
    finally:
        ray.shutdown()


def test_confirm_evaluates_every_seed_of_the_best_configuration(study):
    trials = pd.read_parquet(study / "results" / "trials.parquet")
    evaluations = pd.read_parquet(study / "results" / "evaluations.parquet")
    best = trials.groupby("init").acc_mean.mean().idxmax()
    # on the trials' own architecture and also on MLP
    assert sorted(evaluations.trial_id) == sorted(2 * list(trials[trials.init == best].trial_id))
    assert sorted(evaluations.arch) == ["ConvNet", "ConvNet", "MLP", "MLP"]
    assert set(evaluations.protocol) == {"study"} and (evaluations.networks == 2).all()
    assert all(len(a) == 2 for a in evaluations.accs) and (evaluations.iteration == 2).all()
    confirmed = trials[trials.study_acc_mean.notna()]
    assert set(confirmed.init) == {best} and len(confirmed) == 2
    # the study's own evaluation (1 network) is the first of the confirmation's two: the
    # same evaluation networks, by common random numbers
    for row in confirmed.itertuples():
        [accs] = evaluations[(evaluations.trial_id == row.trial_id)
                             & (evaluations.arch == "ConvNet")].accs
        assert accs[0] == pytest.approx(row.acc_mean)


def test_evaluate_on_other_architectures_and_resume(study):
    records = evaluate_study(str(study), "all", ("MLP",), models=1, protocol="study")
    assert len(records) == 4 and {r["arch"] for r in records} == {"MLP"}
    files = {p.name: p.read_bytes() for p in (study / "evaluations").iterdir()}
    again = evaluate_study(str(study), "all", ("MLP",), models=1, protocol="study")
    assert again == records  # answered from the saved evaluations, nothing rerun
    assert {p.name: p.read_bytes() for p in (study / "evaluations").iterdir()} == files
    with pytest.raises(LaunchError, match="best:K"):
        evaluate_study(str(study), "top3")
    rows = status.trial_table(str(study))
    assert sum(r.get("study_acc_mean") is not None for r in rows) == 2


def test_more_networks_add_to_the_earlier_ones(study):
    """One task per network: asking for 3 networks where 1 was evaluated runs networks 1
    and 2 only, and network 0 stays as it was."""
    [one] = evaluate_study(str(study), "best:1", ("LeNet",), models=1, protocol="study")[:1]
    before = {p.name: p.read_bytes() for p in (study / "evaluations").iterdir()}
    more = evaluate_study(str(study), "best:1", ("LeNet",), models=3, protocol="study")
    after = {p.name: p.read_bytes() for p in (study / "evaluations").iterdir()}
    assert all(after[name] == data for name, data in before.items())
    assert len(after) - len(before) == 2 * len(more)  # 2 more networks per selected trial
    [same] = [e for e in more if e["trial_id"] == one["trial_id"]]
    assert same["networks"] == 3 and same["accs"][0] == one["accs"][0]


def test_a_set_stored_with_a_factor_is_evaluated_on_its_decoded_images(study, tmp_path):
    """IDC's factor 2: synthetic.pt keeps ipc images per class and says its factor; the Ray
    task that `raygm evaluate` and confirm run trains its network on the decoded set
    (factor² · ipc images per class, their labels), as the run's own evaluation did."""
    data_dir = str(study.parent.parent / "data")
    out = tmp_path / "run"
    main(["distill", "--data-dir", data_dir, "--no-download", "--net-width", "8",
          "--net-depth", "2", "--iterations", "1", "--eval-at", "1", "--eval-models", "1",
          "--eval-epochs", "2", "--batch-real", "4", "--factor", "2", "--out", str(out)])
    synthetic = (out / "synthetic.pt").read_bytes()
    state = torch.load(io.BytesIO(synthetic), weights_only=False)
    assert state["factor"] == 2 and state["images"].shape == (10, 1, 28, 28)

    @ray.remote(num_cpus=1)
    def spied_evaluation():
        seen, original = [], evaluate_module.train_and_test

        def spy(net, images, labels, *args, **kwargs):
            seen.append((tuple(images.shape), labels.tolist()))
            return original(net, images, labels, *args, **kwargs)
        evaluate_module.train_and_test = spy
        try:
            return seen, evaluate_task(synthetic, state["config"], "ConvNet", "study", None, 0,
                                       data_dir, False, 1)
        finally:
            evaluate_module.train_and_test = original

    seen, record = ray.get(spied_evaluation.remote())
    assert seen == [((40, 1, 28, 28), [c for c in range(10) for _ in range(4)])]
    [own] = list(csv.DictReader(open(out / "evals.csv")))
    assert record["acc"] == pytest.approx(float(own["accs"]))  # the same network, same set


def test_where_chooses_among_the_trials_with_a_config_value(study, capsys):
    trials = pd.read_parquet(study / "results" / "trials.parquet")
    worst = trials.groupby("init").acc_mean.mean().idxmin()
    # best:1 among the worst init's trials is that init, not the study's best
    records = evaluate_study(str(study), "best:1", ("MLP",), models=1, protocol="study",
                             where={"init": worst})
    assert sorted(r["trial_id"] for r in records) == sorted(trials[trials.init == worst].trial_id)
    with pytest.raises(LaunchError, match="'modle' is not a run config field; allowed: .*model"):
        evaluate_study(str(study), "all", where={"modle": "MLP"})
    with pytest.raises(LaunchError, match="no finished trial has it; its values: noise, real"):
        evaluate_study(str(study), "all", where={"init": "black"})
    with pytest.raises(SystemExit) as exit_info:  # a usage error, before the study is read
        main(["evaluate", str(study), "--where", "init"])
    assert exit_info.value.code == 2
    assert "argument --where: 'init' is invalid; allowed: FIELD=VALUE" in capsys.readouterr().err


def test_an_exported_results_folder_is_evaluated_in_place(study, tmp_path):
    """A results folder whose study folder is gone (e.g. committed results after a protocol
    correction): its Parquet files gain the evaluations, the networks' files are merged and
    removed, and a second run finds them done."""
    from raygm.studies.export import export_study
    out = export_study(str(study), str(tmp_path / "results"))
    before = pd.read_parquet(tmp_path / "results" / "evaluations.parquet")
    data_dir = str(study.parent.parent / "data")
    records = evaluate_study(out, "all", ("ConvNet",), models=2, protocol="full", epochs=2,
                             data_dir=data_dir)
    assert len(records) == 4 and all(r["networks"] == 2 for r in records)
    after = pd.read_parquet(tmp_path / "results" / "evaluations.parquet")
    assert len(after) == len(before) + 4
    assert not (tmp_path / "results" / "evaluations").exists()
    assert set(after[after.protocol == "full"].augment) == {"dc"}  # DC's rule for MNIST
    # trials.parquet gains the protocol's column: on the trials' own architecture
    trials = trials_of(tmp_path / "results").set_index("trial_id")
    for r in records:
        assert trials.full_acc_mean[r["trial_id"]] == pytest.approx(r["acc_mean"])
    # the earlier rows are kept as they were
    kept = after[after.protocol != "full"].sort_values(["trial_id", "arch"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(kept, before.sort_values(["trial_id", "arch"])
                                  .reset_index(drop=True), check_like=True)
    again = evaluate_study(out, "all", ("ConvNet",), models=2, protocol="full", epochs=2,
                           data_dir=data_dir)
    assert again == records  # answered from the Parquet files, nothing rerun
    assert len(pd.read_parquet(tmp_path / "results" / "evaluations.parquet")) == len(after)
    # a third network adds to the two evaluated before
    more = {r["trial_id"]: r for r in evaluate_study(out, "all", ("ConvNet",), models=3,
                                                     protocol="full", epochs=2,
                                                     data_dir=data_dir)}
    for r in records:
        assert more[r["trial_id"]]["networks"] == 3
        assert more[r["trial_id"]]["accs"][:2] == r["accs"]


def trials_of(folder):
    return pd.read_parquet(folder / "trials.parquet")


def test_trials_whose_synthetic_sets_are_gone_are_named(study, tmp_path, capsys):
    """A copy of the study (moved: its folder travels) with one trial's checkpoints deleted:
    evaluate refuses by name before any network trains, or with skip_missing says which it
    skipped and evaluates the others."""
    import shutil

    copy = tmp_path / "confirm"
    shutil.copytree(study, copy)
    trials = pd.read_parquet(study / "results" / "trials.parquet")
    gone = trials.trial_id.iloc[0]
    [folder] = [p for p in copy.iterdir() if gone in p.name and p.is_dir()]
    for checkpoint in folder.glob("checkpoint_*"):
        shutil.rmtree(checkpoint)
    with pytest.raises(LaunchError, match=f"1 chosen trial.*no saved synthetic set.*{gone}"
                                          ".*--skip-missing"):
        evaluate_study(str(copy), "all", ("MLP",), models=1, protocol="study")
    def files_of(trial):  # its evaluated networks (earlier tests may have made some)
        return sorted(p.name for p in (copy / "evaluations").glob(f"{trial}-*"))

    before = files_of(gone)
    records = evaluate_study(str(copy), "all", ("MLP",), models=1, protocol="study",
                             skip_missing=True)
    assert f"skipped (no saved synthetic set): {gone}" in capsys.readouterr().out
    assert set(trials.trial_id) - {gone} <= {r["trial_id"] for r in records}
    assert files_of(gone) == before  # nothing evaluated for the trial without a set
    assert all(files_of(t) for t in set(trials.trial_id) - {gone})
