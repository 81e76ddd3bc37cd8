import pytest

from raygm.core.config import ConfigError, RunConfig, default_loops
from raygm.core.models import MODELS, ModelConfig


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
    ({"dsa": "color_zoom"}, "dsa", "color, crop, cutout, flip, scale, rotate"),
    ({"dsa": "crop_crop"}, "dsa", "distinct groups"),
    ({"dsa": "crop_flip"}, "dsa", "without flip for MNIST"),
    ({"dsa": "flip", "dataset": "SVHN"}, "dsa", "without flip for SVHN"),
    ({"levers": ("warp",)}, "levers", "batched_classes, stacked_eval, cuda_graphs, tf32"),
    ({"levers": ("tf32", "tf32")}, "levers", "distinct levers"),
    ({"levers": ("batched_classes",), "hessian": "hvp", "hessian_weight": 0.1}, "levers",
     "without batched_classes when hessian"),
    ({"levers": ("cuda_graphs",), "execution": "eager"}, "levers",
     "without cuda_graphs unless execution is 'compiled'"),
    ({"gpu_memory_fraction": 0.0}, "gpu_memory_fraction", "(0, 1]"),
    ({"gpu_memory_fraction": 1.5}, "gpu_memory_fraction", "(0, 1]"),
    ({"gpu_memory_fraction": 0.25, "device": "cpu"}, "gpu_memory_fraction",
     "unset when device is 'cpu'"),
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
    assert c.eval_augmentation("ConvNet") == "dc" and c.eval_train_epochs("ConvNet") == 1000
    c = RunConfig(dataset="CIFAR10", ipc=10, eval_at=(0, 100))
    assert c.eval_points == (0, 100)
    assert c.eval_augmentation("ConvNet") == "none" and c.eval_train_epochs("ConvNet") == 300
    assert c.eval_architectures == ("ConvNet",)


def test_dsa_runs_evaluate_with_dsa_and_digits_are_never_flipped():
    c = RunConfig(dsa="color_crop_cutout_scale_rotate")
    assert c.eval_augmentation("MLP") == "dsa" and c.eval_train_epochs("MLP") == 1000
    assert c.dsa_strategy == "color_crop_cutout_scale_rotate"
    # DSA's evaluation of a DC run: DSA's default groups for the dataset
    assert "flip" not in RunConfig(eval_augment="dsa").dsa_strategy.split("_")
    assert "flip" not in RunConfig(dataset="SVHN", eval_augment="dsa").dsa_strategy.split("_")
    assert "flip" in RunConfig(dataset="CIFAR10", eval_augment="dsa").dsa_strategy.split("_")
    assert RunConfig(dataset="CIFAR10", dsa="flip_crop").eval_augmentation("ConvNet") == "dsa"


def test_round_trip_through_dict_turns_lists_into_tuples():
    c = RunConfig(eval_at=(0, 5), iterations=5, eval_archs=("MLP",))
    d = c.to_dict()
    d["eval_at"] = list(d["eval_at"])
    assert RunConfig.from_dict(d) == c


@pytest.mark.parametrize("model, eval_archs, changes", [
    ("MLP", None, {"net_width": 64}),
    ("LeNet", None, {"net_depth": 2}),
    ("AlexNet", None, {"net_act": "sigmoid"}),
    ("AlexNetBN", None, {"net_norm": "batchnorm"}),  # fixes its own norm
    ("ResNet18", None, {"net_norm": "none"}),
    ("VGG11", None, {"net_pooling": "maxpooling"}),
    ("MLP", ("LeNet", "MLP"), {"net_width": 64}),
])
def test_network_settings_no_network_of_the_run_reads_are_refused(model, eval_archs, changes):
    """Else a grid over net_width with an MLP would run copies of one trial."""
    [(field, value)] = changes.items()
    with pytest.raises(ConfigError) as err:
        RunConfig(model=model, eval_archs=eval_archs, **changes)
    assert err.value.field == field and err.value.value == value
    default = getattr(RunConfig(), field)
    assert err.value.allowed.startswith(f"{default} unless") and "ConvNet" in err.value.allowed


@pytest.mark.parametrize("model, eval_archs", [
    ("ConvNet", None), ("ConvNet", ("MLP",)),
    ("MLP", ("ConvNet",)),  # ConvNet evaluates the synthetic set: it reads them
    ("LeNet", ("MLP", "ConvNet")),
])
def test_network_settings_are_accepted_where_a_network_of_the_run_reads_them(model, eval_archs):
    changes = {"net_width": 64, "net_depth": 2, "net_act": "sigmoid", "net_norm": "batchnorm",
               "net_pooling": "maxpooling"}
    config = RunConfig(model=model, eval_archs=eval_archs, **changes)
    assert config.net == ModelConfig(64, 2, "sigmoid", "batchnorm", "maxpooling")


def test_network_settings_at_their_defaults_are_accepted_for_any_network():
    for model in MODELS:
        assert RunConfig(model=model, net_width=128, net_norm="instancenorm").net == ModelConfig()


@pytest.mark.parametrize("changes, field, allowed", [
    ({"eval_net": "dc"}, "eval_net", "matching, standard"),
    # no ConvNet is evaluated: standard would change nothing
    ({"model": "MLP", "eval_net": "standard"}, "eval_net", "matching unless eval_archs include "
                                                            "ConvNet"),
    # a standard ConvNet evaluates, an MLP matches: nothing reads net_width
    ({"model": "MLP", "eval_archs": ("ConvNet",), "eval_net": "standard", "net_width": 64},
     "net_width", "128 unless"),
])
def test_evaluation_network_settings_that_would_change_nothing_are_refused(changes, field,
                                                                           allowed):
    with pytest.raises(ConfigError) as err:
        RunConfig(**changes)
    assert err.value.field == field and err.value.allowed.startswith(allowed)


def test_standard_evaluation_networks_are_dcs_convnet_whatever_the_matching_network():
    config = RunConfig(net_width=256, net_depth=4, net_norm="batchnorm", net_act="leakyrelu")
    assert config.eval_net_settings == config.net != ModelConfig()  # matching: the variant
    standard = config.replace(eval_net="standard")
    assert standard.net == config.net and standard.eval_net_settings == ModelConfig()
    # DC's rules read the evaluated network's norm: batchnorm's crop/noise only on its variant
    assert config.eval_augmentation("ConvNet") == "crop_noise"
    assert standard.eval_augmentation("ConvNet") == "dc"
