"""Checks shared by the tests that launch studies on Ray."""
import math
from pathlib import Path

import pandas as pd
import pytest
from ray import tune
from ray.tune.result import AUTO_RESULT_KEYS, DEFAULT_EXPERIMENT_INFO_KEYS

from raygm.studies.export import export_study


class Reports(tune.Callback):
    """Every result the trials of a study report."""

    def __init__(self):
        self.results = []

    def on_trial_result(self, iteration, trials, trial, result, **info):
        self.results.append(dict(result))


def assert_reports_exported(study_path: str, results: list[dict]) -> None:
    """Every metric a trial reported is a column of the export, holding the reported value
    where it was measured (accuracies: at evaluated iterations; null elsewhere)."""
    ray_keys = {*AUTO_RESULT_KEYS, *DEFAULT_EXPERIMENT_INFO_KEYS, "done", "should_checkpoint"}
    out = Path(export_study(study_path))
    iterations = pd.read_parquet(out / "iterations.parquet")
    trials = pd.read_parquet(out / "trials.parquet").set_index("trial_id")
    assert results
    for result in results:
        [row] = iterations[(iterations.trial_id == result["trial_id"])
                           & (iterations.iteration == result["iteration"])].to_dict("records")
        for key, value in result.items():
            if key in ray_keys:
                continue
            if key in iterations.columns:
                exported = row[key]
            else:
                assert key in trials.columns, f"reported {key!r} is not a column of the export"
                exported = trials.loc[result["trial_id"], key]
            measured = not (isinstance(value, float) and math.isnan(value)) and (
                not key.startswith("acc_") or result["evaluated"])
            if measured:
                assert exported == pytest.approx(value) if isinstance(value, float) \
                    else exported == value, key
            else:
                assert pd.isna(exported), key
