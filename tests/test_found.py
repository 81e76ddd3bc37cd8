"""analysis.found: a search's best configurations as a study file raygm accepts."""
import json

import pandas as pd
import yaml

from analysis import found
from raygm.studies.study_file import load_study

SPACE = {"lr_img": {"loguniform": [0.01, 10.0]}, "init": {"choice": ["noise", "real"]},
         "hessian": {"choice": ["none", "hvp"]},
         "hessian_weight": {"loguniform": [1e-6, 1e-2], "when": {"hessian": ["hvp"]}}}


def write_search(root, name="search_mnist", part=slice(None), continues=None):
    rows = [  # lr_img, init, hessian, weight (None: unsampled), status, accuracy, duplicate
        (0.5, "real", "none", None, "TERMINATED", 0.91, None),
        (0.5, "real", "none", None, "TERMINATED", 0.91, "t0"),    # a repeat: counted once
        (2.0, "noise", "hvp", 1e-4, "TERMINATED", 0.88, None),
        (1.0, "real", "hvp", 1e-3, "OVER_TIME", 0.95, None),      # no result: left out
        (0.1, "noise", "none", None, "TERMINATED", 0.70, None),
        (0.2, "real", "none", None, "DIVERGED", None, None)]
    trials = pd.DataFrame(
        [{"trial_id": f"t{i}", "lr_img": lr, "init": init, "hessian": h, "hessian_weight": w,
          "status": status, "acc_mean": acc, "duplicate_of": dup}
         for i, (lr, init, h, w, status, acc, dup) in enumerate(rows)][part])
    trials = trials.assign(trial_dir=trials.trial_id, synthetic_path=None,
                           grid_paths=[[]] * len(trials))
    root.mkdir()
    trials.to_parquet(root / "trials.parquet")
    pd.DataFrame({"trial_id": []}).to_parquet(root / "iterations.parquet")
    (root / "study.json").write_text(json.dumps({
        "name": name, "continues": continues, "kind": "search", "factors": list(SPACE), "space": SPACE,
        "fixed": {"dataset": "MNIST", "model": "ConvNet", "ipc": 1, "iterations": 100,
                  "eval_at": [100], "eval_models": 2, "eval_epochs": 300,
                  "eval_net": "standard"},
        "objectives": [{"metric": "acc_mean", "mode": "max"}],
        "resources": {"cpu": 1, "gpu": 0.25}}))


def test_the_best_finished_configurations_become_a_valid_confirmation_study(tmp_path):
    write_search(tmp_path / "export")
    out = tmp_path / "found_mnist.yaml"
    found.main([str(tmp_path / "export"), "--out", str(out), "--top", "3", "--seed", "100"])
    raw = yaml.safe_load(out.read_text())
    assert raw["name"] == "found_mnist"
    assert raw["grid"] == [  # best first; λ only where the search sampled it
        {"lr_img": [0.5], "init": ["real"], "hessian": ["none"]},
        {"lr_img": [2.0], "init": ["noise"], "hessian": ["hvp"], "hessian_weight": [1e-4]},
        {"lr_img": [0.1], "init": ["noise"], "hessian": ["none"]}]
    assert raw["fixed"]["iterations"] == 200 and raw["fixed"]["eval_at"] == [200]
    assert raw["fixed"]["seed"] == 100 and raw["repeats"] == 5
    assert raw["confirm"] == {"top": 3, "eval_models": 5, "protocol": "full"}
    assert "trial t0: screen 91.00 %" in out.read_text()
    study = load_study(str(out))  # raygm accepts it as it is
    assert study.num_trials == 15
    assert [study.run_config(study.grid_points[0], r).seed for r in range(5)] == \
        list(range(100, 105))
    # confirmed on the network the search screened on: DC's standard ConvNet
    assert study.run_config(study.grid_points[0], 0).eval_net == "standard"


def test_asking_for_more_configurations_than_finished_is_an_error(tmp_path, capsys):
    write_search(tmp_path / "export")
    try:
        found.main([str(tmp_path / "export"), "--out", str(tmp_path / "f.yaml"), "--top", "4"])
    except SystemExit as exc:
        assert "only 3 finished configurations; --top 4 asks for more" in str(exc)
    else:
        raise AssertionError("no error")
    assert not (tmp_path / "f.yaml").exists()


def test_a_search_in_parts_is_confirmed_as_one_search(tmp_path):
    """The best of both parts of a search (common.load joins them), named for the search."""
    write_search(tmp_path / "search_mnist_1", "search_mnist_1", slice(0, 3))
    write_search(tmp_path / "search_mnist_2", "search_mnist_2", slice(3, None),
                 continues="results/search_mnist_1")
    out = tmp_path / "found.yaml"
    found.main([str(tmp_path / "search_mnist_2"), "--out", str(out), "--top", "3"])
    raw = yaml.safe_load(out.read_text())
    assert raw["name"] == "found_mnist"
    assert [block["lr_img"] for block in raw["grid"]] == [[0.5], [2.0], [0.1]]
    assert "search_mnist_2 (the parts search_mnist_1, search_mnist_2)" in out.read_text()
