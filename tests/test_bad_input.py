"""The bad-input battery: each mistake a user can make in distill flags, study files, data
folders and study folders stops with a message naming the field (or file, or key) and the
allowed values, before anything is written. No Ray is started: every check here comes first."""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from raygm.cli import main
from raygm.studies.store import LaunchError

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
    # values beyond what Ray Tune's loggers, Parquet and torch hold (64-bit integers)
    (["--seed", "9223372036854775808"], "'seed'"),
    (["--seed", "-9223372036854775809"], "'seed'"),
    (["--iterations", "99999999999999999999"], "'iterations'"),
    # shapes a network or the images cannot take
    (["--net-depth", "6"], "'net_depth'"),  # 28x28 (padded to 32) halves 5 times at most
    (["--net-depth", "0"], "'net_depth'"),
    (["--net-width", "0"], "'net_width'"),
    (["--factor", "3"], "'factor'"),  # 28 is not divisible by 3
    (["--factor", "0"], "'factor'"),
    (["--factor", "56"], "'factor'"),
    # a choice outside its registry
    (["--net-act", "tanh"], "'net_act'"),
    (["--net-pooling", "sumpooling"], "'net_pooling'"),
    (["--hessian", "cubic"], "'hessian'"),
    (["--precision", "fp8"], "'precision'"),
    (["--execution", "jit"], "'execution'"),
    (["--levers", "warp_speed"], "'levers'"),
    (["--eval-augment", "mixup"], "'eval_augment'"),
    (["--eval-archs", "Transformer"], "'eval_archs'"),
    (["--dsa", "zoom"], "'dsa'"),
    (["--dsa", "color_color"], "'dsa'"),
    (["--dsa", "flip"], "'dsa'"),  # a flipped digit is another symbol
    # numbers outside their ranges
    (["--batch-train", "0"], "'batch_train'"),
    (["--bn-batch", "0"], "'bn_batch'"),
    (["--eval-models", "-1"], "'eval_models'"),
    (["--eval-epochs", "0"], "'eval_epochs'"),
    (["--eval-lr", "0"], "'eval_lr'"),
    (["--eval-batch", "0"], "'eval_batch'"),
    (["--outer-loop", "0"], "'outer_loop'"),
    (["--lr-net", "0"], "'lr_net'"),
    (["--lr-img", "1e400"], "'lr_img'"),  # inf
    (["--momentum-img", "-0.1"], "'momentum_img'"),
    (["--hessian", "hvp", "--hessian-weight", "-0.001"], "'hessian_weight'"),
    (["--gpu-memory-fraction", "0"], "'gpu_memory_fraction'"),
    (["--gpu-memory-fraction", "1.5"], "'gpu_memory_fraction'"),
    (["--device", "cpu", "--gpu-memory-fraction", "0.5"], "'gpu_memory_fraction'"),
    (["--levers", "cuda_graphs", "--execution", "eager"], "'levers'"),
    (["--levers", "batched_classes,batched_classes"], "'levers'"),
    (["--levers", "batched_classes", "--hessian", "hvp", "--hessian-weight", "0.1"],
     "'levers'"),
    (["--device", "cuda:x"], "'device'"),
    # what argparse itself refuses, naming the flag
    (["--iterations", "many"], "--iterations"),
    (["--ipc", "1.5"], "--ipc"),
    (["--eval-at", "a,b"], "--eval-at"),
    (["--lr-img", "fast"], "--lr-img"),
    (["--out", ""], "--out"),
]


@pytest.mark.parametrize("flags, named", DISTILL, ids=[" ".join(f) for f, _ in DISTILL])
def test_distill_flags(flags, named, data, tmp_path, capsys):
    out = tmp_path / "run"
    message = refused(["distill", "--data-dir", data, "--no-download", "--out", str(out),
                       *flags], capsys)
    assert named in message and ("allowed" in message or named.startswith("--"))
    assert not out.exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_distill_on_a_gpu_the_machine_lacks(data, tmp_path, capsys):
    message = refused(["distill", "--data-dir", data, "--no-download", "--device", "cuda",
                       "--out", str(tmp_path / "run")], capsys)
    assert "'device'" in message and "CUDA GPUs" in message
    assert not (tmp_path / "run").exists()


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
    # silently accepted before: the same value twice runs (and counts) the same trial twice
    (study(grid={"init": ["noise", "noise"]}), [], "'grid.init'"),
    (study(grid=None, search={"init": {"choice": ["noise", "real", "noise"]}}, trials=2), [],
     "'search.init.choice'"),
    # names and numbers Ray Tune or Optuna would refuse mid-study
    (study(name="étude"), [], "'name'"),
    (study(name="a" * 65), [], "'name'"),
    (study(name="two words"), [], "'name'"),
    (study(name=""), [], "'name'"),
    (study(name=7), [], "'name'"),
    (study(fixed={"seed": 2**63}), [], "'fixed.seed'"),
    (study(fixed={"net_depth": 6}), [], "'fixed.net_depth'"),
    (study(grid={"net_depth": [3, 6]}), [], "'grid.net_depth'"),
    (study(grid={"factor": [1, 3]}), [], "'grid.factor'"),
    (study(grid=None, search={"factor": {"choice": [1, 5]}}, trials=2), [],
     "'search.factor.choice'"),
    # keys and values of each section
    (study(trials=3), [], "'trials'"),  # a grid runs every combination
    (study(repeats=0), [], "'repeats'"),
    (study(repeats="five"), [], "'repeats'"),
    (study(max_concurrent=-1), [], "'max_concurrent'"),
    (study(checkpoint_every=0), [], "'checkpoint_every'"),
    (study(max_failures=-1), [], "'max_failures'"),
    (study(max_trial_seconds=-1), [],
     "'max_trial_seconds' = -1 is invalid; allowed: a number of seconds"),
    (study(max_trial_seconds="1h"), [], "'max_trial_seconds' = '1h'"),
    (study(grid=None, search={"lr_img": {"loguniform": [0.1, 1]}}, max_core_hours=-2), [],
     "'max_core_hours' = -2 is invalid; allowed: a number of core-hours >= 0"),
    (study(max_core_hours=5, confirm={"top": 1}), [],
     "'confirm.top' = 1 is invalid; allowed: at least the grid's 2 configurations where it "
     "runs in parts"),
    (study(sampler_seed="x"), [], "'sampler_seed'"),
    (study(sampler="tpe"), [], "'sampler'"),  # a grid samples nothing
    (study(grid=None, search={"lr_img": {"loguniform": [0.1, 1]}}, sampler="cmaes"), [],
     "'sampler.name'"),
    (study(grid=None, search={"lr_img": {"loguniform": [0.1, 1]}},
           sampler={"name": "tpe", "group": True}), [], "'sampler.group'"),
    (study(grid=None, search={"lr_img": {"loguniform": [0, 1]}}), [],
     "'search.lr_img.loguniform'"),
    (study(grid=None, search={"lr_img": {"uniform": [1, 0.1]}}), [],
     "'search.lr_img.uniform'"),
    (study(grid=None, search={"lr_img": {"normal": [0, 1]}}), [], "'search.lr_img'"),
    (study(grid=None, search={"lr_img": {"choice": []}}), [], "'search.lr_img.choice'"),
    (study(grid=None, search={"ipcs": {"choice": [1]}}), [], "'search.ipcs'"),
    (study(grid={"init": []}), [], "'grid.init'"),
    (study(grid={"init": "noise"}), [], "'grid.init'"),
    (study(grid={"colour": ["red"]}), [], "'grid.colour'"),
    (study(objectives=[{"metric": "acc_mean", "mode": "up"}]), [], "'objectives[0].mode'"),
    (study(objectives=[]), [], "'objectives'"),
    (study(objectives=[{"metric": "acc_mean"}]), [], "'objectives[0]'"),
    (study(resources={"cpu": 0}), [], "'resources.cpu'"),
    (study(resources={"tpu": 1}), [], "'resources.tpu'"),
    (study(resources={"cpu": "one"}), [], "'resources.cpu'"),
    (study(scheduler={"name": "asha", "reduction_factor": 1}), [],
     "'scheduler.reduction_factor'"),
    (study(scheduler={"name": "asha", "grace_period": 0}), [], "'scheduler.grace_period'"),
    (study(scheduler={"name": "asha", "brackets": 2}), [], "'scheduler.brackets'"),
    (study(confirm={"top": 0}), [], "'confirm.top'"),
    (study(confirm={"protocol": "dc"}), [], "'confirm.protocol'"),
    (study(confirm={"also_archs": ["Transformer"]}), [], "'confirm.also_archs'"),
    (study(confirm={"networks": 5}), [], "'confirm.networks'"),
    (study(fixed={"eval_models": 0, "eval_epochs": None}), [], "'eval_models'"),  # acc_mean
    (study(fixed={"iterations": 3}), [], "'fixed.eval_at'"),
    (study(), ["trials=x"], "'trials'"),
    (study(), ["name=a/b"], "'name'"),
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


UNREADABLE = [  # (file, its bytes, what the message says)
    ("broken.yaml", b"name: a\nfixed: {iterations: [1, 2\n", "valid YAML"),
    ("twice.yaml", b"name: a\nfixed: {iterations: 2, eval_at: [2], iterations: 3}\n",
     "'iterations' given twice"),  # YAML alone keeps the last silently
    ("picture.yaml", b"\x89PNG\r\n\x1a\n\x00\xff\xfe", "not text"),
]


@pytest.mark.parametrize("name, content, says", UNREADABLE, ids=[u[0] for u in UNREADABLE])
def test_study_files_that_cannot_be_read_as_a_study(name, content, says, tmp_path, capsys):
    path = tmp_path / name
    path.write_bytes(content)
    message = refused(["study", "launch", str(path), "--storage", str(tmp_path / "s")], capsys)
    assert name in message and says in message
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


FOLDERS_MORE = [  # a folder (or launch.json) raygm cannot use, and what the message says
    ("launch.json", "{not json", "not valid JSON"),
    ("launch.json", '{"version": 9, "storage": "/s", "data_dir": "/d", "resources": {}}',
     "newer raygm"),
    ("launch.json", '{"storage": "/s", "data_dir": "/d", "resources": {}, "colour": 1}',
     "unknown keys colour"),
]


@pytest.mark.parametrize("action", ["status", "resume", "export"])
@pytest.mark.parametrize("name, text, says", FOLDERS_MORE, ids=["json", "version", "key"])
def test_study_folders_with_a_launch_json_raygm_cannot_read(action, name, text, says, tmp_path,
                                                            capsys):
    folder = fake_study_folder(tmp_path, "name: a\nfixed: {iterations: 2, eval_at: [2]}\n")
    (folder / name).write_text(text)
    before = snapshot(tmp_path)
    argv = ["export", str(folder)] if action == "export" else ["study", action, str(folder)]
    message = refused(argv, capsys)
    assert says in message and "launch.json" in message and "Traceback" not in message
    assert snapshot(tmp_path) == before


def test_storage_that_is_a_file(data, tmp_path, capsys):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(STUDY))
    (tmp_path / "file").write_text("mine")
    message = refused(["study", "launch", str(path), "--storage", str(tmp_path / "file"),
                       "--data-dir", data, "--no-download"], capsys)
    assert "--storage" in message and "is a file" in message
    assert (tmp_path / "file").read_text() == "mine"


def test_a_second_launch_of_a_study_being_launched(data, tmp_path, capsys):
    """The first launch has taken the name (its marker) but Ray Tune has not yet written
    anything: the second is refused before Ray starts."""
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(STUDY))
    (tmp_path / "studies" / "bad").mkdir(parents=True)
    (tmp_path / "studies" / "bad" / ".raygm").write_text("raygm study folder")
    before = snapshot(tmp_path)
    message = refused(["study", "launch", str(path), "--storage", str(tmp_path / "studies"),
                       "--data-dir", data, "--no-download"], capsys)
    assert "exists" in message and "raygm study resume" in message
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("content", ["notes", "study", "cwd"])
def test_overwrite_replaces_only_a_run_folder_raygm_wrote(content, data, tmp_path, capsys,
                                                          monkeypatch):
    """--overwrite never clears someone's files, a study's folder or the working directory."""
    out = tmp_path / "out"
    out.mkdir()
    if content == "notes":
        (out / "thesis.tex").write_text("three years of work")
    elif content == "study":
        (out / ".raygm").write_text("raygm study folder")
        (out / "launch.json").write_text("{}")
    else:
        (out / "thesis.tex").write_text("three years of work")
        monkeypatch.chdir(out)
    before = snapshot(out)
    target = "." if content == "cwd" else str(out)
    message = refused(["distill", "--data-dir", data, "--no-download", "--out", target,
                       "--overwrite", "--iterations", "1"], capsys)
    assert "--out" in message and ("did not write" in message or "a raygm study folder" in
                                   message or "working directory" in message)
    assert snapshot(out) == before


def test_evaluate_with_an_unknown_architecture(tmp_path, capsys):
    folder = fake_study_folder(tmp_path, "name: a\nfixed: {iterations: 2, eval_at: [2]}\n")
    message = refused(["evaluate", str(folder), "--archs", "ConvNet,Transformer"], capsys)
    assert "Transformer" in message and "ConvNet" in message and "Traceback" not in message


@pytest.mark.parametrize("flags, named", [
    (["--trials", "top:3"], "--trials"), (["--trials", "best:0"], "--trials"),
    (["--where", "model"], "--where"), (["--where", "=MLP"], "--where"),
    (["--where", "model=[MLP"], "--where"), (["--models", "0"], "--models"),
    (["--protocol", "dc"], "--protocol"), (["--epochs", "-5"], "--epochs")])
def test_evaluate_flags(flags, named, tmp_path, capsys):
    folder = fake_study_folder(tmp_path, "name: a\nfixed: {iterations: 2, eval_at: [2]}\n")
    before = snapshot(tmp_path)
    message = refused(["evaluate", str(folder), *flags], capsys)
    assert named in message and "Traceback" not in message
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("argv, named", [
    (["export", "{folder}", "--to", ""], "--to"),
    (["study", "status", "{nothing}"], "holds no Ray Tune study"),
    (["study", "resume", "{nothing}"], "holds no Ray Tune study"),
    (["export", "{nothing}"], "holds no Ray Tune study"),
    (["evaluate", "{nothing}"], "holds no Ray Tune study")])
def test_folders_that_are_not_studies(argv, named, tmp_path, capsys):
    folder = fake_study_folder(tmp_path, "name: a\nfixed: {iterations: 2, eval_at: [2]}\n")
    argv = [a.format(folder=folder, nothing=tmp_path / "nothing") for a in argv]
    message = refused(argv, capsys)
    assert named in message and "Traceback" not in message


def test_an_address_where_no_ray_cluster_answers(data, tmp_path, capsys):
    """ray.init would wait minutes there; the launch says so at once and writes nothing."""
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(STUDY))
    message = refused(["study", "launch", str(path), "--storage", str(tmp_path / "studies"),
                       "--data-dir", data, "--no-download", "--address", "127.0.0.1:1"], capsys)
    assert "--address 127.0.0.1:1: no Ray cluster answers there" in message
    assert not (tmp_path / "studies").exists()


def test_status_of_a_search_whose_optuna_database_is_broken(tmp_path, capsys):
    folder = fake_study_folder(tmp_path, "name: a\nfixed: {iterations: 2, eval_at: [2]}\n"
                                         "search: {lr_img: {loguniform: [0.01, 1.0]}}\n"
                                         "trials: 2\n")
    (folder / "launch.json").write_text(json.dumps(
        {"storage": str(tmp_path / "studies"), "data_dir": "/d", "resources": {"cpu": 1}}))
    (folder / "optuna.db").write_bytes(b"not a database at all" * 100)
    from raygm.studies import status
    with pytest.raises(LaunchError, match="Optuna storage sqlite:///.*optuna.db cannot be read"):
        status.pareto_front(str(folder))


def test_status_of_a_study_launched_but_not_yet_started(tmp_path, capsys):
    """The launch has taken the folder (its marker, study.yaml, launch.json) but Ray Tune has
    written nothing yet, or the launch was killed then: status says what to do."""
    folder = tmp_path / "studies" / "early"
    folder.mkdir(parents=True)
    (folder / ".raygm").write_text("raygm study folder")
    message = refused(["study", "status", str(folder)], capsys)
    assert "has not yet written its first snapshot" in message and "resume" in message


def test_storage_this_user_cannot_write(data, tmp_path, capsys, monkeypatch):
    """A read-only --storage (as root every folder is writable, so the permission check is
    what is made to fail here)."""
    import os

    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(STUDY))
    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if str(p) == str(locked)
                        else real_access(p, mode))
    message = refused(["study", "launch", str(path), "--storage", str(locked / "studies"),
                       "--data-dir", data, "--no-download"], capsys)
    assert f"--storage {locked / 'studies'}: {locked} is not writable by this user" in message
    assert list(locked.iterdir()) == []
