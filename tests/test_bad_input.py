"""The bad-input battery: each mistake a user can make in distill flags, study files, data
folders and study folders stops with a message naming the field (or file, or key) and the
allowed values, before anything is written. No Ray is started: every check here comes first."""
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from raygm.cli import main

from conftest import write_idx, write_tiny_mnist

STUDY = {"name": "bad", "fixed": {"dataset": "MNIST", "model": "ConvNet", "net_width": 8,
                                  "iterations": 2, "eval_at": [0, 2], "eval_models": 1,
                                  "eval_epochs": 2, "batch_real": 4, "execution": "eager"},
         "grid": {"init": ["noise", "real"]}, "resources": {"cpu": 1}}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """The tiny MNIST: 6 train images per class."""
    return str(write_tiny_mnist(tmp_path_factory.mktemp("data")))


def snapshot(folder: Path) -> dict:
    return {p: p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def refused(argv: list[str], capsys) -> str:
    """Run raygm; it must exit with an error; returns what the user reads."""
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code not in (0, None)
    printed = capsys.readouterr()
    return f"{exit_info.value.code} {printed.out} {printed.err}"


DISTILL = [  # (flags, what the message names)
    (["--model", "GPT"], "'model'"),
    (["--dataset", "ImageNet"], "'dataset'"),
    (["--init", "purple"], "'init'"),
    (["--distance", "l3"], "'distance'"),
    (["--net-norm", "weirdnorm"], "'net_norm'"),
    (["--device", "tpu"], "'device'"),
    (["--ipc", "0"], "'ipc'"),
    (["--ipc", "7"], "'ipc'"),  # more than the 6 images a class holds
    (["--batch-real", "0"], "'batch_real'"),
    (["--iterations", "-1"], "'iterations'"),
    (["--lr-img", "-1"], "'lr_img'"),
    (["--lr-img", "nan"], "'lr_img'"),
    (["--lr-net", "inf"], "'lr_net'"),
    (["--momentum-img", "1"], "'momentum_img'"),
    (["--iterations", "5", "--eval-at", "5,0"], "'eval_at'"),
    (["--iterations", "3", "--eval-at", "0,3,3"], "'eval_at'"),
    (["--iterations", "5", "--eval-at", "0,10"], "'eval_at'"),
    (["--hessian-weight", "0.1"], "'hessian_weight'"),
    (["--hessian", "curvature", "--hessian-weight", "-1"], "'hessian_weight'"),
    (["--hessian-probes", "3"], "'hessian_probes'"),
    (["--hessian", "curvature", "--hessian-weight", "0.1", "--hessian-probes", "2"],
     "'hessian_probes'"),
    (["--hessian-curvature", "exact"], "'hessian_curvature'"),
    (["--inner-loop", "5"], "'inner_loop'"),
    (["--eval-models", "0", "--eval-epochs", "10"], "'eval_epochs'"),
    (["--eval-models", "0", "--eval-archs", "MLP"], "'eval_archs'"),
    (["--eval-archs", "MLP,GPT"], "'eval_archs'"),
    (["--model", "MLP", "--net-width", "64"], "'net_width'"),  # only ConvNet reads it
    (["--hessian", "hvp", "--hessian-weight", "1e-5", "--precision", "bf16"], "'precision'"),
    (["--baseline", "no-such-baseline.json"], "--baseline"),
]


@pytest.mark.parametrize("flags, named", DISTILL, ids=[" ".join(f) for f, _ in DISTILL])
def test_distill_flags(flags, named, data, tmp_path, capsys):
    out = tmp_path / "run"
    message = refused(["distill", "--data-dir", data, "--no-download", "--out", str(out),
                       *flags], capsys)
    assert named in message and "allowed" in message or named == "--baseline"
    assert not out.exists()


def test_distill_out_holding_an_earlier_run_is_refused(data, tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "metrics.csv").write_text("iteration,loss\n1,2.0\n")
    before = snapshot(out)
    message = refused(["distill", "--data-dir", data, "--out", str(out), "--iterations", "1"],
                      capsys)
    assert "--out" in message and "--overwrite" in message
    assert snapshot(out) == before


def test_baseline_negative_epochs(data, tmp_path, capsys):
    message = refused(["baseline", "--data-dir", data, "--epochs", "-3",
                       "--out", str(tmp_path / "b.json")], capsys)
    assert "--epochs" in message and ">= 1" in message
    assert not (tmp_path / "b.json").exists()


def study(**changes):
    raw = {**STUDY, **changes}
    if "fixed" in changes:
        raw["fixed"] = {**STUDY["fixed"], **changes["fixed"]}
    return {k: v for k, v in raw.items() if v is not None}


STUDIES = [  # (study, --set overrides, the key the message names)
    (study(colour="red"), [], "'colour'"),
    (study(fixed={"lr": 0.1}), [], "'fixed.lr'"),
    (study(fixed={"iterations": "many"}), [], "'fixed.iterations'"),
    (study(fixed={"lr_img": float("nan")}), [], "'fixed.lr_img'"),
    (study(fixed={"eval_at": [2, 0]}), [], "'fixed.eval_at'"),
    (study(fixed={"init": "noise"}), [], "'fixed.init'"),  # fixed and varied
    (study(fixed={"model": "MLP"}), [], "'fixed.net_width'"),  # 8, which no MLP reads
    (study(grid={"init": ["noise", "purple"]}), [], "'grid.init'"),
    (study(grid={"ipc": [1, 7]}), [], "'grid.ipc'"),  # 7 > the 6 images of a class
    (study(fixed={"ipc": 7}), [], "'fixed.ipc'"),
    (study(grid=None, search={"eval_batch": {"loguniform": [1.5, 64]}}), [],
     "'search.eval_batch.loguniform'"),  # an integer field
    (study(grid=None, search={"hessian": {"choice": ["none", "hvp"]},
                              "hessian_weight": {"loguniform": [1e-6, 1e-2]}}), [],
     "'search.hessian_weight.loguniform'"),  # a weight where the term is off
    (study(grid=None, search={"hessian": {"choice": ["none", "hvp"]},
                              "hessian_weight": {"loguniform": [1e-6, 1e-2],
                                                 "when": {"hesian": ["hvp"]}}}), [],
     "'search.hessian_weight.when.hesian'"),
    (study(objectives=[{"metric": "accuracy", "mode": "max"}]), [], "'objectives[0].metric'"),
    (study(resources={"gpu": 1.5}), [], "'resources.gpu'"),
    (study(scheduler="hyperband"), [], "'scheduler.name'"),
    (study(), ["colour=red"], "'--set colour=red'"),
    (study(), ["eval_at=[0,"], "'(whole file)'"),
    (study(), ["iterations=5"], "'fixed.eval_at'"),  # its evaluation points no longer end it
]


@pytest.mark.parametrize("raw, overrides, named", STUDIES,
                         ids=[named for _, _, named in STUDIES])
def test_study_files(raw, overrides, named, data, tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(raw))
    storage = tmp_path / "studies"
    sets = [arg for o in overrides for arg in ("--set", o)]
    message = refused(["study", "launch", str(path), "--storage", str(storage),
                       "--data-dir", data, "--no-download", *sets], capsys)
    assert named in message and "bad.yaml" in message and "allowed" in message
    assert not storage.exists()


def test_study_file_with_a_yaml_syntax_error(tmp_path, capsys):
    path = tmp_path / "broken.yaml"
    path.write_text("name: a\nfixed: {iterations: [1, 2\n")
    message = refused(["study", "launch", str(path), "--storage", str(tmp_path / "s")], capsys)
    assert "broken.yaml" in message and "valid YAML" in message
    assert not (tmp_path / "s").exists()


def test_missing_study_file(tmp_path, capsys):
    message = refused(["study", "launch", str(tmp_path / "nope.yaml"),
                       "--storage", str(tmp_path / "s")], capsys)
    assert "nope.yaml" in message and "existing study file" in message


def corrupt_copy(data: str, tmp_path: Path, damage) -> str:
    root = tmp_path / "damaged"
    shutil.copytree(data, root)
    damage(root / "MNIST" / "raw")
    return str(root)


def truncate(raw: Path):
    path = raw / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:1000])


def labels_outside(raw: Path):
    write_idx(raw / "train-labels-idx1-ubyte", np.repeat(np.arange(10), 6) + 3)


def one_class_empty(raw: Path):
    write_idx(raw / "train-labels-idx1-ubyte", np.minimum(np.repeat(np.arange(10), 6), 8))


DATA = [  # (damage, what the message says)
    (lambda raw: (raw / "train-images-idx3-ubyte").unlink(), "missing: MNIST/raw/train-images"),
    (truncate, "present but unreadable or corrupt"),
    (labels_outside, "outside its 10 classes"),
    (one_class_empty, "'ipc'"),
]


@pytest.mark.parametrize("damage, says", DATA, ids=["missing", "truncated", "labels", "empty"])
@pytest.mark.parametrize("command", ["distill", "launch"])
def test_data_folders(damage, says, command, data, tmp_path, capsys):
    root = corrupt_copy(data, tmp_path, damage)
    before = snapshot(Path(root))
    if command == "distill":
        argv = ["distill", "--data-dir", root, "--no-download", "--out", str(tmp_path / "run"),
                "--iterations", "1"]
    else:
        path = tmp_path / "s.yaml"
        path.write_text(yaml.safe_dump(STUDY))
        argv = ["study", "launch", str(path), "--storage", str(tmp_path / "studies"),
                "--data-dir", root, "--no-download"]
    message = refused(argv, capsys)
    assert says in message and root in message or says == "'ipc'"
    assert not (tmp_path / "run").exists() and not (tmp_path / "studies").exists()
    assert snapshot(Path(root)) == before


def fake_study_folder(tmp_path: Path, study_yaml: str) -> Path:
    """A folder Ray Tune would restore (it holds tuner.pkl) with our files."""
    folder = tmp_path / "studies" / "bad"
    folder.mkdir(parents=True)
    (folder / "tuner.pkl").write_bytes(b"")
    (folder / "study.yaml").write_text(study_yaml)
    (folder / "launch.json").write_text("{}")
    return folder


FOLDERS = [  # (study.yaml in the folder or None for no folder, what the message says)
    (None, "holds no Ray Tune study"),
    ("name: a\nfixed: {iterations: [1, 2\n", "valid YAML"),
    ("name: a\ncolour: red\n", "'colour'"),
]


@pytest.mark.parametrize("action", ["status", "resume", "export"])
@pytest.mark.parametrize("study_yaml, says", FOLDERS, ids=["no study", "yaml", "key"])
def test_study_folders(action, study_yaml, says, tmp_path, capsys):
    folder = fake_study_folder(tmp_path, study_yaml) if study_yaml else tmp_path / "nothing"
    before = snapshot(tmp_path)
    argv = ["export", str(folder)] if action == "export" else ["study", action, str(folder)]
    message = refused(argv, capsys)
    assert says in message and "Traceback" not in message
    assert snapshot(tmp_path) == before
