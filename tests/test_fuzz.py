"""Fuzzing the inputs a user types (Hypothesis): random study files built from the real keys
and values, and random `raygm distill` flag sets, either validate or are refused with a
one-line message that names a field; never a traceback, never a file written on refusal.

CI runs a few dozen examples per test; HYPOTHESIS_PROFILE=nightly runs thousands."""
import os
import re
from dataclasses import fields

import pytest
import yaml
from hypothesis import HealthCheck, given, settings, strategies as st

from raygm import cli
from raygm.core.config import RunConfig
from raygm.studies.study_file import TOP_KEYS, StudyError, load_study

from conftest import write_tiny_mnist

settings.register_profile("ci", max_examples=40, deadline=None,
                          suppress_health_check=[HealthCheck.function_scoped_fixture])
settings.register_profile("nightly", max_examples=3000, deadline=None,
                          suppress_health_check=[HealthCheck.function_scoped_fixture])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

FIELDS = [f for f in fields(RunConfig)]
CHOICES = {f.name: list(f.metadata["choices"]) for f in FIELDS if f.metadata.get("choices")}
# what a message must name: a run config field, a study key (as typed, e.g. 'grid.:'), or a
# flag
NAMED = re.compile(r"'[^'\n]+'|--[a-z][\w-]*|argument [\w-]+")


def field_values(name: str) -> st.SearchStrategy:
    """Values a user might write for a field: its own choices, numbers near the edges,
    strings, lists of either."""
    scalars = st.one_of(
        st.sampled_from(CHOICES.get(name, ["noise", "ConvNet", "auto"])),
        st.integers(-3, 300), st.sampled_from([0, 1, 2**63, -(2**63) - 1, 10**30]),
        st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8), st.booleans(),
        st.none())
    return st.one_of(scalars, st.lists(scalars, max_size=3))


@st.composite
def study_files(draw) -> dict:
    """A study file from real keys (and a few wrong ones) with plausible and implausible
    values."""
    names = st.sampled_from([f.name for f in FIELDS] + ["colour", "ipcs"])
    fixed = {k: draw(field_values(k)) for k in draw(st.lists(names, max_size=4, unique=True))}
    study = {"name": draw(st.one_of(st.just("fuzz"), st.text(max_size=10))), "fixed": fixed}
    kind = draw(st.sampled_from(["grid", "search", "none"]))
    if kind == "grid":
        key = draw(names)
        study["grid"] = {key: draw(st.lists(field_values(key), max_size=3))}
    elif kind == "search":
        key = draw(names)
        dist = draw(st.sampled_from(["choice", "uniform", "loguniform", "normal"]))
        study["search"] = {key: {dist: draw(st.lists(field_values(key), max_size=3))}}
        study["trials"] = draw(st.integers(-1, 5))
    for key in draw(st.lists(st.sampled_from([*TOP_KEYS, "tirals"]), max_size=3)):
        study.setdefault(key, draw(st.one_of(st.integers(-2, 4), st.text(max_size=5),
                                             st.sampled_from(["tpe", "asha", "random"]),
                                             st.dictionaries(st.text(max_size=4),
                                                             st.integers(), max_size=2))))
    return study


def one_line_naming_a_field(message: str) -> bool:
    return "\n" not in message.strip() and NAMED.search(message) is not None \
        and "Traceback" not in message


@given(study=study_files())
def test_random_study_files_validate_or_name_what_is_wrong(study, tmp_path_factory):
    folder = tmp_path_factory.mktemp("study")
    path = folder / "s.yaml"
    path.write_text(yaml.safe_dump(study))
    try:
        load_study(path)
    except StudyError as exc:
        assert one_line_naming_a_field(str(exc).split("; allowed:")[0]), str(exc)
    assert [p.name for p in folder.iterdir()] == ["s.yaml"]  # nothing written either way


class Validated(Exception):
    """Raised where a valid `raygm distill` would start computing."""


def flag_sets() -> st.SearchStrategy:
    flag = st.sampled_from([f.name for f in FIELDS])
    return st.lists(st.tuples(flag, st.one_of(
        st.sampled_from(["0", "1", "-1", "1e30", "nan", "inf", "2,1", "", "x", "3.5",
                         "9223372036854775808"]),
        flag.flatmap(lambda name: st.sampled_from(CHOICES.get(name, ["auto"]))))),
        max_size=4, unique_by=lambda pair: pair[0])


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    return str(write_tiny_mnist(tmp_path_factory.mktemp("data")))


@given(flags=flag_sets())
def test_random_distill_flags_validate_or_name_what_is_wrong(flags, tiny_data, tmp_path_factory,
                                                             monkeypatch, capsys):
    def validated(run, reporters, **kwargs):
        raise Validated

    monkeypatch.setattr(cli, "run_to_end", validated)
    capsys.readouterr()  # what earlier examples printed
    out = tmp_path_factory.mktemp("runs") / "run"
    argv = ["distill", "--data-dir", tiny_data, "--no-download", "--out", str(out)]
    for name, value in flags:
        argv += [f"--{name.replace('_', '-')}", value]
    try:
        cli.main(argv)
    except Validated:
        return
    except SystemExit as exc:
        assert exc.code not in (0, None)
        # raygm's message, or argparse's usage error (the last line it printed)
        message = exc.code if isinstance(exc.code, str) else \
            capsys.readouterr().err.strip().splitlines()[-1]
        assert one_line_naming_a_field(message), message
        assert not out.exists() or not any(out.iterdir())
    else:
        pytest.fail(f"raygm distill {' '.join(argv)} neither validated nor refused")
