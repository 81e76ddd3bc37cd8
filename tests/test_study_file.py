from pathlib import Path

import pytest
import yaml

from raygm.studies.study_file import StudyError, load_study, parse_study

STUDIES = sorted(Path(__file__).parents[1].glob("studies/*.yaml"))


def study(**changes):
    raw = {"name": "t", "fixed": {"iterations": 4, "eval_at": [0, 4]},
           "grid": {"init": ["noise", "real"]}}
    raw.update(changes)
    return raw


def error(raw) -> StudyError:
    with pytest.raises(StudyError) as info:
        parse_study(raw, "x.yaml")
    return info.value


@pytest.mark.parametrize("path", STUDIES, ids=[p.name for p in STUDIES])
def test_shipped_studies_are_valid(path):
    s = load_study(path)
    assert s.num_trials >= 1 and s.factors
    for point in s.grid_points or [{}]:
        s.run_config(point, s.repeats - 1)  # every trial's config is a valid RunConfig


def test_the_seed_studies_are_shipped():
    names = {p.stem for p in STUDIES}
    assert {"smoke", "models", "init", "hessian", "search"} <= names
    assert set(load_study(Path(STUDIES[0]).parent / "models.yaml").space()["model"]["grid"]) \
        == {"MLP", "ConvNet", "LeNet"}
    assert len(load_study(Path(STUDIES[0]).parent / "init.yaml").space()["init"]["grid"]) >= 5


def test_grid_union_repeats_and_seeds():
    s = parse_study(study(grid=[{"hessian": ["none"]},
                                {"hessian": ["hvp", "curvature"], "hessian_weight": [0.1, 1.0]}],
                          repeats=3), "x.yaml")
    assert len(s.grid_points) == 5 and s.num_trials == 15
    assert s.factors == ["hessian", "hessian_weight"]
    assert [s.run_config({}, r).seed for r in range(3)] == [0, 1, 2]
    assert s.run_config({"hessian": "hvp", "hessian_weight": 0.1}, 0).uses_hessian


@pytest.mark.parametrize("raw, key, allowed", [
    (study(colour="red"), "colour", "one of name"),
    (study(fixed={"iterations": 4, "eval_at": [0, 4], "lr": 1}), "fixed.lr", "run config field"),
    (study(fixed={"iterations": "many"}), "fixed.iterations", "int"),
    (study(grid={"init": ["noise", "purple"]}), "grid.init", "noise, real, black"),
    (study(grid={"model": []}), "grid.model", "non-empty list"),
    (study(grid={}, search={"model": {"choice": ["MLP", "GPT"]}}), "search.model.choice", "MLP"),
    (study(grid={}, search={"lr_img": {"normal": [0, 1]}}), "search.lr_img", "loguniform"),
    (study(grid={}, search={"lr_img": {"loguniform": [0, 1]}}), "search.lr_img.loguniform",
     "low > 0"),
    (study(grid={}, search={"hessian_weight": {"uniform": [-1, 1]}}),
     "search.hessian_weight.uniform", ">= 0"),
    (study(search={"lr_img": {"uniform": [0.1, 1]}}), "grid", "not both"),
    (study(repeats=0), "repeats", ">= 1"),
    (study(sampler="random"), "sampler", "only with search"),
    (study(grid={}, search={"lr_img": {"loguniform": [0.1, 1]}}, sampler="cmaes"),
     "sampler.name", "tpe, random"),
    (study(grid={}, search={"lr_img": {"loguniform": [0.1, 1]}},
           sampler={"name": "random", "multivariate": True}), "sampler.multivariate", "name"),
    (study(grid={}, search={"lr_img": {"loguniform": [0.1, 1]}},
           sampler={"name": "tpe", "group": True}), "sampler.group", "multivariate is true"),
    (study(grid={}, search={"lr_img": {"loguniform": [0.1, 1]}},
           sampler={"name": "tpe", "multivariate": "yes"}), "sampler.multivariate", "true or"),
    (study(trials=5), "trials", "only with search"),
    (study(continues="results/init_1", confirm={"top": 1}), "confirm.top",
     "at least the grid's 2 configurations"),
    (study(grid={}, search={"lr_img": {"loguniform": [0.1, 1]}}, continues=3), "continues",
     "results folder of an exported study"),
    (study(objectives=[{"metric": "accuracy", "mode": "max"}]), "objectives[0].metric",
     "acc_mean"),
    (study(objectives=[{"metric": "acc_mean", "mode": "up"}]), "objectives[0].mode", "max, min"),
    (study(resources={"cpu": 1, "tpu": 1}), "resources.tpu", "cpu, gpu"),
    (study(resources={"cpu": 0}), "resources.cpu", "> 0"),
    (study(resources={"gpu": 1.5}), "resources.gpu", "fraction"),
    (study(scheduler="hyperband"), "scheduler.name", "none, asha"),
    (study(scheduler={"name": "asha", "reduction_factor": 1}), "scheduler.reduction_factor",
     ">= 2"),
    (study(scheduler="asha", objectives=[{"metric": "acc_mean", "mode": "max"},
                                         {"metric": "distill_seconds", "mode": "min"}]),
     "scheduler.name", "two objectives"),
    (study(fixed={"iterations": 4, "eval_at": [0, 2]}), "fixed.eval_at", "last iteration"),
    (study(fixed={"iterations": 4, "eval_at": [0, 4], "eval_models": 0}), "eval_models",
     ">= 1"),
    (study(name="my study!"), "name", "letters, digits"),
    (study(grid={}, search={"hessian": {"choice": ["none", "hvp"]},
                            "hessian_weight": {"uniform": [0, 1], "when": {"hesian": ["hvp"]}}}),
     "search.hessian_weight.when.hesian", "a field sampled with choice above hessian_weight: "
                                          "hessian"),
    (study(grid={}, search={"hessian": {"choice": ["none", "hvp"]},
                            "hessian_weight": {"uniform": [0, 1], "when": {"hessian": ["hpv"]}}}),
     "search.hessian_weight.when.hessian", "a non-empty list of its choices: none, hvp"),
    (study(grid={}, search={"hessian_weight": {"uniform": [0, 1], "when": {"hessian": ["hvp"]}},
                            "hessian": {"choice": ["none", "hvp"]}}),
     "search.hessian_weight.when.hessian", "above hessian_weight: (none)"),
    (study(grid={}, search={"hessian_weight": {"uniform": [0, 1], "if": {"hessian": ["hvp"]}}}),
     "search.hessian_weight", "optional when"),
    (study(grid={"model": ["MLP", "ConvNet"]},
           objectives=[{"metric": "acc_mean_MLP", "mode": "max"}]),
     "objectives[0].metric", "acc_mean, loss, distill_seconds"),
    (study(confirm={"top": 2, "networks": 5}), "confirm.networks", "eval_models"),
    (study(confirm={"top": 0}), "confirm.top", ">= 1"),
    (study(confirm={"protocol": "dc"}), "confirm.protocol", "full, study"),
    (study(confirm={"also_archs": ["Convnet"]}), "confirm.also_archs", "ConvNet, LeNet"),
    (study(confirm={"also_archs": "ConvNet"}), "confirm.also_archs", "a list"),
])
def test_bad_study_files_name_file_key_and_allowed_values(raw, key, allowed):
    e = error(raw)
    assert e.file == "x.yaml" and e.key == key, str(e)
    assert allowed in str(e) and "x.yaml" in str(e)


def test_objectives_may_name_an_architecture_every_trial_evaluates():
    fixed = {"iterations": 4, "eval_at": [0, 4], "eval_archs": ["ConvNet", "MLP"]}
    s = parse_study(study(fixed=fixed,
                          grid={"model": ["MLP", "LeNet"]},
                          objectives=[{"metric": "acc_mean_MLP", "mode": "max"}]), "x.yaml")
    assert s.common_architectures == ("ConvNet", "MLP") and s.metric == "acc_mean_MLP"


def test_conditional_search_fields_keep_their_distribution():
    s = parse_study(study(grid={}, search={
        "hessian": {"choice": ["none", "curvature"]},
        "hessian_weight": {"loguniform": [1e-4, 1e-2], "when": {"hessian": ["curvature"]}}}),
        "x.yaml")
    assert s.space()["hessian_weight"]["when"] == {"hessian": ["curvature"]}
    assert s.max_iterations == 4


def test_unreadable_yaml_names_the_file(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: a\nfixed: {iterations: [1, 2\n")
    with pytest.raises(StudyError, match="broken.yaml.*valid YAML"):
        load_study(path)


def test_study_file_round_trips_through_yaml(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(study(repeats=2)))
    assert load_study(path).num_trials == 4


def test_the_space_lists_list_valued_grid_values_once():
    # eval_at varies per union part in the Hessian studies: its values are lists
    space = load_study(Path(STUDIES[0]).parent / "hessian_sweep.yaml").space()
    assert space["eval_at"]["grid"] == [[200], [10]]
    assert space["hessian_weight"]["grid"][:3] == [1.0, 10.0, 100.0]
