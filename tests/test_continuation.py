"""A study continued from an exported one (raygm/studies/continuation.py): searches and grids
in parts, on a small local Ray cluster as in test_launch.py."""
import json

import optuna
import pandas as pd
import pytest

from analysis import common as common_analysis, search
from raygm.studies import launch, status
from raygm.studies.continuation import earlier_trials
from raygm.studies.export import export_study
from raygm.studies.study_file import StudyError, parse_study

from test_launch import TINY, data_dir, local_ray, write_study  # noqa: F401 (fixtures)


def test_a_search_continues_an_exported_one_as_its_next_part(local_ray, tmp_path, data_dir):
    """Part 2 names part 1's export in `continues`: Optuna holds part 1's trials first, as
    they ended (params with `when` applied, values), then part 2's own; part 2's export says
    what it continued, and the analysis loads the two as one search in the order run."""
    space = {"lr_img": {"loguniform": [0.01, 1.0]}, "init": {"choice": ["noise", "real"]},
             "momentum_img": {"uniform": [0.0, 0.9], "when": {"init": ["real"]}}}
    common = dict(search=space, sampler={"name": "tpe", "multivariate": True, "group": True},
                  max_concurrent=1, resources={"cpu": 1})
    first = launch.launch(write_study(tmp_path, name="part1", trials=3, **common),
                          storage=str(tmp_path / "out"), data_dir=data_dir)
    exported = tmp_path / "results" / "part1"
    export_study(first.experiment_path, str(exported))
    second = launch.launch(write_study(tmp_path, name="part2", trials=2, sampler_seed=1,
                                       continues=str(exported), **common),
                           storage=str(tmp_path / "out"), data_dir=data_dir)
    assert not first.errors and not second.errors and len(second) == 2

    def optuna_trials(name):
        return optuna.load_study(study_name=name, storage=f"sqlite:///"
                                 f"{tmp_path / 'out' / name / 'optuna.db'}").trials
    earlier, held = optuna_trials("part1"), optuna_trials("part2")
    assert len(held) == 5
    for was, told in zip(earlier, held[:3]):
        assert (told.params, told.values, told.state) == (was.params, was.values, was.state)
        assert told.user_attrs["continued_from"] == f"part1/{was.user_attrs['ray_trial_id']}"
        assert ("momentum_img" in told.params) == (told.params["init"] == "real")
    assert all("continued_from" not in t.user_attrs for t in held[3:])

    export_study(second.experiment_path, str(tmp_path / "results" / "part2"))
    assert json.loads((tmp_path / "results" / "part2" / "study.json").read_text())[
        "continues"] == str(exported)
    joined = common_analysis.load(tmp_path / "results" / "part2")
    assert [p["name"] for p in joined.study["parts"]] == ["part1", "part2"]
    assert list(joined.trials.part) == [0] * 3 + [1] * 2
    order = joined.trials.iloc[search.started_order(joined.trials).argsort()]
    assert list(order.trial_id) == [t.user_attrs["ray_trial_id"] for t in earlier + held[3:]]
    assert all((joined.root / p).exists() for p in joined.trials.synthetic_path.dropna())


def test_a_grid_runs_in_parts_each_ending_whole_at_max_core_hours(local_ray, tmp_path, data_dir):
    """Part 1 of a grid (2 configurations x 2 seeds) starts no run past its max_core_hours: it
    ends complete after its first run. Part 2, continuing part 1's export, runs the 3 runs
    left, none twice; a part 3 would have nothing to run and is refused; the analysis loads
    the parts as one grid of 4 runs."""
    common = dict(grid={"init": ["noise", "real"]}, repeats=2, max_concurrent=1,
                  resources={"cpu": 1})
    first = launch.launch(write_study(tmp_path, name="grid1", max_core_hours=1e-6, **common),
                          storage=str(tmp_path / "out"), data_dir=data_dir)
    assert not first.errors and len(first) == 1
    assert status.stopped(first.experiment_path) is None  # whole: its budget was run
    export_study(first.experiment_path, str(tmp_path / "results" / "grid1"))
    second = launch.launch(write_study(tmp_path, name="grid2", continues=str(
        tmp_path / "results" / "grid1"), **common), storage=str(tmp_path / "out"),
        data_dir=data_dir)
    assert not second.errors and len(second) == 3
    assert status.stopped(second.experiment_path) is None  # all it planned: what was left
    export_study(second.experiment_path, str(tmp_path / "results" / "grid2"))
    joined = common_analysis.load(tmp_path / "results" / "grid2")
    assert sorted(zip(joined.trials.init, joined.trials.seed)) == [
        ("noise", 0), ("noise", 1), ("real", 0), ("real", 1)]
    assert list(joined.trials.part) == [0, 1, 1, 1]
    with pytest.raises(StudyError, match="'continues' = .* is invalid; allowed: a part of this "
                                         "grid that left runs to do"):
        launch.launch(write_study(tmp_path, name="grid3", continues=str(
            tmp_path / "results" / "grid2"), **common), storage=str(tmp_path / "out"),
            data_dir=data_dir)


def export_folder(folder, name: str, statuses: list[str], continues: str | None = None,
                  **study):
    """A results folder as `raygm export` writes one, of a search over lr_img."""
    folder.mkdir(parents=True)
    (folder / "study.json").write_text(json.dumps({
        "name": name, "kind": "search", "fixed": TINY, "objectives":
        [{"metric": "acc_mean", "mode": "max"}], "sampler": {"name": "tpe"},
        "max_trial_seconds": 0.0, "space": {"lr_img": {"loguniform": [0.01, 1.0]}},
        "continues": continues, **study}))
    # started in the reverse of the rows' order: the trials are told as started
    pd.DataFrame({"trial_id": [f"{name}{i}" for i in range(len(statuses))],
                  "trial_dir": [f"NamedTrial_{name}{i}_{len(statuses) - i}_lr=1"
                                for i in range(len(statuses))],
                  "status": statuses, "seed": 0, "lr_img": [0.1 * (i + 1) for i in
                                                            range(len(statuses))],
                  "acc_mean": [0.5 + 0.1 * i for i in range(len(statuses))]}).to_parquet(
        folder / "trials.parquet")


def test_a_third_part_is_told_the_trials_of_every_part_before_it(tmp_path):
    """Part 3 continues part 2, which continued part 1 (as launched: results/part1, found
    beside part 2): Optuna is told part 1's trials, then part 2's, each part's in the order
    they were started, as they ended."""
    export_folder(tmp_path / "results" / "part1", "part1", ["TERMINATED", "OVER_TIME"])
    export_folder(tmp_path / "results" / "part2", "part2", ["ERROR", "TERMINATED", "RUNNING"],
                  continues="results/part1")
    study = parse_study({"name": "part3", "fixed": TINY, "trials": 2,
                         "search": {"lr_img": {"loguniform": [0.01, 1.0]}},
                         "continues": str(tmp_path / "results" / "part2")}, "part3.yaml")
    told = earlier_trials(study, "part3.yaml")
    assert [t.user_attrs["continued_from"] for t in told] == [
        "part1/part11", "part1/part10", "part2/part21", "part2/part20"]  # RUNNING: not ended
    assert [t.state.name for t in told] == ["PRUNED", "COMPLETE", "COMPLETE", "FAIL"]
    assert [t.values for t in told] == [None, [0.5], [0.6], None]
    assert [t.params["lr_img"] for t in told] == pytest.approx([0.2, 0.1, 0.2, 0.1])


def test_a_part_on_a_slower_machine_may_have_more_seconds_per_trial(tmp_path):
    """max_trial_seconds counts seconds of the machine a part runs on: a part given more
    continues the earlier one (told its trials) instead of being refused."""
    export_folder(tmp_path / "results" / "part1", "part1", ["TERMINATED", "OVER_TIME"],
                  max_trial_seconds=1000.0)
    study = parse_study({"name": "part2", "fixed": TINY, "trials": 2,
                         "max_trial_seconds": 1430,
                         "search": {"lr_img": {"loguniform": [0.01, 1.0]}},
                         "continues": str(tmp_path / "results" / "part1")}, "part2.yaml")
    told = earlier_trials(study, "part2.yaml")
    assert [t.user_attrs["continued_from"] for t in told] == ["part1/part11", "part1/part10"]


@pytest.mark.parametrize("sampler", ["random", "tpe"])
def test_a_later_part_does_not_sample_the_first_parts_configurations_again(sampler, tmp_path):
    """Random sampling, and TPE before it has its startup trials, draw from the sampler's seed
    alone: seeded as part 1, part 2 would start with part 1's configurations."""
    raw = {"name": "part1", "fixed": TINY, "trials": 3, "sampler": {"name": sampler},
           "search": {"lr_img": {"loguniform": [0.01, 1.0]}}}

    def first_three(study, name):
        searcher = launch.search_algorithm(study, f"sqlite:///{tmp_path / name}.db", "s.yaml")
        return [searcher.suggest(f"{name}{i}")["lr_img"] for i in range(3)]

    part1 = first_three(parse_study(raw, "s.yaml"), "part1")
    export_folder(tmp_path / "results" / "part1", "part1", ["TERMINATED"] * 3,
                  sampler={"name": sampler})
    part2 = first_three(parse_study({**raw, "name": "part2", "continues": str(
        tmp_path / "results" / "part1")}, "s.yaml"), "part2")
    assert part1 == first_three(parse_study(raw, "s.yaml"), "again")  # a part 1 reproduces
    assert not set(part1) & set(part2)


@pytest.mark.parametrize("changes, says", [
    ({"search": {"lr_img": {"loguniform": [0.01, 0.5]}}}, r"\(earlier differs in space\)"),
    ({"continues": "nowhere"}, "the results folder of an exported search"),
    ({"grid": {"init": ["noise", "real"]}, "search": None, "trials": None},
     r"\(earlier is a search study\)")])
def test_a_continuation_of_another_study_is_refused_before_it_starts(changes, says, tmp_path,
                                                                      data_dir):
    exported = tmp_path / "results" / "earlier"
    export_folder(exported, "earlier", ["TERMINATED"])
    keys = {"trials": 1, "search": {"lr_img": {"loguniform": [0.01, 1.0]}},
            "continues": str(exported), **changes}
    path = write_study(tmp_path, name="next", **{k: v for k, v in keys.items() if v})
    with pytest.raises(StudyError, match=f"'continues' = .* is invalid; allowed: .*{says}"):
        launch.launch(path, storage=str(tmp_path / "out"), data_dir=data_dir)
    assert not (tmp_path / "out" / "next").exists()
