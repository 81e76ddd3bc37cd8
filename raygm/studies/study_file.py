"""A study file: what to vary, how to search it, and what each trial may use.

Pure Python (no Ray): a study is read and fully validated, every value checked against
RunConfig, before Ray is started. See studies/*.yaml for examples and README for the keys.
"""
from __future__ import annotations

import collections.abc
import itertools
import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Iterator

import yaml

from ..core.choices import Choices
from ..core.config import SCALAR_TYPES, ConfigError, RunConfig
from ..core.eval_protocol import PROTOCOLS
from ..core.models import MODELS
from ..core.records import objective_metrics

MODES = ("max", "min")
SCHEDULERS = ("none", "asha")
# A search's Optuna sampler: name -> (its class in optuna.samplers, the options a study file
# may set). TPE's: multivariate (model the parameters jointly) and group (apart for each set
# of parameters a `when` samples together: the conditional space). Named here, built by the
# search (launch.py), so that this module needs no Optuna.
SAMPLERS = Choices("sampler", {"tpe": ("TPESampler", ("multivariate", "group")),
                               "random": ("RandomSampler", ())})
DISTRIBUTIONS = ("choice", "uniform", "loguniform")
CONFIG_KEYS = {f.name for f in fields(RunConfig)}
TOP_KEYS = ("name", "description", "fixed", "grid", "search", "trials", "repeats",
            "objectives", "resources", "max_concurrent", "scheduler", "checkpoint_every",
            "max_failures", "max_trial_seconds", "max_core_hours", "sampler", "sampler_seed",
            "confirm", "continues")


class StudyError(ValueError):
    """A study file has a key or value it does not allow."""

    def __init__(self, file: str, key: str, value: Any, allowed: str):
        super().__init__(f"{file}: '{key}' = {value!r} is invalid; allowed: {allowed}")
        self.file, self.key, self.value, self.allowed = file, key, value, allowed

    def __reduce__(self):  # pickles intact, e.g. from a Ray worker to the driver
        return type(self), (self.file, self.key, self.value, self.allowed)


@dataclass(frozen=True)
class Objective:
    metric: str = "acc_mean"
    mode: str = "max"


@dataclass(frozen=True)
class Scheduler:
    """none, or ASHA stopping trials early on the (one) objective."""
    name: str = "none"
    grace_period: int = 1  # iterations
    reduction_factor: int = 4


@dataclass(frozen=True)
class Confirm:
    """After the study: re-evaluate the saved synthetic sets of its best `top` configurations
    (all their seeds) under `protocol` with eval_models networks (`raygm evaluate`)."""
    top: int = 3
    eval_models: int = 10
    eval_epochs: int | None = None  # None: the protocol's own
    protocol: str = "full"
    also_archs: tuple[str, ...] = ()


@dataclass
class Study:
    name: str
    fixed: dict[str, Any] = field(default_factory=dict)
    grid: list[dict[str, list]] = field(default_factory=list)  # a union of full factorials
    search: dict[str, dict[str, list]] = field(default_factory=dict)
    trials: int = 1
    repeats: int = 1
    objectives: list[Objective] = field(default_factory=lambda: [Objective()])
    resources: dict[str, float] = field(default_factory=lambda: {"cpu": 1, "gpu": 0})
    max_concurrent: int = 0  # 0: as many as the resources allow
    scheduler: Scheduler = Scheduler()
    checkpoint_every: int = 10
    max_failures: int = 2
    max_trial_seconds: float = 0  # Ray Tune stops a trial past it (0: never); see launch.py
    max_core_hours: float = 0  # no trial starts past it (0: never); see launch.py
    sampler: dict[str, Any] = field(default_factory=lambda: {"name": "tpe"})
    sampler_seed: int = 0
    description: str = ""
    confirm: Confirm | None = None
    # the exported earlier part of this study: a study longer than a session runs as parts
    # (a search tells Optuna the earlier trials, a grid runs what is left: continuation.py)
    continues: str = ""

    @property
    def kind(self) -> str:
        return "search" if self.search else "grid"

    @property
    def grid_in_parts(self) -> bool:
        """A grid with a budget or an earlier part: its runs are suggested one at a time
        (launch.Grid), not queued whole by Ray Tune's grid_search (trial.param_space)."""
        return self.kind == "grid" and bool(self.max_core_hours or self.continues)

    @property
    def factors(self) -> list[str]:
        """The config fields the study varies, in the order the file names them."""
        keys = [k for block in self.grid for k in block] + list(self.search)
        return list(dict.fromkeys(keys))

    @property
    def grid_points(self) -> list[dict[str, Any]]:
        """A grid's configurations; a study of fixed settings only has one (x repeats)."""
        return [dict(zip(block, combo)) for block in self.grid
                for combo in itertools.product(*block.values())] or [{}]

    @property
    def objective_names(self) -> list[str]:
        return [o.metric for o in self.objectives]

    @property
    def metric(self) -> str | list[str]:
        metrics = self.objective_names
        return metrics[0] if len(metrics) == 1 else metrics

    @property
    def mode(self) -> str | list[str]:
        modes = [o.mode for o in self.objectives]
        return modes[0] if len(modes) == 1 else modes

    @property
    def num_trials(self) -> int:
        return (len(self.grid_points) if self.kind == "grid" else self.trials) * self.repeats

    @property
    def max_iterations(self) -> int:
        """The longest trial's iterations (ASHA's horizon)."""
        return max(_values(self, "iterations"))

    def run_config(self, sampled: dict[str, Any], repeat: int) -> RunConfig:
        """The trial's configuration: fixed settings, the sampled ones, a seed per repeat."""
        values = {**self.fixed, **sampled}
        values["seed"] = values.get("seed", 0) + repeat
        return RunConfig.from_dict(values)

    @property
    def common_architectures(self) -> tuple[str, ...]:
        """The evaluation architectures every trial evaluates on."""
        if self.kind == "grid":
            sets = [self.run_config(p, 0).eval_architectures for p in self.grid_points]
        else:
            sets = [archs or (model,) for archs in _values(self, "eval_archs")
                    for model in _values(self, "model")]
        return tuple(a for a in sets[0] if all(a in s for s in sets))

    def configs(self) -> list[RunConfig]:
        """Every configuration a trial can have, up to its seed (a search: every combination
        of its choices and interval ends)."""
        if self.kind == "grid":
            points = self.grid_points
        else:
            points = list(itertools.islice(_corners(self.search), MAX_COMBINATIONS))
        return [self.run_config(p, 0) for p in points]

    def key_of(self, name: str) -> str:
        """Where the study sets a config field, for error messages."""
        if name in self.search:
            return f"search.{name}.{distribution(self.search[name])[0]}"
        return f"grid.{name}" if name in self.factors else f"fixed.{name}"

    def space(self) -> dict[str, dict]:
        """What varies, for the exported metadata and the analysis scripts."""
        grid = {k: [] for k in self.factors if k not in self.search}
        for point in self.grid_points:
            for k, values in grid.items():  # values may be lists (eval_at): no set, no dict
                if k in point and point[k] not in values:
                    values.append(point[k])
        return {**{k: {"grid": v} for k, v in grid.items()}, **self.search}


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping (PyYAML keeps the last
    silently, so a study would run what its author did not read)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, collections.abc.Hashable) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} given twice", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


def read_raw(text: str, file: str) -> Any:
    """A study file's YAML, or a StudyError naming the file and where the YAML breaks."""
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        raise StudyError(file, "(whole file)", "unreadable", f"valid YAML ({exc})") from None


def apply_overrides(raw: Any, overrides: list[str], file: str) -> Any:
    """`--set key=value` (value in YAML): a top-level study key, or a run config field that
    goes into `fixed`."""
    if not overrides or not isinstance(raw, dict):
        return raw
    raw = {**raw, "fixed": dict(raw.get("fixed") or {})}
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or (key not in TOP_KEYS and key not in CONFIG_KEYS):
            raise StudyError(file, f"--set {item}", item, "key=value with key a study key ("
                             + ", ".join(TOP_KEYS) + ") or a run config field")
        value = read_raw(text, f"{file} (--set {key})")
        if key in TOP_KEYS:
            raw[key] = value
        else:
            raw["fixed"][key] = value
    return raw


def load_study(path: str | Path, overrides: list[str] | None = None) -> Study:
    path = Path(path)
    if not path.is_file():
        raise StudyError(str(path), "(whole file)", "missing", "an existing study file, e.g. "
                         "studies/smoke.yaml")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise StudyError(str(path), "(whole file)", "not text", "a YAML file in UTF-8") from None
    raw = apply_overrides(read_raw(text, str(path)), overrides or [], str(path))
    return parse_study(raw, str(path))


DEFAULT = Study(name="")  # the defaults of every study key, written once (the dataclasses)
# Ray's metric tags and folder names take ASCII only
NAME_RULE = "a study name of 1 to 64 ASCII letters, digits, - and _"


class _Reader:
    """The checks every section of a study file shares: each failure names the file, the
    key and what is allowed."""

    def __init__(self, file: str):
        self.file = file

    def fail(self, key: str, value: Any, allowed: str):
        raise StudyError(self.file, key, value, allowed)

    def typed(self, key: str, value: Any, kind, allowed: str):
        if not isinstance(value, kind) or isinstance(value, bool):
            self.fail(key, value, allowed)
        return value

    def at_least(self, key: str, value: Any, low: int, allowed: str | None = None) -> int:
        if self.typed(key, value, int, allowed or f"an integer >= {low}") < low:
            self.fail(key, value, f"an integer >= {low}")
        return value

    def config_key(self, section: str, key: str) -> None:
        if key not in CONFIG_KEYS:
            self.fail(f"{section}.{key}", None,
                      "a run config field: " + ", ".join(sorted(CONFIG_KEYS)))

    def check_config(self, study: Study, section: str, values: dict) -> None:
        """The values must make a valid RunConfig together with the fixed settings."""
        try:
            RunConfig.from_dict({**study.fixed, **values})
        except ConfigError as exc:
            if exc.field not in values:
                self.fail(f"fixed.{exc.field}", study.fixed.get(exc.field), exc.allowed)
            key, allowed = f"{section}.{exc.field}", exc.allowed
            others = {k: v for k, v in values.items() if k != exc.field}
            if section == "search":  # name the distribution and what the value met
                key += "." + distribution(study.search[exc.field])[0]
                if others:
                    allowed += (f" (sampled with {others}; a field that applies to some "
                                "choices only is sampled under `when: {field: [values]}`)")
            self.fail(key, values[exc.field], allowed)


def parse_study(raw: Any, file: str) -> Study:
    """A study file's YAML as a validated Study, or a StudyError naming the first bad key."""
    r = _Reader(file)
    r.typed("(top level)", raw, dict, "a mapping of study keys")
    for key in raw:
        if key not in TOP_KEYS:
            r.fail(key, raw[key], "one of " + ", ".join(TOP_KEYS))
    name = r.typed("name", raw.get("name"), str, NAME_RULE)
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", name):
        r.fail("name", name, NAME_RULE)
    study = Study(name=name, description=raw.get("description", DEFAULT.description))
    _fixed(r, raw, study)
    _varied(r, raw, study)
    _counts(r, raw, study)
    study.objectives = _objectives(r, raw, study)
    study.resources = _resources(r, raw)
    study.scheduler = _scheduler(r, raw)
    study.sampler = _sampler(r, raw, study)
    study.confirm = _confirm(r, raw)
    study.continues = r.typed("continues", raw.get("continues", DEFAULT.continues), str,
                              "the results folder of an exported study (raygm export)")
    configurations = len(study.grid_points)
    if study.grid_in_parts and study.confirm and study.confirm.top < configurations:
        # each part confirms its own sets: the best of one part need not be the grid's
        r.fail("confirm.top", study.confirm.top, f"at least the grid's {configurations} "
               "configurations where it runs in parts (continues, max_core_hours)")
    _combinations(r, study)
    return study


def _fixed(r: _Reader, raw: dict, study: Study) -> None:
    study.fixed = r.typed("fixed", raw.get("fixed", {}), dict, "a mapping of run config fields")
    for key in study.fixed:
        r.config_key("fixed", key)
    r.check_config(study, "fixed", {})


def _varied(r: _Reader, raw: dict, study: Study) -> None:
    """grid (a union of full factorials) or search (Optuna's space), never both."""
    grid = raw.get("grid", [])
    study.grid = r.typed("grid", [grid] if isinstance(grid, dict) and grid else grid or [],
                         list, "a mapping field -> list of values, or a list of such mappings")
    study.search = r.typed("search", raw.get("search", {}), dict,
                           "a mapping: field -> {choice|uniform|loguniform: [...]}")
    if study.grid and study.search:
        r.fail("grid", list(study.grid), "either grid (a full factorial) or search, not both")
    for block in study.grid:
        r.typed("grid", block, dict, "mappings field -> list of values")
        for key, values in block.items():
            r.config_key("grid", key)
            if not r.typed(f"grid.{key}", values, list, "a non-empty list of values"):
                r.fail(f"grid.{key}", values, "a non-empty list of values")
            if len({repr(v) for v in values}) < len(values):  # the same trial twice
                r.fail(f"grid.{key}", values, "a list of distinct values")
    for key in study.fixed:
        if any(key in block for block in study.grid) or key in study.search:
            r.fail(f"fixed.{key}", study.fixed[key], "a field that grid/search do not vary "
                   "(remove it from fixed or from the varied fields)")
    for point in study.grid_points:
        r.check_config(study, "grid", point)
    for key, spec in study.search.items():
        _search_entry(r, study, key, spec)
    # every combination of the choices and interval ends a trial can meet (`when` applied)
    for combination in itertools.islice(_corners(study.search), MAX_COMBINATIONS):
        r.check_config(study, "search", combination)


def _search_entry(r: _Reader, study: Study, key: str, spec: Any) -> None:
    r.config_key("search", key)
    where = f"search.{key}"
    dists = [k for k in spec if k in DISTRIBUTIONS] if isinstance(spec, dict) else []
    if len(dists) != 1 or set(spec) - {dists[0], "when"}:
        r.fail(where, spec, "one of {choice: [v, ...]}, {uniform: [low, high]}, "
                            "{loguniform: [low, high]}, with an optional when: {field: [values]}")
    dist, values = distribution(spec)
    r.typed(f"{where}.{dist}", values, list, "a list")
    if dist == "choice":
        if not values:
            r.fail(f"{where}.choice", values, "a non-empty list of values")
        if len({repr(v) for v in values}) < len(values):
            r.fail(f"{where}.choice", values, "a list of distinct values")
    else:
        integer = SCALAR_TYPES[key] is int
        number = int if integer else (int, float)
        if len(values) != 2 or not all(isinstance(v, number) and not isinstance(v, bool)
                                       for v in values) \
                or not values[0] < values[1] or (dist == "loguniform" and values[0] <= 0):
            r.fail(f"{where}.{dist}", values, "[low, high] with low < high"
                   + (" and low > 0" if dist == "loguniform" else "")
                   + (f" and whole numbers ({key} is an integer field)" if integer else ""))
    earlier = list(study.search)[:list(study.search).index(key)]
    when = r.typed(f"{where}.when", spec.get("when", {}), dict,
                   "a mapping {field: [values]} of earlier choice fields")
    for field_name, allowed in when.items():
        choices = study.search[field_name].get("choice") if field_name in earlier else None
        if choices is None:
            r.fail(f"{where}.when.{field_name}", allowed, "a field sampled with choice above "
                   f"{key}: " + (", ".join(k for k in earlier if "choice" in study.search[k])
                                 or "(none)"))
        if not isinstance(allowed, list) or not allowed or any(v not in choices for v in allowed):
            r.fail(f"{where}.when.{field_name}", allowed,
                   "a non-empty list of its choices: " + ", ".join(map(str, choices)))


def _counts(r: _Reader, raw: dict, study: Study) -> None:
    """trials, repeats, max_concurrent, checkpoint_every, max_failures, sampler_seed,
    max_trial_seconds, max_core_hours."""
    for key, low, allowed in (
            ("trials", 1, None), ("repeats", 1, None),
            ("max_concurrent", 0, "an integer >= 0 (0: no limit beyond resources)"),
            ("checkpoint_every", 1, "an integer >= 1 (iterations between checkpoints)"),
            ("max_failures", 0, "an integer >= 0 (retries of a failed trial)")):
        setattr(study, key, r.at_least(key, raw.get(key, getattr(DEFAULT, key)), low, allowed))
    study.sampler_seed = r.typed("sampler_seed", raw.get("sampler_seed", DEFAULT.sampler_seed),
                                 int, "an integer")
    for key, unit in (("max_trial_seconds", "seconds"), ("max_core_hours", "core-hours")):
        value = raw.get(key, getattr(DEFAULT, key))
        allowed = f"a number of {unit} >= 0 (0: no limit)"
        if r.typed(key, value, (int, float), allowed) < 0 or value != value:
            r.fail(key, value, allowed)
        setattr(study, key, float(value))
    if "trials" in raw and not study.search:
        r.fail("trials", raw["trials"], "only with search (a grid runs every combination)")


def _objectives(r: _Reader, raw: dict, study: Study) -> list[Objective]:
    objectives = r.typed("objectives", raw.get("objectives", [asdict(o) for o in
                                                             DEFAULT.objectives]),
                         list, "a list of one or two {metric, mode}")
    if not 1 <= len(objectives) <= 2:
        r.fail("objectives", objectives, "one or two {metric, mode}")
    allowed = objective_metrics(study.common_architectures)
    for i, o in enumerate(objectives):
        if not isinstance(o, dict) or set(o) != {"metric", "mode"}:
            r.fail(f"objectives[{i}]", o, "{metric: ..., mode: max|min}")
        if o["metric"] not in allowed:
            r.fail(f"objectives[{i}].metric", o["metric"], ", ".join(allowed))
        if o["mode"] not in MODES:
            r.fail(f"objectives[{i}].mode", o["mode"], ", ".join(MODES))
    return [Objective(**o) for o in objectives]


def _resources(r: _Reader, raw: dict) -> dict[str, float]:
    resources = r.typed("resources", raw.get("resources", DEFAULT.resources), dict,
                        "{cpu: number > 0, gpu: number >= 0}")
    for key, value in resources.items():
        if key not in DEFAULT.resources:
            r.fail(f"resources.{key}", value, ", ".join(DEFAULT.resources))
        r.typed(f"resources.{key}", value, (int, float), "a number")
    resources = {**DEFAULT.resources, **resources}
    if not resources["cpu"] > 0:
        r.fail("resources.cpu", resources["cpu"], "a number > 0")
    gpu = resources["gpu"]
    if gpu < 0 or (gpu > 1 and gpu != int(gpu)):
        r.fail("resources.gpu", gpu, "0, a fraction in (0, 1] such as 0.25, or a whole number")
    return resources


def _scheduler(r: _Reader, raw: dict) -> Scheduler:
    scheduler = raw.get("scheduler", {"name": DEFAULT.scheduler.name})
    if isinstance(scheduler, str):
        scheduler = {"name": scheduler}
    r.typed("scheduler", scheduler, dict,
            "none, asha or {name: asha, grace_period, reduction_factor}")
    keys = [f.name for f in fields(Scheduler)]
    for key in scheduler:
        if key not in keys:
            r.fail(f"scheduler.{key}", scheduler[key], ", ".join(keys))
    if scheduler.get("name") not in SCHEDULERS:
        r.fail("scheduler.name", scheduler.get("name"), ", ".join(SCHEDULERS))
    for key, low, unit in (("grace_period", 1, " (iterations)"), ("reduction_factor", 2, "")):
        if key in scheduler and (not isinstance(scheduler[key], int) or scheduler[key] < low):
            r.fail(f"scheduler.{key}", scheduler[key], f"an integer >= {low}{unit}")
    return Scheduler(**scheduler)


def _sampler(r: _Reader, raw: dict, study: Study) -> dict[str, Any]:
    sampler = raw.get("sampler", DEFAULT.sampler)
    if isinstance(sampler, str):
        sampler = {"name": sampler}
    r.typed("sampler", sampler, dict, "tpe, random or {name: tpe, multivariate: true, group: "
                                      "true}")
    if sampler.get("name") not in SAMPLERS:
        r.fail("sampler.name", sampler.get("name"), ", ".join(SAMPLERS))
    options = SAMPLERS[sampler["name"]][1]
    for key, value in sampler.items():
        if key != "name" and key not in options:
            r.fail(f"sampler.{key}", value, ", ".join(("name", *options)))
        if key != "name" and not isinstance(value, bool):
            r.fail(f"sampler.{key}", value, "true or false")
    if sampler.get("group") and not sampler.get("multivariate"):
        r.fail("sampler.group", True, "false unless multivariate is true (Optuna's TPE groups "
                                      "within its multivariate model)")
    if "sampler" in raw and not study.search:
        r.fail("sampler", sampler, "only with search (a grid samples nothing)")
    return sampler


def _confirm(r: _Reader, raw: dict) -> Confirm | None:
    confirm = raw.get("confirm")
    if confirm is None:
        return None
    r.typed("confirm", confirm, dict, "{top: K, eval_models: N, protocol: full}")
    keys = [f.name for f in fields(Confirm)]
    for key in confirm:
        if key not in keys:
            r.fail(f"confirm.{key}", confirm[key], ", ".join(keys))
    confirm = {**asdict(Confirm()), **confirm}
    for key in ("top", "eval_models", "eval_epochs"):
        if key != "eval_epochs" or confirm[key] is not None:  # None: the protocol's own
            r.at_least(f"confirm.{key}", confirm[key], 1)
    if confirm["protocol"] not in PROTOCOLS:
        r.fail("confirm.protocol", confirm["protocol"], ", ".join(PROTOCOLS))
    r.typed("confirm.also_archs", confirm["also_archs"], (list, tuple), "a list of architectures")
    for arch in confirm["also_archs"]:
        if arch not in MODELS:
            r.fail("confirm.also_archs", arch, ", ".join(MODELS))
    return Confirm(**{**confirm, "also_archs": tuple(confirm["also_archs"])})


def _combinations(r: _Reader, study: Study) -> None:
    """Combinations of sections that Ray Tune cannot honour, rejected here, not mid-study."""
    asha, two = study.scheduler.name == "asha", len(study.objectives) == 2
    if asha and two:
        r.fail("scheduler.name", "asha", "none with two objectives (ASHA stops on one metric)")
    if asha and study.search and study.repeats > 1:
        r.fail("scheduler.name", "asha", "none when a search has repeats > 1 (repeats are "
                                         "averaged over complete trials)")
    if study.search and study.repeats > 1 and two:
        r.fail("repeats", study.repeats, "1 in a two-objective search")
    if "acc_mean" in study.objective_names and 0 in _values(study, "eval_models"):
        r.fail("eval_models", 0, "an integer >= 1 when an objective is acc_mean")
    points = study.fixed.get("eval_at")
    for iterations in _values(study, "iterations"):
        if points is not None and iterations not in points:
            r.fail("fixed.eval_at", points, f"evaluation points that include the last "
                                            f"iteration ({iterations}), where the objectives "
                                            "are measured")


MAX_COMBINATIONS = 100_000  # beyond this a search's corners are checked only in part


def _corners(search: dict) -> Iterator[dict]:
    """Every combination of a search's choices and interval ends, in the file's order; a
    field whose `when` fails is left out, as the sampler leaves it out."""
    def extend(keys, sampled):
        if not keys:
            yield dict(sampled)
            return
        key, rest = keys[0], keys[1:]
        spec = search[key]
        if any(sampled.get(k) not in allowed for k, allowed in spec.get("when", {}).items()):
            yield from extend(rest, sampled)
            return
        for value in distribution(spec)[1]:
            yield from extend(rest, {**sampled, key: value})
    return extend(list(search), {})


def distribution(spec: dict) -> tuple[str, list]:
    """A search entry's distribution name and its values (the entry less its `when`)."""
    (dist, values), = ((k, v) for k, v in spec.items() if k != "when")
    return dist, values


def _values(study: Study, key: str) -> list:
    """Every value a config field takes in the study."""
    if study.kind == "grid" and key in study.factors:
        default = study.fixed.get(key, getattr(RunConfig(), key))
        return [p.get(key, default) for p in study.grid_points]
    if key in study.search:
        return list(distribution(study.search[key])[1])
    return [study.fixed.get(key, getattr(RunConfig(), key))]
