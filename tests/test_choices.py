"""Each choice is defined once, in its registry: config validation, CLI help and errors read it."""
import pickle
from dataclasses import fields
from typing import get_type_hints

import pytest
import torch

from raygm.core import matching
from raygm.core.choices import Choices, UnknownChoice
from raygm.cli import main
from raygm.core.config import ConfigError, RunConfig, field_type
from raygm.core.distill import Distillation
from raygm.core.init import init_synthetic
from raygm.core.matching import match_loss
from raygm.core.models import build_model

from conftest import make_real_data


# text fields whose values are not one of a list: a device (cpu, cuda:1, ...) and DSA's
# strategy (any _-joined set of its transforms, validated by DSA_STRATEGIES)
FREE_TEXT = {"device", "dsa"}


def test_every_text_field_but_free_text_reads_a_registry():
    """A new text field of RunConfig fails here until it names its registry (or is free)."""
    hints = get_type_hints(RunConfig)
    text = [f for f in fields(RunConfig) if field_type(hints[f.name])[0] is str]
    without = {f.name for f in text if f.metadata.get("choices") is None}
    assert without == FREE_TEXT
    registries = {f.name for f in text if isinstance(f.metadata.get("choices"), Choices)}
    assert {"dataset", "model", "init", "distance", "hessian", "hessian_curvature", "net_act",
            "net_norm", "net_pooling", "execution", "eval_archs"} <= registries


@pytest.mark.parametrize("call, kind", [
    (lambda: build_model("GPT", 1, 10, (28, 28)), "model"),
    (lambda: match_loss([torch.ones(2)], [torch.ones(2)], "l1"), "distance"),
    (lambda: init_synthetic("zeros", make_real_data(), 1), "init"),
])
def test_dispatch_errors_list_the_registry(call, kind):
    with pytest.raises(UnknownChoice, match=f"unknown {kind} .*; allowed: ") as info:
        call()
    assert pickle.loads(pickle.dumps(info.value)).args == info.value.args


def test_a_registered_distance_is_a_valid_config_value_cli_choice_and_runs(monkeypatch, capsys,
                                                                           tiny_config):
    """Adding a distance is one entry in matching.DISTANCES: nothing else lists them."""
    with pytest.raises(ConfigError, match="ours, mse, cos"):
        RunConfig(distance="l1")
    monkeypatch.setitem(matching.DISTANCES, "l1", lambda g_syn, g_real: sum(
        (s - r).abs().sum() for s, r in zip(g_syn, g_real)))
    config = tiny_config.replace(distance="l1")
    record = Distillation(config, make_real_data()).step()
    assert record.loss > 0
    with pytest.raises(SystemExit):
        main(["distill", "--help"])
    assert "ours, mse, cos, l1" in " ".join(capsys.readouterr().out.split())
