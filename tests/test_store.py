"""The study folder (raygm/studies/store.py): each file in it, written and read back."""
import json
from dataclasses import replace

import pytest

from raygm.core.config import RunConfig
from raygm.studies.store import (EVALUATIONS, LAUNCH_FILE, LaunchError, LaunchInfo,
                                 StudyFolder, network_file)

INFO = LaunchInfo(storage="/s", data_dir="/d", optuna_storage="sqlite:////s/x/optuna.db",
                  resources={"cpu": 1, "gpu": 0.25}, address="auto", overrides=["seed=3"],
                  machine="Test CPU (no native bf16), 2 CPUs")


STUDY = {"name": "s", "fixed": {"iterations": 2, "eval_at": [2]},
         "grid": {"init": ["noise", "real"]}}


def test_launch_info_round_trips_with_the_studys_hash(tmp_path):
    folder = StudyFolder(tmp_path / "x")
    folder.write_study(STUDY)
    folder.write_launch(INFO)
    info = folder.launch_info()
    assert replace(info, study_sha256=None) == INFO and len(info.study_sha256) == 64
    assert json.loads((tmp_path / "x" / LAUNCH_FILE).read_text())["version"] == 1


def test_a_study_edited_after_launch_is_refused(tmp_path):
    folder = StudyFolder(tmp_path)
    folder.write_study(STUDY)
    folder.write_launch(INFO)
    assert folder.study().name == "s"
    folder.write_study({**STUDY, "grid": {"init": ["noise"]}})
    with pytest.raises(LaunchError, match="edited after the study was launched"):
        folder.study()


def test_a_launch_claims_the_folder_once_and_a_failed_one_leaves_nothing(tmp_path):
    folder = StudyFolder(tmp_path / "s")
    with folder.claim():
        folder.write_study(STUDY)
    assert folder.claimed()
    with pytest.raises(FileExistsError, match="being launched or was launched"):
        with folder.claim():
            pass
    other = StudyFolder(tmp_path / "t")
    with pytest.raises(RuntimeError):
        with other.claim():
            other.write_study(STUDY)
            raise RuntimeError("the cluster said no")
    assert not (tmp_path / "t").exists()
    (tmp_path / "u").mkdir()
    (tmp_path / "u" / "notes.txt").write_text("mine")
    with pytest.raises(LaunchError, match="holds files raygm did not write"):
        with StudyFolder(tmp_path / "u").claim():
            pass
    assert (tmp_path / "u" / "notes.txt").read_text() == "mine"


def test_the_optuna_database_moves_with_the_folder(tmp_path):
    info = replace(INFO, optuna_storage=None)
    for where in ("a", "b"):
        assert StudyFolder(tmp_path / where).optuna_storage(info) == \
            f"sqlite:///{tmp_path / where / 'optuna.db'}"
    assert StudyFolder(tmp_path / "a").optuna_storage(INFO) == INFO.optuna_storage


def test_a_launch_json_from_before_versioning_is_read(tmp_path):
    """Folders launched before launch.json had a version, a machine or shared storage."""
    (tmp_path / LAUNCH_FILE).write_text(json.dumps({
        "storage": "/s", "address": None, "data_dir": "/d", "download": False,
        "optuna_storage": "sqlite:///o.db", "resources": {"cpu": 1, "gpu": 0},
        "study_file": "studies/init.yaml", "overrides": []}))
    info = StudyFolder(tmp_path).launch_info()
    assert info.version == 1 and info.machine is None and not info.shared_storage
    assert info.download is False and info.resources == {"cpu": 1, "gpu": 0}


@pytest.mark.parametrize("change, says", [
    ({"version": 2}, "newer raygm"),
    ({"colour": "red"}, "unknown keys colour; allowed: storage, "),
    ({"data_dir": None, "storage": None}, "lacks storage, data_dir; it needs storage, data_dir, "
                                          "resources"),
])
def test_a_launch_json_it_cannot_read_is_refused_with_what_is_wrong(tmp_path, change, says):
    raw = {**json.loads(json.dumps(INFO.__dict__)), **change}
    raw = {k: v for k, v in raw.items() if v is not None or k == "address"}
    (tmp_path / LAUNCH_FILE).write_text(json.dumps(raw))
    with pytest.raises(LaunchError, match=says):
        StudyFolder(tmp_path).launch_info()


def test_a_corrupt_launch_json_is_refused(tmp_path):
    (tmp_path / LAUNCH_FILE).write_text("{not json")
    with pytest.raises(LaunchError, match="not valid JSON"):
        StudyFolder(tmp_path).launch_info()


def test_study_yaml_is_written_and_parsed(tmp_path):
    folder = StudyFolder(tmp_path / "s")
    folder.write_study(STUDY)
    folder.write_launch(INFO)
    study = folder.study()
    assert study.name == "s" and study.grid_points == [{"init": "noise"}, {"init": "real"}]
    assert folder.name == "s"


def test_status_is_empty_until_written(tmp_path):
    folder = StudyFolder(tmp_path)
    assert folder.status() == {}
    folder.write_status({"updated": 1.0, "trials": {"t0": {"status": "RUNNING"}}})
    assert folder.status()["trials"]["t0"]["status"] == "RUNNING"


def test_finished_runs_are_found_by_configuration_and_seed(tmp_path):
    folder = StudyFolder(tmp_path)
    config = RunConfig(iterations=3, seed=1)
    assert folder.finished(config) is None
    folder.put_finished(config, "t0", {"acc_mean": 0.5})
    assert folder.finished(config) == {"trial_id": "t0", "metrics": {"acc_mean": 0.5}}
    assert folder.finished(config.replace(seed=2)) is None


def test_networks_are_stored_one_file_each_and_grouped(tmp_path):
    folder = StudyFolder(tmp_path)
    base = {"trial_id": "t0", "protocol": "full", "epochs": 300, "augment": "none",
            "arch": "ConvNet", "iteration": 10, "seconds": 2.0}
    for network, acc in ((1, 0.6), (0, 0.8), (1, 0.7)):  # network 1 evaluated again
        folder.put_network({**base, "network": network, "acc": acc})
    files = folder.network_files()
    assert [f.rsplit("/", 2)[-2:] for f in files] == [
        [EVALUATIONS, "t0-full-300ep-none-ConvNet-0.json"],
        [EVALUATIONS, "t0-full-300ep-none-ConvNet-1.json"]]
    assert network_file({**base, "network": 0}) == "t0-full-300ep-none-ConvNet-0.json"
    [evaluation] = folder.evaluations()
    assert evaluation["accs"] == [0.8, 0.7] and evaluation["networks"] == 2
    assert evaluation["acc_mean"] == pytest.approx(0.75)


def test_results_go_inside_the_study_folder_by_default(tmp_path):
    assert StudyFolder(tmp_path).results() == str(tmp_path / "results")
