"""A study file: what to vary, how to search it, and what each trial may use.

Pure Python (no Ray): a study is read and fully validated, every value checked against
RunConfig, before Ray is started. See studies/*.yaml for examples and README for the keys.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Iterator

import yaml

from .choices import Choices
from .config import SCALAR_TYPES, ConfigError, RunConfig
from .eval_protocol import PROTOCOLS
from .models import MODELS
from .records import objective_metrics

MODES = ("max", "min")
SCHEDULERS = ("none", "asha")
# A search's Optuna sampler: name -> (its class in optuna.samplers, the options a study file
# may set). TPE's: multivariate (model the parameters jointly) and group (apart for each set
# of parameters a `when` samples together: the conditional space). Named here, built by the
# search (tuning.py), so that this module needs no Optuna.
SAMPLERS = Choices("sampler", {"tpe": ("TPESampler", ("multivariate", "group")),
                               "random": ("RandomSampler", ())})
DISTRIBUTIONS = ("choice", "uniform", "loguniform")
TOP_KEYS = ("name", "description", "fixed", "grid", "search", "trials", "repeats",
            "objectives", "resources", "max_concurrent", "scheduler", "checkpoint_every",
            "max_failures", "sampler", "sampler_seed", "confirm")


class StudyError(ValueError):
    """A study file has a key or value it does not allow."""

    def __init__(self, file: str, key: str, value: Any, allowed: str):
        super().__init__(f"{file}: '{key}' = {value!r} is invalid; allowed: {allowed}")
        self.file, self.key, self.value, self.allowed = file, key, value, allowed

    def __reduce__(self):  # pickles intact, e.g. from a Ray worker to the driver
        return type(self), (self.file, self.key, self.value, self.allowed)


class LaunchError(Exception):
    """A study cannot be launched or continued as asked (storage, cluster, GPUs)."""


@dataclass
class Study:
    name: str
    fixed: dict[str, Any] = field(default_factory=dict)
    grid: list[dict[str, list]] = field(default_factory=list)  # a union of full factorials
    search: dict[str, dict[str, list]] = field(default_factory=dict)
    trials: int = 1
    repeats: int = 1
    objectives: list[dict[str, str]] = field(
        default_factory=lambda: [{"metric": "acc_mean", "mode": "max"}])
    resources: dict[str, float] = field(default_factory=lambda: {"cpu": 1, "gpu": 0})
    max_concurrent: int = 0  # 0: as many as the resources allow
    scheduler: dict[str, Any] = field(default_factory=lambda: {"name": "none"})
    checkpoint_every: int = 10
    max_failures: int = 2
    sampler: dict[str, Any] = field(default_factory=lambda: {"name": "tpe"})
    sampler_seed: int = 0
    description: str = ""
    # after the study: re-evaluate the saved synthetic sets of its best `top` configurations
    # (all their seeds) under a protocol with eval_models networks (`raygm evaluate`)
    confirm: dict[str, Any] | None = None

    @property
    def kind(self) -> str:
        return "search" if self.search else "grid"

    @property
    def factors(self) -> list[str]:
        """The config fields the study varies, in the order the file names them."""
        keys = [k for block in self.grid for k in block] + list(self.search)
        return list(dict.fromkeys(keys))

    @property
    def grid_points(self) -> list[dict[str, Any]]:
        return [dict(zip(block, combo)) for block in self.grid
                for combo in itertools.product(*block.values())]

    @property
    def objective_names(self) -> list[str]:
        return [o["metric"] for o in self.objectives]

    @property
    def metric(self) -> str | list[str]:
        metrics = self.objective_names
        return metrics[0] if len(metrics) == 1 else metrics

    @property
    def mode(self) -> str | list[str]:
        modes = [o["mode"] for o in self.objectives]
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
            sets = [self.run_config(p, 0).eval_architectures for p in self.grid_points or [{}]]
        else:
            sets = [archs or (model,) for archs in _values(self, "eval_archs")
                    for model in _values(self, "model")]
        return tuple(a for a in sets[0] if all(a in s for s in sets))

    def configs(self) -> list[RunConfig]:
        """Every configuration a trial can have, up to its seed (a search: every combination
        of its choices and interval ends)."""
        if self.kind == "grid":
            points = self.grid_points or [{}]
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


def read_raw(text: str, file: str) -> Any:
    """A study file's YAML, or a StudyError naming the file and where the YAML breaks."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise StudyError(file, "(whole file)", "unreadable", f"valid YAML ({exc})") from None


def apply_overrides(raw: Any, overrides: list[str], file: str) -> Any:
    """`--set key=value` (value in YAML): a top-level study key, or a run config field that
    goes into `fixed`."""
    if not overrides or not isinstance(raw, dict):
        return raw
    raw = {**raw, "fixed": dict(raw.get("fixed") or {})}
    config_keys = {f.name for f in fields(RunConfig)}
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or (key not in TOP_KEYS and key not in config_keys):
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
    raw = apply_overrides(read_raw(path.read_text(), str(path)), overrides or [], str(path))
    return parse_study(raw, str(path))


def parse_study(raw: Any, file: str) -> Study:
    def fail(key, value, allowed):
        raise StudyError(file, key, value, allowed)

    def typed(key, value, kind, allowed):
        if not isinstance(value, kind) or isinstance(value, bool):
            fail(key, value, allowed)
        return value

    typed("(top level)", raw, dict, "a mapping of study keys")
    for key in raw:
        if key not in TOP_KEYS:
            fail(key, raw[key], "one of " + ", ".join(TOP_KEYS))
    if "name" not in raw:
        fail("name", None, "a study name (letters, digits, - and _)")
    name = typed("name", raw["name"], str, "a study name (letters, digits, - and _)")
    if not name or not all(ch.isalnum() or ch in "-_" for ch in name):
        fail("name", name, "a study name (letters, digits, - and _)")
    study = Study(name=name, description=raw.get("description", ""))
    config_keys = {f.name for f in fields(RunConfig)}

    def config_key(section, key):
        if key not in config_keys:
            fail(f"{section}.{key}", None, "a run config field: " + ", ".join(sorted(config_keys)))

    def check_config(section, values):
        """The values must make a valid RunConfig together with the fixed settings."""
        try:
            RunConfig.from_dict({**study.fixed, **values})
        except ConfigError as exc:
            if exc.field not in values:
                fail(f"fixed.{exc.field}", study.fixed.get(exc.field), exc.allowed)
            key, allowed = f"{section}.{exc.field}", exc.allowed
            others = {k: v for k, v in values.items() if k != exc.field}
            if section == "search":  # name the distribution and what the value met
                key += "." + distribution(study.search[exc.field])[0]
                if others:
                    allowed += (f" (sampled with {others}; a field that applies to some "
                                "choices only is sampled under `when: {field: [values]}`)")
            fail(key, values[exc.field], allowed)

    study.fixed = typed("fixed", raw.get("fixed", {}), dict, "a mapping of run config fields")
    for key in study.fixed:
        config_key("fixed", key)
    check_config("fixed", {})

    grid = raw.get("grid", [])
    study.grid = typed("grid", [grid] if isinstance(grid, dict) and grid else grid or [], list,
                       "a mapping field -> list of values, or a list of such mappings")
    study.search = typed("search", raw.get("search", {}), dict,
                         "a mapping: field -> {choice|uniform|loguniform: [...]}")
    if study.grid and study.search:
        fail("grid", list(study.grid), "either grid (a full factorial) or search, not both")
    for block in study.grid:
        typed("grid", block, dict, "mappings field -> list of values")
        for key, values in block.items():
            config_key("grid", key)
            typed(f"grid.{key}", values, list, "a non-empty list of values")
            if not values:
                fail(f"grid.{key}", values, "a non-empty list of values")
    for key in study.fixed:
        if any(key in block for block in study.grid) or key in study.search:
            fail(f"fixed.{key}", study.fixed[key], "a field that grid/search do not vary "
                 "(remove it from fixed or from the varied fields)")
    for point in study.grid_points:
        check_config("grid", point)
    for key, spec in study.search.items():
        config_key("search", key)
        where = f"search.{key}"
        dists = [k for k in spec if k in DISTRIBUTIONS] if isinstance(spec, dict) else []
        if len(dists) != 1 or set(spec) - {dists[0], "when"}:
            fail(where, spec, "one of {choice: [v, ...]}, {uniform: [low, high]}, "
                              "{loguniform: [low, high]}, with an optional when: {field: [values]}")
        dist, values = distribution(spec)
        typed(f"{where}.{dist}", values, list, "a list")
        if dist == "choice":
            if not values:
                fail(f"{where}.choice", values, "a non-empty list of values")
        else:
            integer = SCALAR_TYPES[key] is int
            number = int if integer else (int, float)
            if len(values) != 2 or not all(isinstance(v, number) and not isinstance(v, bool)
                                           for v in values) \
                    or not values[0] < values[1] or (dist == "loguniform" and values[0] <= 0):
                fail(f"{where}.{dist}", values, "[low, high] with low < high"
                     + (" and low > 0" if dist == "loguniform" else "")
                     + (f" and whole numbers ({key} is an integer field)"
                        if integer else ""))
        earlier = list(study.search)[:list(study.search).index(key)]
        when = typed(f"{where}.when", spec.get("when", {}), dict,
                     "a mapping {field: [values]} of earlier choice fields")
        for field_name, allowed in when.items():
            choices = study.search[field_name].get("choice") if field_name in earlier else None
            if choices is None:
                fail(f"{where}.when.{field_name}", allowed, "a field sampled with choice above "
                     f"{key}: " + (", ".join(k for k in earlier if "choice" in study.search[k])
                                   or "(none)"))
            if not isinstance(allowed, list) or not allowed \
                    or any(v not in choices for v in allowed):
                fail(f"{where}.when.{field_name}", allowed,
                     "a non-empty list of its choices: " + ", ".join(map(str, choices)))

    # every combination of the choices and interval ends a trial can meet (`when` applied)
    for combination in itertools.islice(_corners(study.search), MAX_COMBINATIONS):
        check_config("search", combination)

    study.trials = typed("trials", raw.get("trials", 1), int, "an integer >= 1")
    study.repeats = typed("repeats", raw.get("repeats", 1), int, "an integer >= 1")
    study.max_concurrent = typed("max_concurrent", raw.get("max_concurrent", 0), int,
                                 "an integer >= 0 (0: no limit beyond resources)")
    study.checkpoint_every = typed("checkpoint_every", raw.get("checkpoint_every", 10), int,
                                   "an integer >= 1 (iterations between checkpoints)")
    study.max_failures = typed("max_failures", raw.get("max_failures", 2), int,
                               "an integer >= 0 (retries of a failed trial)")
    study.sampler_seed = typed("sampler_seed", raw.get("sampler_seed", 0), int, "an integer")
    for key, low in (("trials", 1), ("repeats", 1), ("max_concurrent", 0),
                     ("checkpoint_every", 1), ("max_failures", 0)):
        if getattr(study, key) < low:
            fail(key, getattr(study, key), f"an integer >= {low}")
    if "trials" in raw and not study.search:
        fail("trials", study.trials, "only with search (a grid runs every combination)")

    objectives = typed("objectives", raw.get("objectives", study.objectives), list,
                       "a list of one or two {metric, mode}")
    if not 1 <= len(objectives) <= 2:
        fail("objectives", objectives, "one or two {metric, mode}")
    for i, o in enumerate(objectives):
        if not isinstance(o, dict) or set(o) != {"metric", "mode"}:
            fail(f"objectives[{i}]", o, "{metric: ..., mode: max|min}")
        allowed = objective_metrics(study.common_architectures)
        if o["metric"] not in allowed:
            fail(f"objectives[{i}].metric", o["metric"], ", ".join(allowed))
        if o["mode"] not in MODES:
            fail(f"objectives[{i}].mode", o["mode"], ", ".join(MODES))
    study.objectives = objectives

    resources = typed("resources", raw.get("resources", study.resources), dict,
                      "{cpu: number > 0, gpu: number >= 0}")
    for key, value in resources.items():
        if key not in ("cpu", "gpu"):
            fail(f"resources.{key}", value, "cpu, gpu")
        typed(f"resources.{key}", value, (int, float), "a number")
    study.resources = {"cpu": resources.get("cpu", 1), "gpu": resources.get("gpu", 0)}
    if not study.resources["cpu"] > 0:
        fail("resources.cpu", study.resources["cpu"], "a number > 0")
    gpu = study.resources["gpu"]
    if gpu < 0 or (gpu > 1 and gpu != int(gpu)):
        fail("resources.gpu", gpu, "0, a fraction in (0, 1] such as 0.25, or a whole number")

    scheduler = raw.get("scheduler", study.scheduler)
    if isinstance(scheduler, str):
        scheduler = {"name": scheduler}
    typed("scheduler", scheduler, dict, "none, asha or {name: asha, grace_period, "
                                         "reduction_factor}")
    for key in scheduler:
        if key not in ("name", "grace_period", "reduction_factor"):
            fail(f"scheduler.{key}", scheduler[key], "name, grace_period, reduction_factor")
    if scheduler.get("name") not in SCHEDULERS:
        fail("scheduler.name", scheduler.get("name"), ", ".join(SCHEDULERS))
    for key in ("grace_period", "reduction_factor"):
        if key in scheduler and (not isinstance(scheduler[key], int) or scheduler[key] < 1
                                 or (key == "reduction_factor" and scheduler[key] < 2)):
            fail(f"scheduler.{key}", scheduler[key],
                 "an integer >= " + ("2" if key == "reduction_factor" else "1 (iterations)"))
    study.scheduler = scheduler

    sampler = raw.get("sampler", study.sampler)
    if isinstance(sampler, str):
        sampler = {"name": sampler}
    typed("sampler", sampler, dict, "tpe, random or {name: tpe, multivariate: true, group: "
                                     "true}")
    if sampler.get("name") not in SAMPLERS:
        fail("sampler.name", sampler.get("name"), ", ".join(SAMPLERS))
    for key, value in sampler.items():
        if key != "name" and key not in SAMPLERS[sampler["name"]][1]:
            fail(f"sampler.{key}", value, ", ".join(("name", *SAMPLERS[sampler["name"]][1])))
        if key != "name" and not isinstance(value, bool):
            fail(f"sampler.{key}", value, "true or false")
    if sampler.get("group") and not sampler.get("multivariate"):
        fail("sampler.group", True, "false unless multivariate is true (Optuna's TPE groups "
                                    "within its multivariate model)")
    if "sampler" in raw and not study.search:
        fail("sampler", sampler, "only with search (a grid samples nothing)")
    study.sampler = sampler

    confirm = raw.get("confirm")
    if confirm is not None:
        typed("confirm", confirm, dict, "{top: K, eval_models: N, protocol: full}")
        for key in confirm:
            if key not in ("top", "eval_models", "eval_epochs", "protocol", "also_archs"):
                fail(f"confirm.{key}", confirm[key],
                     "top, eval_models, eval_epochs, protocol, also_archs")
        confirm = {"top": 3, "eval_models": 10, "eval_epochs": None, "protocol": "full",
                   "also_archs": [], **confirm}
        for key in ("top", "eval_models", "eval_epochs"):
            if key == "eval_epochs" and confirm[key] is None:
                continue  # the protocol's own
            if typed(f"confirm.{key}", confirm[key], int, "an integer >= 1") < 1:
                fail(f"confirm.{key}", confirm[key], "an integer >= 1")
        if confirm["protocol"] not in PROTOCOLS:
            fail("confirm.protocol", confirm["protocol"], ", ".join(PROTOCOLS))
        typed("confirm.also_archs", confirm["also_archs"], list, "a list of architectures")
        for arch in confirm["also_archs"]:
            if arch not in MODELS:
                fail("confirm.also_archs", arch, ", ".join(MODELS))
        study.confirm = confirm

    # Combinations Ray Tune cannot honour, rejected here rather than mid-study.
    if scheduler["name"] == "asha" and len(objectives) == 2:
        fail("scheduler.name", "asha", "none with two objectives (ASHA stops on one metric)")
    if scheduler["name"] == "asha" and study.search and study.repeats > 1:
        fail("scheduler.name", "asha", "none when a search has repeats > 1 (repeats are "
                                       "averaged over complete trials)")
    if study.search and study.repeats > 1 and len(objectives) == 2:
        fail("repeats", study.repeats, "1 in a two-objective search")
    if any(o["metric"] == "acc_mean" for o in objectives) and 0 in _values(study, "eval_models"):
        fail("eval_models", 0, "an integer >= 1 when an objective is acc_mean")
    points = study.fixed.get("eval_at")
    for iterations in _values(study, "iterations"):
        if points is not None and iterations not in points:
            fail("fixed.eval_at", points, f"evaluation points that include the last iteration "
                                          f"({iterations}), where the objectives are measured")
    return study


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
