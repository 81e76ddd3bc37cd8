import pytest

from raygm.config import ConfigError, RunConfig, default_loops


@pytest.mark.parametrize("changes, field, allowed", [
    ({"model": "ResNet50"}, "model", "MLP, ConvNet, LeNet"),
    ({"dataset": "ImageNet"}, "dataset", "MNIST, FashionMNIST"),
    ({"init": "zeros"}, "init", "noise, real, black, white, grey"),
    ({"distance": "l1"}, "distance", "ours, mse, cos"),
    ({"ipc": 0}, "ipc", "integer >= 1"),
    ({"lr_img": -0.1}, "lr_img", "> 0"),
    ({"lr_net": 0}, "lr_net", "> 0"),
    ({"lr_img": "fast"}, "lr_img", "float"),
    ({"iterations": -1}, "iterations", ">= 0"),
    ({"eval_archs": ("MLP", "Transformer")}, "eval_archs", "MLP, ConvNet"),
    ({"eval_at": (0, 20), "iterations": 10}, "eval_at", "between 0 and iterations=10"),
    ({"net_norm": "weirdnorm"}, "net_norm", "instancenorm, batchnorm"),
    ({"device": "tpu"}, "device", "cpu"),
    ({"momentum_img": 1.5}, "momentum_img", "[0, 1)"),
])
def test_invalid_values_name_field_and_allowed(changes, field, allowed):
    with pytest.raises(ConfigError) as err:
        RunConfig(**changes)
    assert err.value.field == field
    assert f"'{field}'" in str(err.value) and allowed in str(err.value)


def test_unknown_key_is_reported():
    with pytest.raises(ConfigError, match="'lr_image'"):
        RunConfig.from_dict({"lr_image": 0.1})


def test_loops_follow_dc_by_ipc_and_can_be_overridden():
    assert default_loops(1) == (1, 1)
    assert default_loops(10) == (10, 50)
    assert default_loops(50) == (50, 10)
    assert RunConfig(ipc=10).loops == (10, 50)
    assert RunConfig(ipc=10, outer_loop=3, inner_loop=2).loops == (3, 2)


def test_derived_evaluation_settings():
    c = RunConfig(iterations=200)
    assert c.eval_points == (0, 200)
    assert c.eval_augmentation == "dc" and c.eval_train_epochs == 1000
    c = RunConfig(dataset="CIFAR10", ipc=10, eval_at=(0, 100))
    assert c.eval_points == (0, 100)
    assert c.eval_augmentation == "none" and c.eval_train_epochs == 300
    assert c.eval_architectures == ("ConvNet",)


def test_round_trip_through_dict_turns_lists_into_tuples():
    c = RunConfig(eval_at=(0, 5), iterations=5, eval_archs=("MLP",))
    d = c.to_dict()
    d["eval_at"] = list(d["eval_at"])
    assert RunConfig.from_dict(d) == c
