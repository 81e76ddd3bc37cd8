"""Each choice is defined once, in its registry: config validation, CLI help and errors read it."""
import pickle
from dataclasses import fields

import pytest
import torch

from raygm import matching
from raygm.choices import Choices, UnknownChoice
from raygm.cli import main
from raygm.config import ConfigError, RunConfig
from raygm.distill import Distillation
from raygm.init import init_synthetic
from raygm.matching import match_loss
from raygm.models import build_model

from conftest import make_real_data


def choice_fields():
    return [f for f in fields(RunConfig) if isinstance(f.metadata.get("choices"), Choices)]


def test_every_choice_field_reads_its_registry():
    names = {f.name for f in choice_fields()}
    assert {"dataset", "model", "init", "distance", "hessian", "hessian_curvature", "net_act",
            "net_norm", "net_pooling", "execution", "eval_archs"} <= names


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
