"""A search continued from an exported one (raygm/studies/continuation.py), on a small
local Ray cluster as in test_launch.py."""
import json

import optuna
import pandas as pd
import pytest

from analysis import common as common_analysis, search
from raygm.studies import launch
from raygm.studies.export import export_study
from raygm.studies.study_file import StudyError

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


@pytest.mark.parametrize("changes, says", [
    ({"search": {"lr_img": {"loguniform": [0.01, 0.5]}}}, r"\(it differs in space\)"),
    ({"continues": "nowhere"}, "the results folder of an exported search")])
def test_a_continuation_of_another_search_is_refused_before_it_starts(changes, says, tmp_path,
                                                                      data_dir):
    exported = tmp_path / "results" / "earlier"
    exported.mkdir(parents=True)
    (exported / "study.json").write_text(json.dumps({
        "name": "earlier", "kind": "search", "fixed": TINY, "objectives":
        [{"metric": "acc_mean", "mode": "max"}], "sampler": {"name": "tpe"},
        "max_trial_seconds": 0.0, "space": {"lr_img": {"loguniform": [0.01, 1.0]}}}))
    pd.DataFrame({"trial_id": ["a"]}).to_parquet(exported / "trials.parquet")
    path = write_study(tmp_path, name="next", trials=1, **{
        "search": {"lr_img": {"loguniform": [0.01, 1.0]}}, "continues": str(exported),
        **changes})
    with pytest.raises(StudyError, match=f"'continues' = .* is invalid; allowed: .*{says}"):
        launch.launch(path, storage=str(tmp_path / "out"), data_dir=data_dir)
    assert not (tmp_path / "out" / "next").exists()
