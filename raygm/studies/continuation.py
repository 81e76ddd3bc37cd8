"""A search continued from an exported one (the study key `continues`).

Optuna is told the earlier search's trials, in the order they were started, before this
search's first suggestion (Optuna's `Study.add_trials`): a search longer than one sitting runs
as parts, each a whole study exported and kept on its own, while TPE models the space from
every trial so far. A trial is told as the live search told it (launch.Search): its value where
it finished with one, pruned where it ended without (over time, diverged), failed on an error.
"""
from __future__ import annotations

import json
import math
import posixpath
from dataclasses import asdict

import optuna
import pyarrow.parquet as pq
from optuna.trial import TrialState

from ..core import records
from ..core.files import absolute, filesystem
from .export import STUDY_JSON, TRIALS, is_export
from .study_file import Study, StudyError
from .trial import applies, optuna_distribution

# what must match for two searches to be one: a trial of either could be a trial of the other
SAME = ("fixed", "space", "objectives", "sampler", "max_trial_seconds")


def earlier_trials(study: Study, file: str) -> list[optuna.trial.FrozenTrial]:
    """The trials of the search `continues` names, as Optuna trials; refused before any
    compute (the field, what is allowed) unless it is an exported search of the same space,
    fixed settings, objectives, sampler and trial time limit."""
    folder = absolute(study.continues)
    if not is_export(folder):
        raise StudyError(file, "continues", study.continues,
                         "the results folder of an exported search (`raygm export STUDY --to "
                         "FOLDER`: study.json and trials.parquet)")
    fs, root = filesystem(folder)
    with fs.open_input_file(posixpath.join(root, STUDY_JSON)) as f:
        earlier = json.loads(f.read())
    mine = {"fixed": study.fixed, "space": study.space(),
            "objectives": [asdict(o) for o in study.objectives], "sampler": study.sampler,
            "max_trial_seconds": study.max_trial_seconds}
    differ = [key for key in SAME if json.dumps(earlier.get(key), sort_keys=True)
              != json.dumps(mine[key], sort_keys=True)]
    if earlier.get("kind") != "search" or differ:
        raise StudyError(file, "continues", study.continues,
                         "an exported search of this study's " + ", ".join(SAME)
                         + (f" (it differs in {', '.join(differ)})" if differ else
                            f" (it is a {earlier.get('kind')} study)"))
    rows = pq.read_table(posixpath.join(root, TRIALS), filesystem=fs).to_pylist()
    rows = sorted((r for r in rows if r["status"] in records.ENDED_STATUSES),
                  key=lambda r: records.started_number(r["trial_id"], r["trial_dir"]))
    return [told(study, earlier["name"], row) for row in rows]


def told(study: Study, earlier: str, row: dict) -> optuna.trial.FrozenTrial:
    params = {}
    for key, spec in study.search.items():  # sampled in the file's order, as SearchSpace
        if applies(spec, params):
            params[key] = row[key]
    values = [row.get(metric) for metric in study.objective_names]
    finished = row["status"] == "TERMINATED" and all(
        v is not None and math.isfinite(v) for v in values)
    state = TrialState.COMPLETE if finished else \
        TrialState.FAIL if row["status"] == "ERROR" else TrialState.PRUNED
    return optuna.trial.create_trial(
        state=state, values=values if finished else None, params=params,
        distributions={k: optuna_distribution(k, study.search[k]) for k in params},
        user_attrs={"continued_from": f"{earlier}/{row['trial_id']}",
                    "status": row["status"], "seed": row["seed"]})
