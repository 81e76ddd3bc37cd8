"""docs/results.md from a hand-made committed results folder: a models study (3 models x 5
paired seeds) whose confirmation evaluated every set on its own network and on ConvNet."""
import math
import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scipy import stats

from analysis import results_page
from analysis.page_stats import verdict
from raygm.core.eval_protocol import dc_rule

from test_analysis import write_results

SEEDS = range(5)
# own-network accuracy: MLP well below ConvNet (as the seed found), LeNet above (it did not)
OWN = {"ConvNet": 0.80, "MLP": 0.60, "LeNet": 0.85}
ON_CONVNET = {"ConvNet": 0.80, "MLP": 0.78, "LeNet": 0.79}


def shift(seed):
    """What a seed's shared random numbers do to every model alike (cancels when paired)."""
    return 0.04 * math.sin(2 * seed + 1)


def noise(model, seed):
    return 0.003 * math.cos(5 * seed + len(model))


@pytest.mark.parametrize("seed_difference, low, high, expected", [
    (-26.6, -22.0, -18.0, "holds"), (-26.6, 1.0, 4.0, "does not hold"),
    (-26.6, -3.0, 2.0, "cannot tell at this budget"), (1.8, 0.5, 3.0, "holds"),
    (math.nan, 1.0, 2.0, "no claim")])
def test_verdicts_judge_the_direction_of_the_seeds_difference(seed_difference, low, high,
                                                              expected):
    assert verdict(seed_difference, low, high) == expected


def write_models_study(results, name, dataset, own, overrides=()):
    """A committed models study: 5 paired seeds per model, confirmed on each set's own
    network and on ConvNet; own: model -> own-network accuracy."""
    trials = [{"trial_id": f"{m}_{s}",
               "config": {"model": m, "seed": s, "iterations": 4, "dataset": dataset},
               "status": "TERMINATED", "iterations": 4,
               "acc": {0: 0.1, 4: own[m] + shift(s) - 0.02}, "losses": lambda i: [1.0] * 10}
              for m in own for s in SEEDS]
    study = {"name": name, "kind": "grid", "factors": ["model"],
             "objectives": [{"metric": "acc_mean", "mode": "max"}],
             "space": {"model": {"grid": list(own)}}, "repeats": 5,
             "resources": {"cpu": 1, "gpu": 0}, "machine": "Test CPU (no AMX-BF16), 2 CPUs",
             "launched": {"study_file": "studies/models_test.yaml", "overrides": list(overrides)}}
    folder = write_results(results / name, study, trials)
    rows = []
    for m in own:
        for s in SEEDS:
            for arch in dict.fromkeys((m, "ConvNet")):  # its own network and ConvNet
                acc = (own if arch == m else ON_CONVNET)[m] + shift(s) + noise(m + arch, s)
                rule = dc_rule(dataset, arch, "instancenorm", "none")
                rows.append({"study": name, "trial_id": f"{m}_{s}", "model": m,
                             "dataset": dataset, "protocol": "full", "networks": 5,
                             "epochs": rule.epochs, "augment": rule.augment, "arch": arch, "iteration": 4, "acc_mean": acc,
                             "acc_std": 0.01, "accs": [acc] * 5, "seconds_per_model": 36.0})
    pq.write_table(pa.Table.from_pylist(rows), folder / "evaluations.parquet")
    return pd.DataFrame(rows)


@pytest.fixture
def committed(tmp_path):
    (tmp_path / "results").mkdir()
    return tmp_path, write_models_study(tmp_path / "results", "models_test", "MNIST", OWN)


def paired(evaluations, model, arch):
    def values(m, a):
        rows = evaluations[(evaluations.model == m) & (evaluations.arch == a)]
        return 100 * rows.sort_values("trial_id").acc_mean.to_numpy()
    return values(model, arch) - values("ConvNet", "ConvNet")


def test_the_page_answers_the_models_question(committed):
    root, evaluations = committed
    path = results_page.page(root / "results", root / "docs")
    text = path.read_text()
    # the question's table comes first
    mlp = next(line for line in text.splitlines() if line.startswith("| MLP |"))
    lenet = next(line for line in text.splitlines() if line.startswith("| LeNet |"))
    convnet = next(line for line in text.splitlines() if line.startswith("| ConvNet |"))
    assert convnet.rstrip(" |").endswith("| reference") and "91.7" in convnet
    d = paired(evaluations, "MLP", "MLP")
    half = stats.t.ppf(0.975, 4) * d.std(ddof=1) / math.sqrt(5)
    assert f"{d.mean():+.1f} [{d.mean() - half:+.1f}, {d.mean() + half:+.1f}], paired t-test " \
           "(n=5 pairs)" in mlp
    assert mlp.rstrip(" |").endswith("holds") and "57.1" in mlp
    assert lenet.rstrip(" |").endswith("| does not hold")
    # on ConvNet, MLP-matched sets are 2 points below: the second difference column
    on_convnet = paired(evaluations, "MLP", "ConvNet")
    assert mlp.split("|")[-3].strip().startswith(f"{on_convnet.mean():+.1f} [")
    own = 100 * np.array([OWN["MLP"] + shift(s) + noise("MLPMLP", s) for s in SEEDS])
    assert f"{own.mean():.1f} ± " in mlp
    # budget: trials' wall seconds (distill 4 x (1 + 0.1 seed) + 5) and the evaluations' time
    wall = sum(4 * (1 + 0.1 * s) + 5 for s in SEEDS) * 3
    assert f"{(wall + 36 * 5 * len(evaluations)) / 3600:.1f} core-hours on Test CPU" in text
    for image in re.findall(r"!\[[^]]*\]\(([^)]+)\)", text):
        assert (path.parent / image).stat().st_size > 0, image
    # the seed's other ordering (MLP above LeNet by 10.9) and its numbers against the CIs
    assert "- **MLP vs LeNet** (own architecture): the seed measured +10.9 pp" in text
    assert next(line for line in text.splitlines()
                if line.startswith("- **MLP vs LeNet**")).endswith("*does not hold*.")
    assert re.search(r"- The seed's own numbers lie .*below raygm's 95% CI for [^;]*LeNet "
                     r"\(46.2 vs 85.9\)", text)
    for figure in ("final_model_full_acc_mean_own.png", "final_model_full_acc_mean_ConvNet.png",
                   "curves_model.png", "class_loss_model.png", "montage_model.png",
                   "montage_model_initial.png"):
        assert f"(results/models_test/{figure})" in text


def test_an_empty_results_folder_says_so(tmp_path):
    (tmp_path / "results").mkdir()
    text = results_page.page(tmp_path / "results", tmp_path / "docs").read_text()
    assert "No study under" in text


def test_the_page_says_whether_an_answer_carries_over_to_another_dataset(committed):
    """On 'FashionMNIST' MLP stays below ConvNet, LeNet drops below it, and nothing else is
    known: yes for MLP, no for LeNet."""
    root, _ = committed
    write_models_study(root / "results", "fashion_test", "FashionMNIST",
                       {"ConvNet": 0.70, "MLP": 0.55, "LeNet": 0.60},
                       ["dataset=FashionMNIST", "seed=100"])
    text = results_page.page(root / "results", root / "docs").read_text()
    carry = text[text.index("## Does it carry over?"):]
    assert "MNIST (`models_test`) and FashionMNIST (`fashion_test`)" in carry
    rows = {tuple(c.strip() for c in line.split("|")[1:3]): line.split("|")[-2].strip()
            for line in carry.splitlines() if line.startswith("| ") and "---" not in line}
    assert rows["MLP", "own architecture"] == "yes" and rows["LeNet", "own architecture"] == "no"
    # on ConvNet: MNIST's MLP sets 2 pp below ConvNet's, FashionMNIST's 8 pp above (the
    # ConvNet sets there score 70 on ConvNet, the MLP sets ON_CONVNET's 78)
    assert rows["MLP", "on ConvNet"] == "no"
    # the seed ran MNIST only: no seed numbers, hence no verdict, on FashionMNIST; DC's 70.5
    fashion = text[text.index("(`fashion_test`, FashionMNIST)"):text.index("## Does it")]
    convnet = next(line for line in fashion.splitlines() if line.startswith("| ConvNet |"))
    assert "70.5" in convnet and "83.7" not in convnet
    assert ("Launched as `raygm study launch studies/models_test.yaml --set 'dataset=FashionMNIST'"
            " --set 'seed=100'`") in fashion
    assert next(line for line in fashion.splitlines()
                if line.startswith("| MLP |")).rstrip(" |").endswith("no claim")


# init study: the screen's accuracy per init; only the best 3 were confirmed
INIT_SCREEN = {"noise": 0.84, "real": 0.86, "black": 0.70, "white": 0.78, "grey": 0.80,
               "seed_zeros": 0.83, "seed_ones": 0.60, "seed_half": 0.75}
CONFIRMED = ("noise", "real", "seed_zeros")


def jitter(init, s, phase=0):
    return 0.003 * math.cos(5 * s + list(INIT_SCREEN).index(init) + phase)


def full(init, s):
    return INIT_SCREEN[init] + 0.05 + shift(s) + jitter(init, s, phase=1)


def write_init_study(results, name, dataset, confirmed):
    """An init study (every init, 5 paired seeds, screened), `confirmed` inits also under
    DC's full protocol for the dataset."""
    trials = [{"trial_id": f"{init}_{s}",
               "config": {"model": "ConvNet", "init": init, "seed": s, "iterations": 4,
                          "eval_at": [0, 4], "dataset": dataset},
               "status": "TERMINATED", "iterations": 4,
               "acc": {0: 0.1, 4: acc + shift(s) + jitter(init, s)},
               "losses": lambda i: [1.0] * 10}
              for init, acc in INIT_SCREEN.items() for s in SEEDS]
    # a list-valued factor first (eval_at, as a grid union sets it): the confirmed sets are
    # told apart by init, where they differ from all sets
    study = {"name": name, "kind": "grid", "factors": ["eval_at", "init"],
             "objectives": [{"metric": "acc_mean", "mode": "max"}],
             "space": {"init": {"grid": list(INIT_SCREEN)}}, "repeats": 5,
             "resources": {"cpu": 1, "gpu": 0}, "machine": "Test CPU"}
    folder = write_results(results / name, study, trials)
    rule = dc_rule(dataset, "ConvNet", "instancenorm", "none")
    rows = [{"study": name, "trial_id": f"{init}_{s}", "model": "ConvNet",
             "protocol": "full", "networks": 5, "epochs": rule.epochs, "augment": rule.augment,
             "arch": "ConvNet", "iteration": 4, "acc_mean": full(init, s),
             "acc_std": 0.01, "accs": [0.0] * 5, "seconds_per_model": 36.0}
            for init in confirmed for s in SEEDS]
    pq.write_table(pa.Table.from_pylist(rows), folder / "evaluations.parquet")


def test_a_partly_confirmed_study_is_answered_by_its_screen(tmp_path):
    """Only the screen's best 3 inits were confirmed: every init gets the screen's mean and
    verdict, the confirmed ones also the full protocol's, the others n/a there."""
    results = tmp_path / "results"
    results.mkdir()
    write_init_study(results, "init_test", "MNIST", CONFIRMED)
    text = results_page.page(results, tmp_path / "docs").read_text()
    header = next(line for line in text.splitlines() if line.startswith("| init |"))
    assert header.index("raygm, screen %") < header.index("raygm, confirmed %")
    assert "confirmed: the sets with init noise, real or seed_zeros under the full protocol" \
        in text and "screen: the study's own evaluation of every set" in text
    lines = text[text.index(header):].split("\n\n")[0].splitlines()[2:]  # the question's
    table = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
             for line in lines}
    names = [c.strip() for c in header.split("|")[2:-1]]
    column = {name: names.index(name) for name in names}
    for init in INIT_SCREEN:
        screen = np.array([100 * (INIT_SCREEN[init] + shift(s) + jitter(init, s)) for s in SEEDS])
        assert table[init][column["raygm, screen %"]].startswith(f"{screen.mean():.1f} ± ")
        assert (table[init][column["raygm, confirmed %"]] == "n/a") == (init not in CONFIRMED)
    # the seed's seed_zeros (9.5 vs noise 82.6) is judged on the screen: 1 pp below noise,
    # with the seed-to-seed shift cancelled by pairing
    assert table["seed_zeros"][-1] == "holds"
    real = np.mean([100 * (full("real", s) - full("noise", s)) for s in SEEDS])
    assert table["real"][column["difference to noise, confirmed (pp)"]].startswith(f"{real:+.1f} [")
    assert table["black"][column["difference to noise, confirmed (pp)"]] == "n/a"
    assert "final_init_full_acc_mean_own.png" in text and "montage_init_initial.png" in text


# Hessian study: per model, none at 4 and at 12 iterations (the terms' seconds) and three
# terms at 4; on MLP every term beats none at 4 iterations by 3 points, none at 12 beats
# them by 2 more; on ConvNet nothing moves
TERMS = {"none": ("none", "gauss_newton", 0.0, 4), "none, 12 iterations": ("none", "gauss_newton", 0.0, 12),
         "curvature (exact)": ("curvature", "exact", 1e-3, 4),
         "curvature (gauss_newton)": ("curvature", "gauss_newton", 1e-3, 4),
         "hvp": ("hvp", "gauss_newton", 1e-5, 4)}
GAIN = {"MLP": {"none": 0.0, "none, 12 iterations": 0.05}, "ConvNet": {}}


def hessian_accuracy(model, term, seed):
    gain = GAIN[model].get(term, 0.03 if model == "MLP" else 0.0)
    return 0.6 + 0.2 * (model == "ConvNet") + gain + shift(seed) + jitter("noise", seed,
                                                                          len(term))


def write_hessian_study(results, name, weights=(None,), diverged=None):
    """diverged: a trial whose matching loss is NaN from iteration 2 on."""
    trials = [{"trial_id": f"{model}_{term}_{weight}_{s}".replace(" ", "_"),
               "config": {"model": model, "hessian": mode, "hessian_curvature": kind,
                          "hessian_weight": weight or w, "iterations": iterations, "seed": s},
               "status": "TERMINATED", "iterations": iterations,
               "distill_seconds": 12.0 + s if mode != "none" or iterations == 12 else 4.0 + s,
               "acc": {iterations: hessian_accuracy(model, term, s) + (weight or 0)},
               "losses": lambda i, t=f"{model}_{term}_{weight}_{s}".replace(" ", "_"):
                   [math.nan if t == diverged and i >= 2 else 1.0] * 10}
              for model in GAIN for term, (mode, kind, w, iterations) in TERMS.items()
              for weight in (weights if mode != "none" else (None,)) for s in SEEDS]
    study = {"name": name, "kind": "grid",
             "factors": ["model", "hessian", "hessian_curvature", "hessian_weight", "iterations",
                         "eval_at"],  # eval_at: a list per trial, as the sweep's grid sets it
             "objectives": [{"metric": "acc_mean", "mode": "max"}], "repeats": 5,
             "resources": {"cpu": 1, "gpu": 0}, "machine": "Test CPU"}
    write_no_evaluations(write_results(results / name, study, trials))


def write_no_evaluations(folder):
    """An evaluations.parquet without rows: nothing was re-evaluated."""
    pq.write_table(pa.Table.from_pylist([], schema=pa.schema(
        [("trial_id", pa.string()), ("protocol", pa.string()), ("arch", pa.string()),
         ("model", pa.string()), ("epochs", pa.int64()), ("networks", pa.int64()),
         ("augment", pa.string()), ("acc_mean", pa.float64()),
         ("seconds_per_model", pa.float64())])), folder / "evaluations.parquet")


def question_table(text, heading):
    part = text[text.index(heading):]
    header = next(line for line in part.splitlines() if line.startswith("| hessian |"))
    names = [c.strip() for c in header.split("|")[2:-1]]
    lines = part[part.index(header):].split("\n\n")[0].splitlines()[2:]
    return {line.split("|")[1].strip(): dict(zip(names, (c.strip() for c in line.split("|")[2:-1])))
            for line in lines}


def test_the_page_answers_the_hessian_question_per_model_at_equal_iterations_and_seconds(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    write_hessian_study(results, "hessian_test")
    path = results_page.page(results, tmp_path / "docs")
    text = path.read_text()
    mlp = question_table(text, "Does a higher-order (Hessian) term help? On MLP")
    convnet = question_table(text, "Does a higher-order (Hessian) term help? On ConvNet")
    assert set(mlp) == set(TERMS)
    exact = mlp["curvature (exact)"]
    # the seed's MLP claim (57.1 -> 63.6) holds at equal iterations, not at equal seconds
    assert exact["seed study %"] == "63.6" and mlp["none"]["seed study %"] == "57.1"
    assert exact["difference to none, screen (pp)"].startswith("+3.0 [")
    assert "paired t-test (n=5 pairs)" in exact["difference to none, screen (pp)"]
    assert exact["verdict on the seed's claim"] == "holds"
    assert exact["verdict vs none, 12 iterations"] == "does not hold"
    assert exact["difference to none, 12 iterations, screen (pp)"].startswith("-2.0 [")
    assert (exact["iterations"], exact["λ"]) == ("4", "0.001")
    assert mlp["none, 12 iterations"]["distillation s"] == "14"  # 12 + mean seed 2
    assert convnet["hvp"]["verdict on the seed's claim"] == "cannot tell at this budget"
    for figure in ("final_term.png", "cost_term.png", "curves_term.png"):
        assert f"(results/hessian_test/MLP/{figure})" in text
    for image in re.findall(r"!\[[^]]*\]\(([^)]+)\)", text):
        assert (path.parent / image).stat().st_size > 0, image
    assert "Does it carry over?" not in text
    # at a glance, at the top: one line per model, the first difference with its CI's way
    glance = text[text.index("## At a glance"):text.index("## Does a higher-order")]
    line = next(x for x in glance.splitlines() if ", model MLP (`hessian_test`" in x)
    mean, ci = exact["difference to none, screen (pp)"].split("]")[0].split(" [")
    assert f"curvature (exact) {mean} pp [{ci}] (higher)" in line and "vs none" in line
    assert text.index("## At a glance") < text.index("## Does a higher-order")


def test_a_lambda_sweep_chooses_each_terms_best_lambda(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    write_hessian_study(results, "hessian_sweep_test", weights=(0.001, 0.01))
    text = results_page.page(results, tmp_path / "docs").read_text()
    assert "The λ sweep (`hessian_sweep_test`, MNIST)" in text
    # accuracy grows with λ in this sweep: every term chooses 0.01
    for model in GAIN:
        for term in ("curvature (exact)", "curvature (gauss_newton)", "hvp"):
            line = next(l for l in text.splitlines() if l.startswith(f"- {model}, {term}: λ = "))
            assert line.startswith(f"- {model}, {term}: λ = 0.01 (")
            assert line.endswith(", n=5), at the edge of the λ tried")  # 0.01 is the largest
    assert "(results/hessian_sweep_test/lambda_accuracy.png)" in text
    assert "verdict" not in text.split("The λ sweep")[1]


SELECTED = {"real": 0.60, "herding": 0.80, "kcenter": 0.78}
DSA = "color_crop_cutout_scale_rotate"
DISTILLED = {"none": 0.85, DSA: 0.87}


def write_grid(results, name, factor, accuracy, iterations, seeds=SEEDS):
    """A grid over one factor, paired seeds, screened only."""
    trials = [{"trial_id": f"{level}_{s}",
               "config": {factor: level, "seed": s, "iterations": iterations,
                          "eval_at": sorted({0, iterations})},
               "status": "TERMINATED", "iterations": iterations,
               "acc": {iterations: acc + shift(s) + jitter("noise", s, len(level))},
               "losses": lambda i: [1.0] * 10}
              for level, acc in accuracy.items() for s in seeds]
    study = {"name": name, "kind": "grid", "factors": [factor],
             "objectives": [{"metric": "acc_mean", "mode": "max"}], "repeats": 5,
             "resources": {"cpu": 1, "gpu": 0}, "machine": "Test CPU"}
    write_no_evaluations(write_results(results / name, study, trials))


def test_table_one_sets_selections_dc_and_dsa_beside_the_published_numbers(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    write_grid(results, "baselines_test", "init", SELECTED, 0)
    write_grid(results, "dsa_test", "dsa", DISTILLED, 4)
    write_grid(results, "short_test", "dsa", DISTILLED, 2, seeds=SEEDS[:2])  # too few seeds
    text = results_page.page(results, tmp_path / "docs").read_text()
    table = text[text.index("## DC's Table 1"):]
    assert "short_test" not in table
    header = next(line for line in table.splitlines() if line.startswith("| method |"))
    names = [c.strip() for c in header.split("|")[1:-1]]
    rows = {}
    for line in table[table.index(header):].split("\n\n")[0].splitlines()[2:]:
        row = dict(zip(names, (c.strip() for c in line.split("|")[1:-1])))
        rows[row["method"]] = row
    assert list(rows) == ["random", "herding", "k-center", "DC", "DSA"]
    for method, level, accuracy in [("random", "real", SELECTED), ("k-center", "kcenter", SELECTED),
                                    ("DSA", DSA, DISTILLED)]:
        values = [100 * (accuracy[level] + shift(s) + jitter("noise", s, len(level)))
                  for s in SEEDS]
        assert rows[method]["MNIST, raygm %"].startswith(f"{np.mean(values):.1f} ± ")
    assert rows["random"]["MNIST, published %"] == "64.9" and rows["DSA"]["budget"] == \
        "4 iterations, batch_real 256"
    assert rows["k-center"]["MNIST, published %"] == "n/a"
    # at ipc 1 the two selections coincide: said where both rows are shown, and only there
    assert "so their rows hold the same sets" in table
    assert "same sets" not in results_page.table_one([results / "dsa_test"])
    assert rows["herding"]["budget"] == "selected, not distilled"
    # the baselines are not an answer to the init question; DSA's is judged on the papers'
    assert "How to initialise" not in text
    dsa = question_row(text, "| dsa |", DSA)
    assert dsa["published %"] == "88.7" and dsa["verdict on the published claim"] == \
        "does not hold"  # the papers: DSA 3.0 below DC; here 2 above
    assert "- **color_crop_cutout_scale_rotate vs none** (screen): the papers measured -3.0 pp" \
        " (published means, 1000 iterations)" in text


def question_row(text, header_start, level):
    header = next(line for line in text.splitlines() if line.startswith(header_start))
    names = [c.strip() for c in header.split("|")[1:-1]]
    for line in text[text.index(header):].split("\n\n")[0].splitlines()[2:]:
        row = dict(zip(names, (c.strip() for c in line.split("|")[1:-1])))
        if row[names[0]] == level:
            return row


def test_a_study_re_evaluated_after_the_protocol_correction(committed):
    """FashionMNIST sets confirmed under the earlier rule (crop/scale/rotate, 1000 epochs)
    and again under DC's (none, 300): the tables read the new evaluations only; the page's
    last section lists old -> new per configuration; the budget names DC's rule."""
    root, _ = committed
    new = write_models_study(root / "results", "fashion_test", "FashionMNIST",
                             {"ConvNet": 0.70, "MLP": 0.55, "LeNet": 0.60})
    old = new.assign(epochs=1000, augment="dc", acc_mean=new.acc_mean - 0.04)
    folder = root / "results" / "fashion_test"
    pq.write_table(pa.Table.from_pandas(pd.concat([old, new]), preserve_index=False),
                   folder / "evaluations.parquet")
    text = results_page.page(root / "results", root / "docs").read_text()
    fashion = text[text.index("(`fashion_test`, FashionMNIST)"):text.index("## Does it")]
    assert "full protocol: DC's protocol for FashionMNIST: no augmentation, 300 epochs" in fashion
    assert "augmentation dc" not in fashion and "1000 epochs" not in fashion
    # the ConvNet row reports the new evaluations (70 % and shift), not the old (4 pp less)
    expected = 100 * np.mean([0.70 + shift(s) + noise("ConvNetConvNet", s) for s in SEEDS])
    convnet = next(line for line in fashion.splitlines() if line.startswith("| ConvNet |"))
    assert f"{expected:.1f} ±" in convnet and f"{expected - 4:.1f} ±" not in convnet
    correction = text[text.index("## Protocol correction"):]
    rows = {tuple(c.strip() for c in line.split("|")[1:3]): line.split("|")[-2].strip()
            for line in correction.splitlines() if line.startswith("| ") and "---" not in line}
    assert set(rows) - {("model", "evaluated on")} == {
        ("ConvNet", "ConvNet"), ("LeNet", "ConvNet"), ("LeNet", "LeNet"), ("MLP", "ConvNet"),
        ("MLP", "MLP")}
    assert all(change == "+4.0" for key, change in rows.items() if key[0] != "model")
    assert "the last section lists the numbers that changed" in text
    # MNIST's sets were evaluated under today's rule: no correction for them
    assert "`models_test`" not in correction


def test_sets_no_full_protocol_network_learned_from_are_named_and_kept(committed):
    """A set whose every re-evaluation network ended at chance, though its screen learned."""
    tmp_path, evaluations = committed
    folder = tmp_path / "results" / "models_test"
    failed = (evaluations.trial_id == "MLP_3") & (evaluations.arch == "MLP")
    evaluations.loc[failed, "acc_mean"] = 0.1
    evaluations.loc[failed, "accs"] = pd.Series([[0.1, 0.1, 0.1, 0.1, 0.1]],
                                                index=evaluations.index[failed])
    pq.write_table(pa.Table.from_pandas(evaluations, preserve_index=False),
                   folder / "evaluations.parquet")
    text = results_page.page(tmp_path / "results", tmp_path / "docs").read_text()
    assert ("Collapsed: under the full protocol no network learned from MLP, seed 3 (on MLP: "
            "all 5 networks at ≤ 10.0 %, its screen") in text
    assert text.count("Collapsed") == 1  # not MLP on ConvNet, nor the other sets


def test_sets_whose_matching_loss_diverged_are_named_and_kept(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    write_hessian_study(results, "hessian_test", diverged="MLP_hvp_None_3")
    text = results_page.page(results, tmp_path / "docs").read_text()
    mlp = text[text.index("term help? On MLP"):]
    convnet = text[text.index("term help? On ConvNet"):text.index("term help? On MLP")]
    assert "Diverged: the matching loss became non-finite for hvp, seed 3 (from iteration 2)." \
        in mlp and "Diverged" not in convnet
    assert question_table(text, "term help? On MLP")["hvp"]["raygm, screen %"].endswith("(n=5)")


def test_a_cross_architecture_evaluation_gets_its_table_and_leaves_the_question_alone(committed):
    """`raygm evaluate --archs ... --protocol study` of every set: the page shows the
    matched-on x evaluated-on table with CIs; the question's table still reports the full
    protocol's confirmation; a confirmation alone (own network and ConvNet) has no such table."""
    root, evaluations = committed
    before = results_page.page(root / "results", root / "docs").read_text()
    assert "## Cross-architecture" not in before
    seed = lambda row: int(row["trial_id"].split("_")[1])  # noqa: E731
    archs = ["MLP", "ConvNet", "LeNet", "AlexNet"]
    study = pd.DataFrame([{**row, "protocol": "study", "networks": 1, "epochs": 300,
                           "arch": arch, "acc_mean": 0.5 + 0.1 * archs.index(arch)
                           + shift(seed(row)) + noise(row["model"] + arch, seed(row)),
                           "accs": [0.5]}
                          for _, row in evaluations.iterrows() if row["arch"] == row["model"]
                          for arch in archs])
    folder = root / "results" / "models_test"
    pq.write_table(pa.Table.from_pandas(pd.concat([evaluations, study]), preserve_index=False),
                   folder / "evaluations.parquet")
    text = results_page.page(root / "results", root / "docs").read_text()
    assert text.split("## Cross-architecture")[0].rstrip() == before.rstrip()
    section = text.split("## Cross-architecture: `models_test`'s sets on MLP, ConvNet, LeNet, "
                         "AlexNet (study protocol)")[1]
    assert "1 network x 300 epochs per set" in section
    row = next(line for line in section.splitlines() if line.startswith("| LeNet |"))
    cell = 100 * np.array([0.8 + shift(s) + noise("LeNetAlexNet", s) for s in SEEDS])
    half = stats.t.ppf(0.975, 4) * cell.std(ddof=1) / math.sqrt(5)
    assert row.rstrip(" |").endswith(f"{cell.mean():.1f} ± {half:.1f} (n=5)")
    assert (root / "docs" / "results" / "models_test" / "cross_arch_study.png").stat().st_size


def test_a_fully_confirmed_study_carries_over_against_a_partly_confirmed_one(tmp_path):
    """MNIST's init study confirmed its best 3 inits, FashionMNIST's all of them: the
    carry-over table compares the full protocol's differences of the inits both confirmed."""
    results = tmp_path / "results"
    results.mkdir()
    write_init_study(results, "init_test", "MNIST", CONFIRMED)
    write_init_study(results, "fashion_init_test", "FashionMNIST", list(INIT_SCREEN))
    text = results_page.page(results, tmp_path / "docs").read_text()
    carry = text[text.index("## Does it carry over? How to initialise"):]
    rows = [line.split("|")[1:3] for line in carry.split("\n\n")[1].splitlines()[2:]]
    assert sorted((init.strip(), how.strip()) for init, how in rows) == sorted(
        (init, "own architecture") for init in CONFIRMED if init != "noise")


def budget_line(tmp_path, name: str, config: dict, more_trials=()) -> str:
    """The budget line of the page of a two-init study (5 seeds each) with config."""
    results = tmp_path / "results"
    results.mkdir()
    trials = [{"trial_id": f"{init}_{s}",
               "config": {"init": init, "seed": s, "iterations": 4, "eval_at": [0, 4], **config},
               "status": "TERMINATED", "iterations": 4, "acc": {4: acc + shift(s)},
               "losses": lambda i: [1.0] * 10}
              for init, acc in (("noise", 0.7), ("real", 0.72)) for s in SEEDS]
    study = {"name": name, "kind": "grid", "factors": ["init"],
             "objectives": [{"metric": "acc_mean", "mode": "max"}], "repeats": 5,
             "resources": {"cpu": 1, "gpu": 0}, "machine": "Test CPU"}
    write_no_evaluations(write_results(results / name, study, [*trials, *more_trials]))
    text = results_page.page(results, tmp_path / "docs").read_text()
    return next(line for line in text.splitlines() if line.startswith("Budget:"))


def test_the_budget_says_when_a_study_chose_its_screens_augmentation(tmp_path):
    """eval_augment set by the study (here DC's crop/scale/rotate on FashionMNIST, whose rule
    is none): the budget line says so, beside the rule the full protocol follows."""
    budget = budget_line(tmp_path, "augment_test",
                         {"dataset": "FashionMNIST", "eval_augment": "dc"})
    assert ("at iterations [0, 4], augmentation dc as the study set it (eval_augment), not "
            "DC's rule; full protocol: DC's protocol for FashionMNIST: no augmentation, 300 "
            "epochs;") in budget


def test_diverged_trials_are_counted_apart_not_averaged(tmp_path):
    """A trial that diverged has no accuracy to average: the budget line counts it, and the
    level's numbers come from the finished trials alone."""
    diverged = {"trial_id": "real_diverged", "config": {"init": "real", "seed": 99,
                                                       "iterations": 4, "eval_at": [0, 4]},
                "status": "DIVERGED", "iterations": 2, "acc": {},
                "losses": lambda i: [1.0] * 10}
    budget = budget_line(tmp_path, "diverged_test", {}, [diverged])
    assert "5 seeds per configuration" in budget
    assert budget.rstrip(".").endswith("; 1 more trial(s) diverged, counted apart")
