import csv
import json
import subprocess
import sys

import pytest
import torch
from PIL import Image

from raygm.cli import main


def test_distill_writes_synthetic_set_grids_and_metrics(mnist_dir, tmp_path):
    out = tmp_path / "run"
    main(["distill", "--data-dir", str(mnist_dir), "--no-download", "--net-width", "8",
          "--net-depth", "2", "--iterations", "3", "--eval-at", "0,3", "--eval-models", "2",
          "--eval-epochs", "3", "--batch-real", "4", "--ipc", "2", "--outer-loop", "2",
          "--inner-loop", "1", "--seed", "7", "--out", str(out)])
    synthetic = torch.load(out / "synthetic.pt")
    assert synthetic["images"].shape == (20, 1, 28, 28) and synthetic["iteration"] == 3
    assert synthetic["labels"].tolist() == [c for c in range(10) for _ in range(2)]
    assert synthetic["config"]["seed"] == 7 and synthetic["config"]["net_width"] == 8
    for it in (0, 3):
        grid = Image.open(out / f"grid_iter{it:05d}.png")
        assert grid.width > grid.height > 0  # 10 class columns, 2 rows
    rows = list(csv.DictReader(open(out / "metrics.csv")))
    assert [int(r["iteration"]) for r in rows] == [1, 2, 3]
    assert {"loss", "seconds", "loss_class_0", "loss_class_9"} <= set(rows[0])
    evals = list(csv.DictReader(open(out / "evals.csv")))
    assert [int(r["iteration"]) for r in evals] == [0, 3]
    assert all(len(r["accs"].split(";")) == 2 for r in evals)
    summary = json.loads((out / "summary.json").read_text())
    assert len(summary["evaluations"]) == 2
    assert "CPUs" in summary["device_name"] and summary["peak_memory_mb"] is None


def test_distill_runs_where_neither_ray_nor_optuna_is_installed(mnist_dir, tmp_path):
    """The GPU machine has torch but no Ray or Optuna: `raygm distill` (and the core) must
    not import them."""
    code = ("import sys; sys.modules['ray'] = sys.modules['optuna'] = None; "
            "from raygm.cli import main; main(sys.argv[1:]); "
            "assert not {'ray', 'optuna'} & {m.split('.')[0] for m in sys.modules "
            "if sys.modules[m] is not None}")
    out = tmp_path / "run"
    subprocess.run([sys.executable, "-c", code, "distill", "--data-dir", str(mnist_dir),
                    "--no-download", "--net-width", "8", "--net-depth", "2", "--iterations",
                    "1", "--eval-models", "0", "--batch-real", "4", "--execution", "eager",
                    "--levers", "batched_classes", "--out", str(out)], check=True)
    assert (out / "synthetic.pt").exists()


def test_same_seed_same_synthetic_set_through_the_cli(mnist_dir, tmp_path):
    args = ["distill", "--data-dir", str(mnist_dir), "--no-download", "--net-width", "8",
            "--iterations", "2", "--eval-models", "0", "--batch-real", "4",
            "--execution", "eager"]
    main(args + ["--out", str(tmp_path / "a")])
    main(args + ["--out", str(tmp_path / "b")])
    a, b = (torch.load(tmp_path / n / "synthetic.pt")["images"] for n in "ab")
    assert torch.equal(a, b)


@pytest.mark.parametrize("flags, message", [
    (["--model", "GPT"], "'model' = 'GPT' is invalid; allowed: MLP, ConvNet"),
    (["--ipc", "0"], "'ipc' = 0 is invalid"),
    (["--lr-img", "-1"], "'lr_img' = -1.0 is invalid"),
])
def test_bad_flags_exit_with_the_field_and_allowed_values(flags, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["distill", "--out", str(tmp_path / "x"), "--data-dir", str(tmp_path)] + flags)
    assert message in str(exit_info.value.code)
    assert not (tmp_path / "x").exists()  # nothing started


def test_missing_data_is_reported_before_any_run(tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        main(["distill", "--out", str(tmp_path / "x"), "--data-dir", str(tmp_path / "none"),
              "--no-download"])
    assert "MNIST/raw/train-images-idx3-ubyte" in str(exit_info.value.code)


def test_baseline_writes_accuracy(mnist_dir, tmp_path):
    out = tmp_path / "baseline.json"
    main(["baseline", "--data-dir", str(mnist_dir), "--no-download", "--model", "MLP",
          "--epochs", "20", "--out", str(out)])
    result = json.loads(out.read_text())
    assert result["model"] == "MLP" and result["accuracy"] >= 0.5  # tiny, easy data


FAST = ["--net-width", "8", "--net-depth", "2", "--batch-real", "4", "--eval-models", "1",
        "--eval-epochs", "2", "--execution", "eager"]


def test_a_diverging_run_stops_with_its_iteration_and_settings(mnist_dir, tmp_path, capsys):
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as exit_info:
        main(["distill", "--data-dir", str(mnist_dir), "--no-download", *FAST,
              "--iterations", "4", "--eval-at", "0,4", "--lr-img", "1e30", "--out", str(out)])
    message = str(exit_info.value.code)
    assert "diverged at iteration" in message and "lr_img=1e+30" in message
    synthetic = torch.load(out / "synthetic.pt")  # the last finite set (iteration 0)
    assert synthetic["iteration"] == 0 and torch.isfinite(synthetic["images"]).all()
    assert [int(r["iteration"]) for r in csv.DictReader(open(out / "evals.csv"))] == [0]


def test_overwrite_replaces_an_earlier_run_only_with_a_complete_one(mnist_dir, tmp_path):
    out = tmp_path / "run"
    argv = ["distill", "--data-dir", str(mnist_dir), "--no-download", *FAST,
            "--iterations", "1", "--eval-at", "1", "--out", str(out)]
    main(argv + ["--seed", "1"])
    first = torch.load(out / "synthetic.pt")
    with pytest.raises(SystemExit):  # a replacement that diverges leaves the first run
        main(argv + ["--seed", "2", "--lr-img", "1e30", "--iterations", "3", "--eval-at", "3",
                     "--overwrite"])
    assert torch.equal(torch.load(out / "synthetic.pt")["images"], first["images"])
    main(argv + ["--seed", "2", "--overwrite"])
    assert json.loads((out / "config.json").read_text())["seed"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["MNIST", "run"]  # nothing beside it
