"""The analysis scripts on two hand-made RESULTS directories: a grid over `model` (2 levels x
3 seeds, plus one failed trial that must be left out) and a two-objective search over
hessian, λ and model. Numbers in report.md are checked against explicit formulas."""
import json
import math
import subprocess
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pandas as pd
import pytest
from scipy import stats

from analysis import class_loss, common, cost, curves, final, montage, pareto, report, search
from raygm.core import records
from raygm.studies.export import arrow_type

ANALYSIS = Path(__file__).resolve().parents[1] / "analysis"

CONFIG = {  # column: (type, value shared by every fixture trial)
    "dataset": (pa.string(), "MNIST"), "model": (pa.string(), "ConvNet"),
    "net_width": (pa.int64(), 128), "net_depth": (pa.int64(), 3),
    "net_act": (pa.string(), "relu"), "net_norm": (pa.string(), "instancenorm"),
    "net_pooling": (pa.string(), "avgpooling"), "ipc": (pa.int64(), 1),
    "init": (pa.string(), "noise"), "distance": (pa.string(), "ours"),
    "dsa": (pa.string(), "none"),
    "iterations": (pa.int64(), 4), "outer_loop": (pa.int64(), None),
    "inner_loop": (pa.int64(), None), "hessian": (pa.string(), "none"),
    "hessian_weight": (pa.float64(), 0.0), "hessian_probes": (pa.int64(), 1),
    "hessian_curvature": (pa.string(), "gauss_newton"), "lr_img": (pa.float64(), 0.1),
    "momentum_img": (pa.float64(), 0.5), "lr_net": (pa.float64(), 0.01),
    "batch_real": (pa.int64(), 256), "batch_train": (pa.int64(), 256),
    "bn_batch": (pa.int64(), 16), "eval_at": (pa.list_(pa.int64()), [0, 4]),
    "eval_models": (pa.int64(), 3), "eval_archs": (pa.list_(pa.string()), None),
    "eval_epochs": (pa.int64(), None), "eval_lr": (pa.float64(), 0.01),
    "eval_batch": (pa.int64(), 256), "eval_augment": (pa.string(), "auto"),
    "execution": (pa.string(), "compiled"), "seed": (pa.int64(), 0),
    "device": (pa.string(), "cuda"), "precision": (pa.string(), "fp32"),
}
ARCHS = ("ConvNet", "MLP")
CLASSES = 10
ACCURACY = records.accuracy_columns(ARCHS)
# the export's own columns (after the config's), as analysis reads them
ITERATION_COLUMNS = {k: arrow_type(t) for k, t in records.iteration_columns(ARCHS, CLASSES).items()}
TRIAL_COLUMNS = {k: arrow_type(t) for k, t in records.trial_columns(ARCHS).items()}

T_975_2 = 4.302652729911275  # Student t 97.5% quantile, 2 degrees of freedom (3 seeds)
GRID_FINAL = {"ConvNet": [0.80, 0.84, 0.86], "MLP": [0.70, 0.75, 0.71]}


def class_loss_value(model, seed, c, iteration):
    return (c + 1) * (1 + seed) / iteration * (2 if model == "MLP" else 1)


def write_parquet(path, rows, columns):
    schema = pa.schema([("study", pa.string()), ("trial_id", pa.string())]
                       + [(k, t) for k, (t, _) in CONFIG.items()] + list(columns.items()))
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)


def accuracy(model, value):
    """acc_mean/std of the first architecture (the model) and its own acc_*_<model>."""
    return {"acc_mean": value, "acc_std": 0.01,
            f"acc_mean_{model}": value, f"acc_std_{model}": 0.01}


def write_results(root, study, trials):
    """trials: dicts with config overrides plus trial_id, status, error, finals (acc at each
    evaluated iteration), iterations, losses(iteration) -> per-class losses."""
    root.mkdir()
    trial_rows, iteration_rows = [], []
    for n, t in enumerate(trials):
        config = {k: v for k, (_, v) in CONFIG.items()} | t["config"]
        folder = root / "trials" / f"distill_trial_{t['trial_id']}_{n}_lr=0.1"  # as Tune names
        folder.mkdir(parents=True)
        distill, grids, evaluated = 0.0, [], {}
        for i in range(t["iterations"] + 1):
            if i == 0 and 0 not in t["acc"]:
                continue  # no row 0 without an evaluation at 0
            distill += 0.0 if i == 0 else 1.0 + 0.1 * config["seed"]
            losses = t["losses"](i) if i else [None] * CLASSES
            row = {"study": study["name"], "trial_id": t["trial_id"], **config, "iteration": i,
                   "loss": sum(losses) if i else None, "loss_first": sum(losses) if i else None,
                   "loss_higher": 0.0 if i else None,
                   **{f"loss_class_{c}": v for c, v in enumerate(losses)},
                   "seconds": 1.0 + 0.1 * config["seed"] if i else 0.0,
                   "distill_seconds": distill, "wall_seconds": distill + 5.0}
            if i in t["acc"]:
                row |= accuracy(config["model"], t["acc"][i])
                evaluated = accuracy(config["model"], t["acc"][i])
                grid = folder / f"grid_iter{i:05d}.png"
                plt.imsave(grid, np.random.default_rng(i).random((8, 20, 3)))
                grids.append(str(grid if t.get("absolute") else grid.relative_to(root)))
            iteration_rows.append(row)
        trial_rows.append({
            "study": study["name"], "trial_id": t["trial_id"], **config, **evaluated,
            "status": t["status"], "error": t.get("error"), "iterations_done": t["iterations"],
            "distill_seconds": t.get("distill_seconds", distill), "wall_seconds": distill + 5.0,
            "trial_dir": str(folder), "synthetic_path": None, "grid_paths": grids})
    write_parquet(root / "iterations.parquet", iteration_rows, ITERATION_COLUMNS)
    write_parquet(root / "trials.parquet", trial_rows, TRIAL_COLUMNS)
    (root / "study.json").write_text(json.dumps(study))
    return root


@pytest.fixture
def grid_results(tmp_path):
    """model x 3 seeds, evaluated at 0 and 4; MLP seed 3 failed after its iteration 4 (its
    only evaluation, at 0, and its losses must not count)."""
    trials = [{"trial_id": f"{model}_{seed}", "config": {"model": model, "seed": seed},
               "status": "TERMINATED", "iterations": 4, "absolute": model == "MLP",
               "acc": {0: 0.10 + 0.01 * seed, 4: GRID_FINAL[model][seed]},
               "losses": lambda i, m=model, s=seed: [class_loss_value(m, s, c, i)
                                                     for c in range(CLASSES)]}
              for model in ("ConvNet", "MLP") for seed in range(3)]
    trials.append({"trial_id": "MLP_3", "config": {"model": "MLP", "seed": 3}, "status": "ERROR",
                   "error": "RuntimeError: out of memory | in evaluation\nTraceback",
                   "iterations": 4, "acc": {0: 0.10},
                   "losses": lambda i: [100.0] * CLASSES})
    study = {"name": "grid_model", "kind": "grid", "factors": ["model"],
             "objectives": [{"metric": "acc_mean", "mode": "max"}],
             "space": {"model": {"grid": ["ConvNet", "MLP"]}}, "repeats": 3}
    return write_results(tmp_path / "grid", study, trials)


def search_trial(i):
    """60 deterministic search trials: ConvNet is 30 points better, so the top 10% is all
    ConvNet; a Hessian term costs time, so the front mixes modes."""
    model, mode = ("ConvNet", "MLP")[i % 2], ("none", "curvature", "hvp")[i % 3]
    weight = 10 ** (-3 + 4 * ((7 * i) % 60) / 59)
    acc = (0.9 if model == "ConvNet" else 0.6) + 0.02 * math.sin(i)
    return {"trial_id": f"t{i:02d}", "status": "TERMINATED", "iterations": 2,
            "config": {"model": model, "hessian": mode, "hessian_weight": weight, "seed": i,
                       "iterations": 2, "eval_at": [2]},
            "acc": {2: acc}, "distill_seconds": 100 + 50 * (mode != "none")
            + 30 * (model == "ConvNet") + (13 * i) % 17,
            "losses": lambda it: [1.0 / it] * CLASSES}


@pytest.fixture
def search_results(tmp_path):
    running = {"trial_id": "t99", "status": "RUNNING", "iterations": 1,
               "config": {"model": "MLP", "hessian": "hvp", "hessian_weight": 1.0, "seed": 99,
                          "iterations": 2, "eval_at": [2]},
               "acc": {}, "losses": lambda it: [1.0] * CLASSES}
    study = {"name": "search_hessian", "kind": "search",
             "factors": ["hessian", "hessian_weight", "model"],
             "objectives": [{"metric": "acc_mean", "mode": "max"},
                            {"metric": "distill_seconds", "mode": "min"}],
             "space": {"hessian": {"choice": ["none", "curvature", "hvp"]},
                       "hessian_weight": {"loguniform": [1e-3, 10.0]},
                       "model": {"choice": ["ConvNet", "MLP"]}},
             "repeats": 1}
    return write_results(tmp_path / "search", study,
                         [search_trial(i) for i in range(60)] + [running])


def assert_pngs(folder, names):
    for name in names:
        path = folder / name
        assert path.is_file() and path.stat().st_size > 0, name
        image = plt.imread(path)
        assert image.shape[0] > 50 and image.shape[1] > 50, name


def table_after(text, heading):
    """The first Markdown table after a heading line: a list of {column: cell} dicts."""
    lines = text[text.index(heading):].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| "))
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        # split on unescaped pipes only
        rows.append([c.strip().replace("\\|", "|")
                     for c in line.replace("\\|", "\0").strip("|").split("|")])
    header = [c.replace("\0", "|") for c in rows[0]]
    return [dict(zip(header, [c.replace("\0", "|") for c in row])) for row in rows[2:]]


def row_where(rows, column, value):
    return next(r for r in rows if r[column] == value)


def test_grid_scripts_write_pngs(grid_results, tmp_path, capsys):
    out = tmp_path / "out"
    argv = [str(grid_results), "--out", str(out)]
    for script in (curves, final, class_loss, montage, pareto, search):
        script.main(argv)
    assert_pngs(out, ["curves_model.png", "final_model.png", "class_loss_model.png",
                      "montage_model.png"])
    printed = capsys.readouterr().out
    assert "not a search" in printed and "a Pareto front needs two" in printed
    assert not (out / "importance.png").exists() and not (out / "pareto.png").exists()


def test_grid_report_numbers(grid_results, tmp_path):
    out = tmp_path / "report"
    report.main([str(grid_results), "--out", str(out)])
    text = (out / "report.md").read_text()
    assert_pngs(out, ["curves_model.png", "final_model.png", "class_loss_model.png",
                      "montage_model.png"])
    for image in ("curves_model.png", "final_model.png", "class_loss_model.png",
                  "montage_model.png"):
        assert f"]({image})" in text

    summary = table_after(text, "### Final accuracy by model")
    for model, values in GRID_FINAL.items():
        x = [100 * v for v in values]
        mean = sum(x) / 3
        std = math.sqrt(sum((v - mean) ** 2 for v in x) / 2)
        row = row_where(summary, "model", model)
        assert int(row["n"]) == 3  # the failed MLP trial is left out
        assert float(row["mean %"]) == pytest.approx(mean, rel=1e-3)
        assert float(row["std %"]) == pytest.approx(std, rel=1e-3)
        assert float(row["95% CI ± %"]) == pytest.approx(T_975_2 * std / math.sqrt(3), rel=1e-3)

    tests = table_after(text, "Significance tests between levels")
    # both models ran seeds 0-2 (MLP's seed 3 failed), so they pair by seed
    paired = stats.ttest_rel(GRID_FINAL["MLP"], GRID_FINAL["ConvNet"])
    pair = row_where(tests, "test", "paired t-test (n=3 pairs)")
    assert pair["levels"] == "ConvNet vs MLP" and pair["left out"] == "0"
    assert float(pair["p"]) == pytest.approx(paired.pvalue, rel=1e-3)
    assert float(pair["p (Holm)"]) == pytest.approx(paired.pvalue, rel=1e-3)  # one pair
    differences = [100 * (m - c) for m, c in zip(GRID_FINAL["MLP"], GRID_FINAL["ConvNet"])]
    assert float(pair["mean difference (pp)"]) == pytest.approx(sum(differences) / 3, rel=1e-3)
    assert "paired t-tests where the trials pair by seed" in text
    welch = stats.ttest_ind(GRID_FINAL["ConvNet"], GRID_FINAL["MLP"], equal_var=False)
    anova = row_where(tests, "test", "Welch one-way ANOVA")
    assert float(anova["statistic"]) == pytest.approx(welch.statistic ** 2, rel=1e-3)

    curve = table_after(text, "### Accuracy vs iteration by model")
    start = [r for r in curve if r["model"] == "ConvNet" and r["iteration"] == "0"][0]
    assert float(start["mean %"]) == pytest.approx((10 + 11 + 12) / 3, rel=1e-3)

    losses = table_after(text, "### Per-class matching loss by model")
    for model in ("ConvNet", "MLP"):
        row = row_where(losses, "model", model)
        expected = sum(class_loss_value(model, s, 3, 4) for s in range(3)) / 3
        assert row["iteration"] == "4" and int(row["n"]) == 3
        assert float(row["class 3"]) == pytest.approx(expected, rel=1e-3)

    trials = table_after(text, "## Trials")
    failed = row_where(trials, "trial_id", "MLP_3")
    assert failed["status"] == "ERROR"
    assert failed["error"] == "RuntimeError: out of memory | in evaluation Traceback"
    assert "not a search" in text and "a Pareto front needs two" in text
    assert "no grid image" not in text  # relative (ConvNet) and absolute (MLP) paths found


def test_one_trial_levels_have_no_interval(grid_results, tmp_path):
    section = final.final(common.load(grid_results), "trial_id", tmp_path)
    assert any("one trial only, so no confidence interval" in n for n in section.notes)
    assert any("no test: fewer than two levels" in n for n in section.notes)
    assert section.tables[0].frame["95% CI ± %"].isna().all()


def test_cli_runs_as_script(grid_results, tmp_path):
    out = tmp_path / "cli"
    done = subprocess.run([sys.executable, "analysis/final.py", str(grid_results), "--out",
                           str(out), "--factor", "model", "seed"],
                          cwd=ANALYSIS.parent, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert_pngs(out, ["final_model.png", "final_seed.png"])
    assert "Welch one-way ANOVA" in done.stdout


def test_search_report(search_results, tmp_path):
    out = tmp_path / "report"
    report.main([str(search_results), "--out", str(out)])
    text = (out / "report.md").read_text()
    assert_pngs(out, ["importance.png", "lambda_accuracy.png", "pareto.png",
                      "final_model.png", "curves_hessian.png"])
    assert "`hessian_weight` is sampled from an interval" in text
    assert not (out / "final_hessian_weight.png").exists()

    importance = table_after(text, "## Parameter importance")
    assert importance[0]["parameter"] == "model"  # the only field that moves accuracy
    assert sum(float(r["importance"]) for r in importance) == pytest.approx(1, abs=1e-3)
    first, second = (search.importance(common.load(search_results), out)
                     for _ in range(2))
    assert first.tables[0].frame.equals(second.tables[0].frame)  # deterministic

    # the front by brute force: no other trial at least as accurate and at least as fast
    points = {t["trial_id"]: (t["acc"][2], t["distill_seconds"])
              for t in map(search_trial, range(60))}
    front = {i for i, (a, s) in points.items()
             if not any(a2 >= a and s2 <= s and (a2, s2) != (a, s) for a2, s2 in points.values())}
    table = table_after(text, "## Pareto front")
    assert {r["trial_id"] for r in table} == front
    assert "t99" not in text.split("## Trials")[0]  # the running trial is only listed


def test_best_so_far_sets_two_samplers_against_the_core_hours_they_spent(search_results,
                                                                        tmp_path):
    """The search fixture (60 trials) beside a "random" search of its first 20 trials, one
    of them stopped at max_trial_seconds: each curve is the running maximum over trials in
    the order they started, at the cumulated wall seconds; a trial without a result costs
    its seconds and finds nothing; the running trial is not counted yet."""
    study = json.loads((search_results / "study.json").read_text())
    random_study = {**study, "name": "search_random", "sampler": {"name": "random"}}
    random_trials = [search_trial(i) for i in range(20)]
    best = max(range(20), key=lambda i: search_trial(i)["acc"][2])
    random_trials[best]["status"] = "OVER_TIME"
    write_results(tmp_path / "random", random_study, random_trials[::-1])  # started last first
    section = search.best_so_far([search_results, tmp_path / "random"], tmp_path)
    table = section.tables[0].frame.set_index("search")
    trials = common.load(search_results).finished
    assert table.loc["search_hessian (tpe)", "trials run"] == 60
    assert table.loc["search_hessian (tpe)", "core-hours"] == pytest.approx(
        trials["wall_seconds"].sum() / 3600)
    random = table.loc["search_random (random)"]
    assert (random["trials run"], random["with a result"], random["over time"]) == (20, 19, 1)
    assert random["core-hours"] == pytest.approx(
        common.load(tmp_path / "random").trials["wall_seconds"].sum() / 3600)
    assert random["best test accuracy (%)"] == pytest.approx(
        100 * max(search_trial(i)["acc"][2] for i in range(20) if i != best))
    assert table.loc["search_hessian (tpe)", "best test accuracy (%)"] == \
        pytest.approx(100 * max(search_trial(i)["acc"][2] for i in range(60)))
    # at equal compute: TPE's best among the trials it had run within random's core-hours
    tpe = common.load(search_results).trials
    tpe = tpe.iloc[search.started_order(tpe).argsort()]
    within = (tpe["wall_seconds"].cumsum() / 3600 <= random["core-hours"] + 1e-12).to_numpy()
    column = next(c for c in table.columns if c.startswith("best within"))
    assert column == f"best within {random['core-hours']:.2f} core-hours"
    assert table.loc["search_hessian (tpe)", column] == pytest.approx(
        100 * tpe[within]["acc_mean"].max())
    assert 0 < within.sum() < 60  # the horizon cuts TPE's curve
    assert random[column] == random["best test accuracy (%)"]
    assert_pngs(tmp_path, ["best_so_far.png"])


def test_searches_on_different_machines_are_compared_at_equal_trials(search_results,
                                                                     tmp_path):
    """A core-hour on a slower CPU buys fewer trials: searches whose study.json names
    different machines are set side by side at the trials they started, not their
    core-hours, and the section says why."""
    study = json.loads((search_results / "study.json").read_text())
    slower = {**study, "name": "search_random", "sampler": {"name": "random"},
              "machine": "AMD EPYC (no native bf16), 2 CPUs"}
    assert slower["machine"] != study.get("machine")
    write_results(tmp_path / "random", slower, [search_trial(i) for i in range(20)])
    section = search.best_so_far([search_results, tmp_path / "random"], tmp_path)
    assert section.title == "Best so far against trials"
    assert "different machines" in " ".join(section.notes)
    table = section.tables[0].frame.set_index("search")
    assert "best within 20 trials" in table.columns
    tpe = common.load(search_results).trials
    first = tpe.iloc[search.started_order(tpe).argsort()].iloc[:20]
    assert table.loc["search_hessian (tpe)", "best within 20 trials"] == pytest.approx(
        100 * first["acc_mean"].max())
    assert table.loc["search_random (random)", "machine"] == slower["machine"]
    # the slower machine took twice TPE's seconds for the same 20 configurations: in core-hours
    # of TPE's machine (estimated) it spent what TPE's first 20 trials did
    trials = pd.read_parquet(tmp_path / "random" / "trials.parquet")
    trials["wall_seconds"] *= 2
    trials.to_parquet(tmp_path / "random" / "trials.parquet")
    ended = search.ended_in_order([search_results, tmp_path / "random"])
    assert search.pace(ended).tolist() == [2.0] * 20
    section = search.best_so_far([search_results, tmp_path / "random"], tmp_path)
    table = section.tables[0].frame.set_index("search")
    estimated = table["core-hours on search_hessian's machine (estimated)"]
    assert estimated["search_random (random)"] == pytest.approx(
        first["wall_seconds"].sum() / 3600)
    assert table["core-hours"]["search_random (random)"] == pytest.approx(
        2 * first["wall_seconds"].sum() / 3600)
    column = f"best within {estimated['search_random (random)']:.2f} of them"
    assert table.loc["search_hessian (tpe)", column] == pytest.approx(
        100 * first["acc_mean"].max())
    assert "divided by 2.00, the median" in " ".join(section.notes)
    # on one machine the same two searches are compared at core-hours
    write_results(tmp_path / "same", {**slower, "machine": study.get("machine")},
                  [search_trial(i) for i in range(20)])
    assert search.ended_in_order([search_results, tmp_path / "same"]).unit == "core-hours"
    assert_pngs(tmp_path, ["best_so_far.png"])


def test_two_searches_trials_are_ranked_within_the_compute_both_spent(search_results,
                                                                        tmp_path):
    """Mann-Whitney's U of the trials with a result, each search cut at the compute the
    cheaper one spent (here its 20 trials, on another machine): the same trials again
    cannot be told apart, trials 10 points lower are."""
    study = json.loads((search_results / "study.json").read_text())
    for name, shift in (("same", 0.0), ("worse", -0.1)):
        trials = [search_trial(i) for i in range(20)]
        for t in trials:
            t["acc"] = {2: t["acc"][2] + shift}
        write_results(tmp_path / name, {**study, "name": name, "sampler": {"name": "random"},
                                        "machine": "another CPU"}, trials)
    table, p = search.trials_compared(search.ended_in_order([search_results, tmp_path / "same"]))
    assert table["with a result"].tolist() == [20, 20]  # TPE's first 20 of 60
    assert p > 0.5
    table, p = search.trials_compared(search.ended_in_order([search_results, tmp_path / "worse"]))
    median = table["median test accuracy (%)"]
    assert median[0] - median[1] == pytest.approx(10.0)
    assert p < 0.05
    # both drew the same 20 configurations first; one drawn otherwise ends the shared start
    assert search.shared_start(search.ended_in_order([search_results, tmp_path / "worse"])) == 20
    trials = [search_trial(i) for i in range(20)]
    trials[2]["config"]["hessian_weight"] *= 2
    write_results(tmp_path / "apart", {**study, "name": "apart"}, trials)
    assert search.shared_start(search.ended_in_order([search_results, tmp_path / "apart"])) == 2


def test_trials_are_taken_in_the_order_ray_tune_started_them():
    trials = pd.DataFrame({"trial_id": ["b2", "a1", "c3"],
                           "trial_dir": ["x/distill_trial_b2_10_lr=1", "distill_trial_a1_2_lr=1",
                                         "distill_trial_c3_1_lr=1_2026-11-30_19-45-57"]})
    assert search.started_order(trials).tolist() == [10, 2, 1]


def test_importance_scores_a_conditional_field_among_the_trials_that_have_it(tmp_path):
    """λ is sampled only with a Hessian term; the export holds the default 0 elsewhere, which
    is outside λ's space and must neither drop those trials nor enter the ranking."""
    trials = []
    for i in range(60):
        trial = search_trial(i)
        if trial["config"]["hessian"] == "none":
            trial["config"]["hessian_weight"] = 0.0
        else:  # among trials with a term, a large λ is what gets into the top 10%
            trial["acc"] = {2: 0.5 + 0.4 * (trial["config"]["hessian_weight"] > 1)
                            + 0.001 * math.sin(i)}
        trials.append(trial)
    study = {"name": "conditional", "kind": "search",
             "factors": ["hessian", "hessian_weight", "model"],
             "objectives": [{"metric": "acc_mean", "mode": "max"}],
             "space": {"hessian": {"choice": ["none", "curvature", "hvp"]},
                       "hessian_weight": {"loguniform": [1e-3, 10.0],
                                          "when": {"hessian": ["curvature", "hvp"]}},
                       "model": {"choice": ["ConvNet", "MLP"]}}, "repeats": 1}
    results = common.load(write_results(tmp_path / "conditional", study, trials))
    section = search.importance(results, tmp_path)
    assert not any("left out" in note for note in section.notes)
    table = section.tables[0].frame
    everyone = table[table.trials == "all trials (n=60)"]
    assert set(everyone.parameter) == {"hessian", "model"}
    subset = table[table.trials == "trials with hessian in {curvature, hvp} (n=40)"]
    assert set(subset.parameter) == {"hessian", "hessian_weight", "model"}
    assert subset.iloc[0].parameter == "hessian_weight"
    for frame in (everyone, subset):
        assert frame.importance.sum() == pytest.approx(1, abs=1e-3)


def test_pareto_mask_by_hand():
    # (accuracy, seconds): B beats C, A beats F; E, B, A, D trade accuracy for time
    points = {"A": (0.90, 100), "B": (0.85, 50), "C": (0.80, 60), "D": (0.95, 200),
              "E": (0.70, 40), "F": (0.88, 120), "G": (0.85, 50)}
    mask = pareto.pareto_mask(np.array(list(points.values())), [True, False])
    assert {k for k, keep in zip(points, mask) if keep} == {"A", "B", "D", "E", "G"}


def test_holm_by_hand():
    adjusted = final.holm(np.array([0.01, 0.04, 0.03, np.nan]))
    # sorted 0.01, 0.03, 0.04 times 3, 2, 1 -> 0.03, 0.06, 0.04 -> monotone 0.03, 0.06, 0.06
    np.testing.assert_allclose(adjusted[:3], [0.03, 0.06, 0.06])
    assert np.isnan(adjusted[3])


# --- paired comparisons (common random numbers) -------------------------------------------

INIT_BASE = {"noise": 0.60, "real": 0.63}
MODEL_BASE = {"ConvNet": 0.10, "MLP": 0.0}


def init_results(tmp_path, name, seeds, accuracy_of):
    """A grid over init x model; seeds: {(init, model): seeds run}; accuracy_of(init, model,
    seed) -> final accuracy (fraction)."""
    trials = [{"trial_id": f"{init}_{model}_{seed}", "status": "TERMINATED", "iterations": 4,
               "config": {"init": init, "model": model, "seed": seed},
               "acc": {4: accuracy_of(init, model, seed)}, "losses": lambda i: [1.0] * CLASSES}
              for (init, model), run in seeds.items() for seed in run]
    study = {"name": name, "kind": "grid", "factors": ["init", "model"],
             "objectives": [{"metric": "acc_mean", "mode": "max"}],
             "space": {"init": {"grid": ["noise", "real"]},
                       "model": {"grid": ["ConvNet", "MLP"]}}, "repeats": len(seeds)}
    return common.load(write_results(tmp_path / name, study, trials))


def crn_accuracy(init, model, seed):
    """A seed moves both inits of a model by the same ±5 points (the random numbers they
    share); what is left is ±0.2 points of noise of each trial's own."""
    trial = 4 * seed + 2 * (model == "MLP") + (init == "real")
    return (INIT_BASE[init] + MODEL_BASE[model] + 0.05 * math.sin(3 * seed + (model == "MLP"))
            + 0.002 * math.cos(7 * trial))


@pytest.fixture
def crn_results(tmp_path):
    """init x model x seeds 0-4, plus real/ConvNet seed 5 that has no noise partner."""
    seeds = {(init, model): range(5) for init in INIT_BASE for model in MODEL_BASE}
    seeds["real", "ConvNet"] = range(6)
    return init_results(tmp_path, "crn", seeds, crn_accuracy)


def welch_half(x, y):
    """Welch's 95% CI half-width of mean(y) - mean(x), Welch-Satterthwaite degrees of freedom."""
    vx, vy = np.var(x, ddof=1) / len(x), np.var(y, ddof=1) / len(y)
    df = (vx + vy) ** 2 / (vx ** 2 / (len(x) - 1) + vy ** 2 / (len(y) - 1))
    return stats.t.ppf(0.975, df) * math.sqrt(vx + vy)


def test_trials_that_pair_by_seed_get_a_paired_test(crn_results, tmp_path):
    section = final.final(crn_results, "init", tmp_path)
    row = section.tables[1].frame.iloc[1]
    # the pairs by hand: same seed and same model (the other factor); real/ConvNet/5 is alone
    pairs = [(crn_accuracy("noise", m, s) * 100, crn_accuracy("real", m, s) * 100)
             for m in MODEL_BASE for s in range(5)]
    noise, real = map(np.array, zip(*pairs))
    d = real - noise
    half = stats.t.ppf(0.975, 9) * d.std(ddof=1) / math.sqrt(10)
    assert row["test"] == "paired t-test (n=10 pairs)" and row["levels"] == "noise vs real"
    assert row["pairs"] == 10 and row["left out"] == 1
    assert row["mean difference (pp)"] == pytest.approx(d.mean())
    assert row["95% CI low (pp)"] == pytest.approx(d.mean() - half)
    assert row["95% CI high (pp)"] == pytest.approx(d.mean() + half)
    assert row["p"] == pytest.approx(stats.ttest_rel(real, noise).pvalue)
    assert row["p (Holm)"] == pytest.approx(row["p"])  # one pair
    assert row["Wilcoxon p"] == pytest.approx(stats.wilcoxon(d).pvalue)
    # Welch on every trial sees the seeds' ±5 and the models' 10 points: a far wider interval
    every = {init: [crn_accuracy(init, m, s) * 100 for m in MODEL_BASE
                    for s in range(6 if (init, m) == ("real", "ConvNet") else 5)]
             for init in INIT_BASE}
    assert 5 * half < welch_half(every["noise"], every["real"])
    assert any("paired t-tests where the trials pair by seed and the other factors" in note
               and "noise vs real (10 pairs, 1 trial without a partner left out)" in note
               for note in section.notes)


def test_trials_that_do_not_pair_get_welch(tmp_path):
    """Noise ran seeds 0-2, real seeds 2-4: one pair, too few, so Welch on all trials."""
    seeds = {("noise", "ConvNet"): range(3), ("real", "ConvNet"): range(2, 5)}
    results = init_results(tmp_path, "unpaired", seeds, crn_accuracy)
    section = final.final(results, "init", tmp_path)
    row = section.tables[1].frame.iloc[1]
    noise, real = ([crn_accuracy(i, "ConvNet", s) * 100 for s in seeds[i, "ConvNet"]]
                   for i in INIT_BASE)
    welch = stats.ttest_ind(real, noise, equal_var=False)
    difference, half = np.mean(real) - np.mean(noise), welch_half(noise, real)
    assert row["test"] == "Welch t-test" and row["pairs"] == 1 and row["left out"] == 0
    assert row["p"] == pytest.approx(welch.pvalue)
    assert row["95% CI low (pp)"] == pytest.approx(difference - half)
    assert row["95% CI high (pp)"] == pytest.approx(difference + half)
    assert np.isnan(row["Wilcoxon p"])
    assert any("Welch t-tests where the trials do not pair by seed (fewer than 2 pairs): "
               "noise vs real" in note for note in section.notes)
    assert not any("paired t-tests" in note for note in section.notes)


def test_columns_that_only_tell_levels_apart_do_not_split_pairs(tmp_path):
    """Levels made of several columns (none at 4 and at 12 iterations, curvature at λ 1e-3):
    each such column is constant within a level, so the trials pair by seed alone; by
    `hessian`, iterations varies within `none` and keeps its two kinds of trial apart."""
    runs = {"none": ("none", 0.0, 4), "none, 12 iterations": ("none", 0.0, 12),
            "curvature": ("curvature", 1e-3, 4)}
    trials = [{"trial_id": f"{hessian}_{iterations}_{seed}", "status": "TERMINATED",
               "iterations": iterations, "acc": {iterations: 0.5 + 0.01 * seed},
               "config": {"hessian": hessian, "hessian_weight": weight,
                          "iterations": iterations, "seed": seed},
               "losses": lambda i: [1.0] * CLASSES}
              for hessian, weight, iterations in runs.values() for seed in range(3)]
    study = {"name": "terms", "kind": "grid", "factors": ["hessian"],
             "objectives": [{"metric": "acc_mean", "mode": "max"}], "repeats": 3}
    results = common.load(write_results(tmp_path / "terms", study, trials))
    results.trials["term"] = [next(term for term, run in runs.items()
                                   if run == (h, w, i)) for h, w, i in
                              results.trials[["hessian", "hessian_weight", "iterations"]]
                              .itertuples(index=False)]
    keys = final.pairing_keys(results, "term", "acc_mean")
    assert keys == {term: [(s,) for s in range(3)] for term in sorted(runs)}
    results.trials = results.trials.drop(columns="term")
    by_mode = final.pairing_keys(results, "hessian", "acc_mean")
    assert sorted(by_mode["none"]) == sorted((s, i) for i in (4, 12) for s in range(3))


def test_ci_widths_paired_narrower_than_unpaired(crn_results):
    widths = final.ci_widths(crn_results, "init", "noise", "real")
    pairs = [(crn_accuracy("noise", m, s) * 100, crn_accuracy("real", m, s) * 100)
             for m in MODEL_BASE for s in range(5)]
    noise, real = map(np.array, zip(*pairs))
    d = real - noise
    assert widths["pairs"] == 10
    assert widths["paired"] == pytest.approx(stats.t.ppf(0.975, 9) * d.std(ddof=1) / math.sqrt(10))
    assert widths["unpaired"] == pytest.approx(welch_half(noise, real))  # the same 20 trials
    assert widths["paired"] < widths["unpaired"] / 5
    seeds = final.ci_widths(crn_results, "seed", 0, 1)  # seeds never pair with each other
    assert seeds["pairs"] == 0 and np.isnan(seeds["paired"]) and np.isnan(seeds["unpaired"])


def test_identical_pairs_have_no_test():
    """A factor that changes nothing under common random numbers: every difference is 0, so
    neither the t-test nor the Wilcoxon test is defined; n/a, no crash."""
    values = np.array([80.0, 82.0, 85.0])
    keys = [(0,), (1,), (2,)]
    row = final.tests_table({"a": values, "b": values.copy()}, {"a": keys, "b": keys}).iloc[1]
    assert row["test"] == "paired t-test (n=3 pairs)" and row["mean difference (pp)"] == 0
    assert np.isnan(row["p"]) and np.isnan(row["p (Holm)"]) and np.isnan(row["Wilcoxon p"])


def test_montage_shows_the_last_or_the_initial_grid(grid_results, tmp_path):
    results = common.load(grid_results)
    final_rows = montage.montage(results, "model", tmp_path).tables[0].frame
    initial = montage.montage(results, "model", tmp_path, initial=True).tables[0].frame
    # the first finished trial of each level (seed 0), iterations 4 and 0
    assert list(final_rows["trial_id"]) == list(initial["trial_id"]) == ["ConvNet_0", "MLP_0"]
    assert list(final_rows["iteration"]) == [4, 4] and list(initial["iteration"]) == [0, 0]
    assert all(p.name == "grid_iter00000.png" for p in initial["grid"])
    assert (tmp_path / "montage_model_initial.png").stat().st_size > 0


def test_cost_sets_each_levels_accuracy_against_its_distillation_seconds(grid_results, tmp_path):
    section = cost.cost(common.load(grid_results), "model", tmp_path)
    table = section.tables[0].frame.set_index("model")
    for model in ("ConvNet", "MLP"):  # MLP seed 3 failed: it does not count
        seconds = [4 * (1 + 0.1 * seed) for seed in range(3)]
        assert table.loc[model, "n"] == 3
        assert table.loc[model, "distillation s"] == pytest.approx(np.mean(seconds))
        assert table.loc[model, "s 95% CI ±"] == pytest.approx(
            stats.t.ppf(0.975, 2) * np.std(seconds, ddof=1) / math.sqrt(3))
        assert table.loc[model, "mean %"] == pytest.approx(100 * np.mean(GRID_FINAL[model][:3]))
    assert_pngs(tmp_path, ["cost_model.png"])


def test_a_lambda_sweep_gets_a_mean_and_interval_per_term_and_lambda(tmp_path):
    """Curvature at λ 1e-3 and 1e-2 and none, 3 seeds each, on two models."""
    def accuracy(model, weight, seed):
        return 0.6 + 0.1 * (model == "MLP") + 3 * weight + 0.01 * seed

    runs = [("none", 0.0), ("curvature", 1e-3), ("curvature", 1e-2)]
    trials = [{"trial_id": f"{model}_{mode}_{weight}_{seed}", "status": "TERMINATED",
               "iterations": 4, "acc": {4: accuracy(model, weight, seed)},
               "config": {"model": model, "hessian": mode, "hessian_weight": weight,
                          "seed": seed},
               "losses": lambda i: [1.0] * CLASSES}
              for model in ("ConvNet", "MLP") for mode, weight in runs for seed in range(3)]
    study = {"name": "sweep", "kind": "grid", "factors": ["model", "hessian", "hessian_weight"],
             "objectives": [{"metric": "acc_mean", "mode": "max"}], "repeats": 3}
    results = common.load(write_results(tmp_path / "sweep", study, trials))
    section = search.lambda_accuracy(results, tmp_path, "acc_mean")
    table = section.tables[0].frame
    assert len(table) == 6 and set(table["n"]) == {3}
    row = table[(table.model == "MLP") & (table.term == "curvature (gauss_newton)")
                & (table["λ"] == 1e-2)].iloc[0]
    assert row["mean %"] == pytest.approx(100 * np.mean([accuracy("MLP", 1e-2, s)
                                                         for s in range(3)]))
    assert row["95% CI ± %"] == pytest.approx(stats.t.ppf(0.975, 2) * 1.0 / math.sqrt(3))
    assert_pngs(tmp_path, ["lambda_accuracy.png"])
