"""A study continued from an exported one (the study key `continues`): a study longer than one
sitting runs as parts, each a whole study exported and kept on its own, and the analysis
joins them (analysis.common.load).

A search's part: Optuna is told every earlier part's trials, first part first, each part's in
the order they were started, before this part's first suggestion (Optuna's
`Study.add_trials`), so TPE models the space from every trial so far. A trial is told as the
live search told it (launch.Search): its value where it finished with one, pruned where it
ended without (over time, diverged), failed on an error. Each part seeds its sampler with its
own seed (sampler_seed).

A grid's part: runs the grid's runs (configuration x seed) that no earlier part ended; a run
that failed with an error is run again.
"""
from __future__ import annotations

import json
import math
import posixpath

import numpy as np
import optuna
import pyarrow.parquet as pq
from optuna.trial import TrialState

from ..core import records
from ..core.config import RunConfig
from ..core.files import absolute, filesystem
from .export import STUDY_JSON, TRIALS, described, is_export
from .study_file import Study, StudyError
from .trial import applies, optuna_distribution

# what must match for two parts to be one study: a trial of either could be one of the other.
# Not max_trial_seconds: seconds of the machine a part runs on, so a part on a slower one may
# be given more for the same work (the results page names each part's).
SAME = {"search": ("fixed", "space", "objectives", "sampler"),
        "grid": ("fixed", "grid", "repeats", "objectives", "confirm")}


def earlier_parts(study: Study, file: str) -> list[tuple[dict, list[dict]]]:
    """Each earlier part's study.json and ended trials (trials.parquet rows, in the order
    they were started), first part first: the part `continues` names and, through their own
    `continues` (a results folder beside it), the parts before it. Refused before any compute
    (the field, what is allowed) unless `continues` is an export of this study's kind with the
    same SAME keys."""
    allowed = f"the results folder of an exported {study.kind} (`raygm export STUDY --to " \
              "FOLDER`: study.json and trials.parquet)"
    if not is_export(absolute(study.continues)):
        raise StudyError(file, "continues", study.continues, allowed)
    fs, root = filesystem(absolute(study.continues))
    mine = described(study)
    parts = []
    while True:
        with fs.open_input_file(posixpath.join(root, STUDY_JSON)) as f:
            earlier = json.loads(f.read())
        same = SAME[study.kind]
        differ = [key for key in same if json.dumps(earlier.get(key), sort_keys=True)
                  != json.dumps(mine[key], sort_keys=True)]
        if earlier.get("kind") != study.kind or differ:
            raise StudyError(file, "continues", study.continues,
                             f"an exported {study.kind} of this study's " + ", ".join(same)
                             + (f" ({earlier['name']} differs in {', '.join(differ)})"
                                if earlier.get("kind") == study.kind else
                                f" ({earlier['name']} is a {earlier.get('kind')} study)"))
        rows = pq.read_table(posixpath.join(root, TRIALS), filesystem=fs).to_pylist()
        rows = sorted((r for r in rows if r["status"] in records.ENDED_STATUSES),
                      key=lambda r: records.started_number(r["trial_id"], r["trial_dir"]))
        parts.insert(0, (earlier, rows))
        if not earlier.get("continues"):
            return parts
        # as the analysis finds it: the folder of that name beside this one
        root = posixpath.join(posixpath.dirname(root), posixpath.basename(
            earlier["continues"].rstrip("/")))
        if not is_export(root):
            raise StudyError(file, "continues", study.continues,
                             f"{allowed}, whose earlier parts lie beside it ({earlier['name']} "
                             f"continues {earlier['continues']}, not found at {root})")


def earlier_trials(study: Study, file: str) -> list[optuna.trial.FrozenTrial]:
    """A search's earlier parts' trials, as Optuna trials in the order they ran."""
    return [told(study, earlier["name"], row)
            for earlier, rows in earlier_parts(study, file) for row in rows]


def sampler_seed(study: Study, file: str) -> int:
    """The file's sampler_seed for a search's first part; for a later part, a seed drawn from
    it and the part's number: seeded as part 1, a part would sample part 1's configurations
    again (RandomSampler's draws, and TPE's while it has fewer trials than its startup, do
    not depend on the trials it was told)."""
    if not study.continues:
        return study.sampler_seed
    part = len(earlier_parts(study, file))
    return int(np.random.SeedSequence([study.sampler_seed, part]).generate_state(1)[0])


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


def grid_runs(study: Study, file: str) -> list[dict]:
    """A grid's runs as the trial configs Ray Tune gives its trials ({point, repeat}), in
    the order of the file; with `continues`, only those no earlier part ended (refused
    when none is left)."""
    runs = [{"point": point, "repeat": repeat} for point in study.grid_points
            for repeat in range(study.repeats)]
    if not study.continues:
        return runs

    def key(config: RunConfig) -> str:  # a run: its varied settings and seed
        values = config.to_dict()
        return json.dumps([values[k] for k in [*study.factors, "seed"]])

    ended = {key(RunConfig.from_row(row)) for _, rows in earlier_parts(study, file)
             for row in rows if row["status"] != "ERROR"}
    left = [run for run in runs
            if key(study.run_config(run["point"], run["repeat"])) not in ended]
    if not left:
        raise StudyError(file, "continues", study.continues,
                         "a part of this grid that left runs to do (every configuration and "
                         "seed of the grid has ended there)")
    return left
