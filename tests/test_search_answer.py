"""The results page's search section: budget, history, importance, and the confirmation
of the found configurations against DC's default configuration, paired by seed."""
import json
import re
import shutil

import pandas as pd
import pytest

from analysis import common, results_page, search, search_answer
from test_analysis import write_results
from test_results_page import write_no_evaluations

SPACE = {"lr_img": {"loguniform": [0.01, 10.0]}, "init": {"choice": ["noise", "real"]}}
SEARCH = {"kind": "search", "factors": list(SPACE), "space": SPACE, "repeats": 1,
          "objectives": [{"metric": "acc_mean", "mode": "max"}], "resources": {"cpu": 1},
          "machine": "AMD EPYC (AVX-512 BF16), 2 CPUs", "max_trial_seconds": 1000,
          "fixed": {"dataset": "MNIST", "model": "ConvNet", "ipc": 1, "iterations": 4,
                    "eval_models": 2, "eval_epochs": 300}}


def trial(i, acc, status="TERMINATED", **config):
    return {"trial_id": f"t{i:02d}", "status": status, "iterations": 4,
            "config": {"lr_img": 0.01 * (i + 1), "init": ("noise", "real")[i % 2],
                       "eval_at": [4], **config},
            "acc": {4: acc} if status == "TERMINATED" else {}, "losses": lambda it: [1.0] * 10}


def with_full(folder, full):
    """Add DC's full-protocol accuracy per trial id (the confirmation's column)."""
    trials = pd.read_parquet(folder / "trials.parquet")
    trials["full_acc_mean"] = trials["trial_id"].map(full)
    trials.to_parquet(folder / "trials.parquet")


@pytest.fixture
def results(tmp_path):
    root = tmp_path / "results"
    root.mkdir()
    write_results(root / "search_mnist", {**SEARCH, "name": "search_mnist",
                                          "sampler": {"name": "tpe"}},
                  [trial(i, 0.80 + 0.01 * i) for i in range(12)]
                  + [trial(12, None, status="OVER_TIME")])
    write_results(root / "search_mnist_random", {**SEARCH, "name": "search_mnist_random",
                                                 "sampler": {"name": "random"},
                                                 "max_core_hours": 0.5},
                  [trial(i, 0.70 + 0.01 * i) for i in range(6)])
    # the confirmation: two found configurations x seeds 0-4; DC's default: seeds 0-4
    found = [trial(10 * c + s, 0.9, seed=s, lr_img=lr, init="real")
             for c, lr in enumerate((0.5, 2.0)) for s in range(5)]
    write_results(root / "found_mnist", {
        "name": "found_mnist", "kind": "grid", "factors": ["lr_img", "init"],
        "space": {"lr_img": {"grid": [0.5, 2.0]}, "init": {"grid": ["real"]}}, "repeats": 5,
        "objectives": SEARCH["objectives"], "resources": {"cpu": 1},
        "confirm": {"top": 2, "eval_models": 5, "protocol": "full"},
        "fixed": {**SEARCH["fixed"], "iterations": 200, "seed": 0}}, found)
    write_results(root / "models_2h", {
        "name": "models_2h", "kind": "grid", "factors": ["model"],
        "space": {"model": {"grid": ["ConvNet"]}}, "repeats": 5,
        "objectives": SEARCH["objectives"], "resources": {"cpu": 1}},
        [trial(90 + s, 0.9, seed=s) for s in range(5)])
    # config 0 beats the default by 2 pp on every seed (with noise), config 1 ties it
    noise = [0.3, -0.2, 0.1, -0.3, 0.1]
    with_full(root / "found_mnist", {
        **{f"t{s:02d}": (91 + 2 + noise[s]) / 100 for s in range(5)},
        **{f"t{10 + s:02d}": (91 + noise[s] - noise[4 - s]) / 100 for s in range(5)}})
    with_full(root / "models_2h", {f"t{90 + s:02d}": (91 + noise[s]) / 100 for s in range(5)})
    return root


def test_the_section_confirms_the_found_configurations_against_dcs_default(results, tmp_path,
                                                                          monkeypatch):
    monkeypatch.setattr(search_answer, "SLICE_FIELDS", 1)
    studies = tmp_path / "studies"
    studies.mkdir()
    (studies / "found_mnist.yaml").write_text("name: found_mnist\n")
    folders = sorted(p.parent for p in results.glob("*/study.json"))
    text = search_answer.sections(folders, tmp_path / "docs", studies)
    assert text.startswith("## What does a search find? (`search_mnist`, MNIST)")
    assert ("13 configurations (12 with a result, 1 stopped at max_trial_seconds (1000 s), 0 "
            "diverged, 0 failed)") in text
    assert "2 CPUs; sampler tpe." in text
    assert ("Random search of the same space (`search_mnist_random`): Budget: MNIST" in text
            and "core-hours (max_core_hours 0.5: no trial started past it) on AMD" in text
            and "2 CPUs; sampler random." in text)
    # the random search's 6 trials against TPE's within its compute, all 10 points higher
    assert ("median 82.5 % (TPE) against 72.5 % (random), Mann-Whitney U test (two-sided) "
            "p = 0.0022: TPE's trials score higher than random's.") in text
    assert "started their first 6 configurations alike" in text  # the fixture's lr_img, init
    assert "different machines" not in text and "estimated" not in text
    assert "    name: found_mnist" in text  # the shipped study, as it is
    table = text[text.index("| configuration |"):].split("\n\n")[0].splitlines()
    first, second = table[2], table[3]
    assert first.startswith("| lr_img=0.5, init=real |")
    assert "93.0 ± " in first and "+2.0 [" in first and "paired t-test (n=5 pairs)" in first
    assert "better than DC's default" in first
    assert "cannot tell at this budget" in second
    assert "| 91.7 | 88.7 |" in first  # DC's and DSA's published numbers
    assert "DC's default configuration (models_2h, ConvNet, seeds 0, 1, 2, 3, 4): 91.0" in text
    assert "under the same protocol, in fp32." in text
    assert "(distillation and screen) on an unrecorded machine, in fp32." in text
    assert "the best confirmed configuration reaches 93.0 %, so the target is met" in text
    for name in ("best_so_far.png", "importance.png", "slice_1.png"):
        assert (tmp_path / "docs" / "results" / "search_mnist" / name).stat().st_size > 0
    # the searched fields split over slice figures (one field each here)
    slices = re.findall(r"!\[slice \d\]\(results/search_mnist/(slice_\d\.png)\)", text)
    assert slices == ["slice_1.png", "slice_2.png"]
    history = pd.read_csv(tmp_path / "docs" / "results" / "search_mnist" / "best_so_far.csv")
    assert history["trials run"].tolist() == [13, 6]


def test_a_confirmation_run_with_overrides_shows_its_study_file_and_command(results, tmp_path,
                                                                           monkeypatch):
    """E.g. only the best configuration of studies/found_mnist.yaml, under another name."""
    monkeypatch.setattr(search_answer, "SLICE_FIELDS", 1)
    path = results / "found_mnist" / "study.json"
    overrides = ["name=found_mnist_best", "confirm={top: 1, eval_models: 5, protocol: full}"]
    path.write_text(json.dumps({**json.loads(path.read_text()), "name": "found_mnist_best",
                                "machine": "AMD EPYC (no native bf16), 2 CPUs",
                                "launched": {"study_file": "studies/found_mnist.yaml",
                                             "overrides": overrides}}))
    studies = tmp_path / "studies"
    studies.mkdir()
    (studies / "found_mnist.yaml").write_text("name: found_mnist\n")
    folders = sorted(p.parent for p in results.glob("*/study.json"))
    text = search_answer.sections(folders, tmp_path / "docs", studies)
    assert "(`studies/found_mnist.yaml`):\n\n    name: found_mnist\n" in text
    assert ("This confirmation ran it as `raygm study launch studies/found_mnist.yaml "
            "--set 'name=found_mnist_best' --set 'confirm={top: 1, eval_models: 5, "
            "protocol: full}'`.") in text
    assert "Confirmation (`found_mnist_best`)" in text
    assert "core-hours (distillation and screen) on AMD EPYC (no native bf16), 2 CPUs, in fp32." in text


def test_of_two_confirmations_the_one_that_confirmed_more_sets_answers(results, tmp_path,
                                                                       monkeypatch):
    """The other one is reported in a line: the same configuration confirmed again (e.g. in
    another precision, on another machine) against its own DC default."""
    monkeypatch.setattr(search_answer, "SLICE_FIELDS", 1)
    best = results / "found_mnist_best"
    shutil.copytree(results / "found_mnist", best)
    study = json.loads((best / "study.json").read_text())
    (best / "study.json").write_text(json.dumps({**study, "name": "found_mnist_best"}))
    trials = pd.read_parquet(best / "trials.parquet")
    trials[trials["lr_img"] == 0.5].to_parquet(best / "trials.parquet")  # its best only
    folders = sorted(p.parent for p in results.glob("*/study.json"))
    [searches] = search_answer.collect(folders)
    assert searches.found.name == "found_mnist"
    assert [a.name for a in searches.again] == ["found_mnist_best"]
    text = search_answer.sections(folders, tmp_path / "docs", tmp_path / "studies")
    line = next(l for l in text.splitlines() if l.startswith("Confirmed again"))
    assert line.startswith("Confirmed again in `found_mnist_best` (on an unrecorded machine, "
                           "in fp32): row 1 of the table reaches 93.0 ± ")
    assert "+2.0 [" in line and "] pp, paired" in line and "against DC's default in `models_2h` (better" in line
    [searches] = search_answer.collect([f for f in folders if f.name != "found_mnist"])
    assert searches.found.name == "found_mnist_best" and searches.again == []


def test_without_a_confirmation_or_a_random_search_the_section_says_so(results, tmp_path):
    folders = [results / "search_mnist"]
    text = search_answer.sections(folders, tmp_path / "docs", tmp_path)
    assert "whether TPE beat random sampling cannot be told on this dataset" in text
    assert "Not confirmed yet" in text


def test_a_search_run_in_two_parts_is_answered_as_one(results, tmp_path):
    """search_mnist's 13 trials as two parts, the second continuing the first: one section,
    whose budget and history count every trial in the order run and name the parts."""
    shutil.rmtree(results / "search_mnist")
    trials = [trial(i, 0.80 + 0.01 * i) for i in range(12)] + [trial(12, None, "OVER_TIME")]
    write_results(results / "search_mnist_1", {**SEARCH, "name": "search_mnist_1",
                                               "sampler": {"name": "tpe"},
                                               "max_core_hours": 0.01}, trials[:7])
    write_results(results / "search_mnist", {**SEARCH, "name": "search_mnist",
                                             "sampler": {"name": "tpe"},
                                             "continues": "results/search_mnist_1"}, trials[7:])
    folders = sorted(p.parent for p in results.glob("*/study.json"))
    text = search_answer.sections(folders, tmp_path / "docs", tmp_path)
    assert text.count("## What does a search find?") == 1
    assert "13 configurations (12 with a result, 1 stopped at max_trial_seconds" in text
    assert ("in 2 parts, each a study continuing the one before: `search_mnist_1` "
            "(max_core_hours 0.01); `search_mnist`") in text
    history, curves = search.history(search.ended_in_order([results / "search_mnist"]))
    assert history["trials run"].tolist() == [13]
    [(_, _, best)] = curves
    assert best.tolist()[:8] == pytest.approx([80 + i for i in range(8)])  # the order run


def test_a_random_search_on_a_slower_machine_says_how_much_slower_and_each_parts_limit(
        results, tmp_path):
    """The random search in two parts on another machine, its trials 1.5 and 2 times as long
    as TPE's for the same configurations, its second part given max_trial_seconds 1500 for
    the same work: the section measures the pace on the configurations both ran and names
    each part's limit."""
    shutil.rmtree(results / "search_mnist_random")
    slow = {**SEARCH, "sampler": {"name": "random"},
            "machine": "AMD EPYC (cpu family 25, model 17, AVX-512 BF16), 2 CPUs"}
    trials = [trial(i, 0.70 + 0.01 * i) for i in range(6)]
    write_results(results / "random_1", {**slow, "name": "random_1", "max_core_hours": 0.01},
                  trials[:3])
    write_results(results / "random_2", {**slow, "name": "random_2", "max_trial_seconds": 1500,
                                         "continues": "results/random_1"}, trials[3:])
    for part, slower in (("random_1", 1.5), ("random_2", 2.0)):
        path = results / part / "trials.parquet"
        rows = pd.read_parquet(path)
        rows["wall_seconds"] *= slower
        rows.to_parquet(path)
    ended = search.ended_in_order([results / "search_mnist", results / "random_2"])
    assert search.pace(ended).tolist() == \
        pytest.approx([1.5] * 3 + [2.0] * 3)
    folders = sorted(p.parent for p in results.glob("*/study.json"))
    text = search_answer.sections(folders, tmp_path / "docs", tmp_path)
    assert "stopped at max_trial_seconds (1000 s in `random_1`; 1500 s in `random_2`)" in text
    assert ("random_2's core-hours divided by 1.75, the median of how many times longer its "
            "trials took than search_mnist's for the 6 configurations both ran with a result "
            "(from 1.50 to 2.00)") in text


def test_a_confirmation_run_in_two_parts_is_one_confirmation(results, tmp_path, monkeypatch):
    """found_mnist's runs in two parts, the second continuing the first (a grid in parts):
    the same table as from one study, and the budget names the parts."""
    monkeypatch.setattr(search_answer, "SLICE_FIELDS", 1)
    folders = sorted(p.parent for p in results.glob("*/study.json"))
    whole = search_answer.sections(folders, tmp_path / "whole", tmp_path)
    study = json.loads((results / "found_mnist" / "study.json").read_text())
    trials = pd.read_parquet(results / "found_mnist" / "trials.parquet")
    shutil.copytree(results / "found_mnist", results / "found_mnist_1")
    (results / "found_mnist_1" / "study.json").write_text(json.dumps(
        {**study, "name": "found_mnist_1", "max_core_hours": 0.01, "launched": {
            "study_file": "studies/found_mnist.yaml",
            "overrides": ["max_core_hours=0.01", "name=found_mnist_1"]}}))
    (results / "found_mnist" / "study.json").write_text(json.dumps(
        {**study, "continues": "results/found_mnist_1"}))
    iterations = pd.read_parquet(results / "found_mnist" / "iterations.parquet")
    # part 1 ran the first configuration's 5 seeds and the second's first 2
    for part, mine in (("found_mnist_1", trials.iloc[:7]), ("found_mnist", trials.iloc[7:])):
        mine.to_parquet(results / part / "trials.parquet")
        iterations[iterations.trial_id.isin(mine.trial_id)].to_parquet(
            results / part / "iterations.parquet")
    folders = sorted(p.parent for p in results.glob("*/study.json"))
    [searches] = search_answer.collect(folders)
    assert searches.found.name == "found_mnist" and searches.again == []
    parts = search_answer.sections(folders, tmp_path / "parts", tmp_path)
    assert "Confirmation (`found_mnist`, in 2 parts: `found_mnist_1`, `found_mnist`)" in parts

    def table(text):
        return text[text.index("| configuration |"):].split("\n\n")[0]
    assert table(parts) == table(whole)
    # before part 2 ran: part 1's 7 runs confirmed, of the shipped study's 2 x 5
    (tmp_path / "found_mnist.yaml").write_text(
        "name: found_mnist\ngrid:\n- lr_img: [0.5]\n- lr_img: [2.0]\n")
    first = search_answer.sections([f for f in folders if f.name != "found_mnist"],
                                   tmp_path / "first", tmp_path)
    assert ("So far 7 of its 10 runs (configuration x seed) are confirmed: `found_mnist_1` "
            "ended at its max_core_hours, and a later part continuing it runs the rest.") in first
    assert "So far" not in search_answer.sections(folders, tmp_path / "parts", tmp_path)


def test_a_field_no_finished_trial_sampled_is_left_out_of_the_slices(tmp_path):
    """λ is sampled under hessian: hvp only; where every hvp trial ran over time, no finished
    trial has it, and the slices show the other fields (Optuna refuses a field it lacks)."""
    space = {**SPACE, "hessian": {"choice": ["none", "hvp"]},
             "hessian_weight": {"loguniform": [1e-6, 1e-2], "when": {"hessian": ["hvp"]}}}
    folder = tmp_path / "search"
    write_results(folder, {**SEARCH, "name": "search", "space": space, "factors": list(space),
                           "sampler": {"name": "tpe"}},
                  [trial(i, 0.8 + 0.01 * i) for i in range(4)]
                  + [trial(4, None, "OVER_TIME", hessian="hvp", hessian_weight=1e-3)])
    (tmp_path / "figures").mkdir()
    [figure] = search_answer.slice_figures(common.load(folder), tmp_path / "figures")
    assert figure.exists() and figure.stat().st_size > 0


def test_the_glance_line_gives_the_best_confirmed_and_tpe_against_random(results):
    folders = sorted(p.parent for p in results.glob("*/study.json"))
    [line] = search_answer.glance(folders)
    assert line.startswith("- What does a search find? MNIST (`search_mnist`, confirmed in "
                           "`found_mnist`")
    assert "best 93.0 % (target 93 %), +2.0 pp [" in line and "(better than DC's default)" in line
    # both searches at the random search's compute: its 6 trials against TPE's first ones
    random = 100 * (0.70 + 0.01 * 5)
    assert f"search_mnist_random (random) {random:.1f} %" in line
    assert line.endswith("(their trials' medians 82.5 vs 72.5 %, Mann-Whitney p = 0.0022)")
    assert search_answer.glance([results / "search_mnist"]) == []  # nothing confirmed yet


def test_the_glance_line_sets_a_random_search_on_a_slower_machine_at_estimated_core_hours(
        results):
    """The random search ran on a machine twice as slow (the same 6 configurations took
    twice the seconds): at equal trials and, estimated, at equal core-hours of TPE's machine
    it is set against TPE's first 6 trials."""
    folder = results / "search_mnist_random"
    study = json.loads((folder / "study.json").read_text())
    study["machine"] = "AMD EPYC (cpu family 25, model 17, AVX-512 BF16), 2 CPUs"
    (folder / "study.json").write_text(json.dumps(study))
    trials = pd.read_parquet(folder / "trials.parquet")
    trials["wall_seconds"] *= 2
    trials.to_parquet(folder / "trials.parquet")
    [line] = search_answer.glance(sorted(p.parent for p in results.glob("*/study.json")))
    assert "each within 6 trials" in line
    hours = 6 * 9 / 3600  # TPE's first 6 trials, 9 s each
    assert line.endswith(f"; within {hours:.2f} core-hours of search_mnist's machine (the "
                         "second search's estimated): 85.0 % vs 75.0 %")


def test_a_search_and_its_confirmation_answer_no_question_of_the_grids(results, tmp_path):
    """Both vary `init`, but neither is a designed comparison of its levels: only the
    search section speaks for them (its glance line included)."""
    for folder in results.iterdir():
        write_no_evaluations(folder)  # nothing re-evaluated after the protocol correction
    text = results_page.page(results, tmp_path / "docs").read_text()
    assert "How to initialise" not in text
    assert text.count("## What does a search find?") == 1
    glance = text.split("## At a glance")[1].split("\n## ")[0]
    assert glance.count("\n- ") == 1 and "What does a search find? MNIST" in glance


def test_a_confirmation_that_mixed_precisions_says_so(results, tmp_path, monkeypatch):
    """E.g. resumed on a CPU where `precision: auto` chooses bf16: the budget line counts
    the sets of each precision, as each trial recorded it."""
    monkeypatch.setattr(search_answer, "SLICE_FIELDS", 1)
    path = results / "found_mnist" / "trials.parquet"
    trials = pd.read_parquet(path)
    trials.loc[trials["seed"] == 4, "precision"] = "bf16"
    trials.to_parquet(path)
    folders = sorted(p.parent for p in results.glob("*/study.json"))
    text = search_answer.sections(folders, tmp_path / "docs", tmp_path / "studies")
    assert "in mixed precision: fp32 for 8 sets, bf16 for 2 sets." in text


def test_dcs_default_is_taken_in_the_precision_the_confirmation_ran_in(results, tmp_path,
                                                                       monkeypatch):
    """DC's default exists in fp32 (models_2h) and in bf16 (precision_2h): a confirmation
    in bf16 is paired with the bf16 sets, one in fp32 with the fp32 ones."""
    monkeypatch.setattr(search_answer, "SLICE_FIELDS", 1)
    shutil.copytree(results / "models_2h", results / "precision_2h")
    for name, shift in (("precision_2h", 0.01), ("found_mnist", 0.0)):
        path = results / name / "trials.parquet"
        trials = pd.read_parquet(path)
        trials["precision"] = "bf16"
        trials["full_acc_mean"] += shift  # the bf16 default 1 pp above the fp32 one
        trials.to_parquet(path)
    study = json.loads((results / "precision_2h" / "study.json").read_text())
    (results / "precision_2h" / "study.json").write_text(
        json.dumps({**study, "name": "precision_2h"}))
    folders = sorted(p.parent for p in results.glob("*/study.json"))
    text = search_answer.sections(folders, tmp_path / "docs", tmp_path / "studies")
    assert ("DC's default configuration (precision_2h, ConvNet, seeds 0, 1, 2, 3, 4): 92.0 "
            in text and "under the same protocol, in bf16." in text)
    assert "+1.0 [" in text  # 93 % against the bf16 default's 92 %, not the fp32 one's 91
    # the same confirmation in fp32 pairs with models_2h again
    path = results / "found_mnist" / "trials.parquet"
    trials = pd.read_parquet(path)
    trials["precision"] = "fp32"
    trials.to_parquet(path)
    text = search_answer.sections(folders, tmp_path / "docs2", tmp_path / "studies")
    assert "DC's default configuration (models_2h, ConvNet, seeds 0, 1, 2, 3, 4): 91.0" in text
