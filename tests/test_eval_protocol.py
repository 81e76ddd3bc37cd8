"""DC's evaluation rules (raygm/core/eval_protocol.py), row by row, as the run config applies them."""
import pytest

from raygm.core.augment import AUGMENTATIONS
from raygm.core.config import RunConfig
from raygm.core.eval_protocol import DC_RULES, STANDARD_NORM, dc_rule, describe, superseded
from raygm.core.models import ModelConfig

# (dataset, ipc, evaluation network, its norm, dsa) -> (augmentation, epochs), as in DC's
# utils.get_daparam and main.py
CASES = [
    ("MNIST", 1, "ConvNet", "instancenorm", "none", "dc", 1000),
    ("MNIST", 10, "MLP", "instancenorm", "none", "dc", 1000),
    ("MNIST", 50, "ConvNet", "instancenorm", "none", "dc", 1000),  # any ipc, unlike before
    ("FashionMNIST", 1, "ConvNet", "instancenorm", "none", "none", 300),
    ("FashionMNIST", 10, "LeNet", "instancenorm", "none", "none", 300),
    ("CIFAR10", 10, "ConvNet", "instancenorm", "none", "none", 300),
    ("SVHN", 1, "ConvNet", "groupnorm", "none", "none", 300),
    # ConvNetBN: crop and noise, whatever the dataset (its test comes after MNIST's)
    ("MNIST", 1, "ConvNet", "batchnorm", "none", "crop_noise", 1000),
    ("FashionMNIST", 1, "ConvNet", "batchnorm", "none", "crop_noise", 1000),
    ("CIFAR10", 10, "ConvNet", "batchnorm", "none", "crop_noise", 1000),
    # other BatchNorm networks are not ConvNetBN
    ("FashionMNIST", 1, "VGG11BN", "instancenorm", "none", "none", 300),
    # DSA runs: DSA's augmentation, whatever else
    ("MNIST", 1, "ConvNet", "instancenorm", "crop_scale_rotate", "dsa", 1000),
    ("FashionMNIST", 1, "ConvNet", "batchnorm", "crop_scale_rotate", "dsa", 1000),
    ("CIFAR10", 50, "MLP", "instancenorm", "color_crop", "dsa", 1000),
]


@pytest.mark.parametrize("dataset, ipc, arch, norm, dsa, augment, epochs", CASES)
def test_every_rule_as_the_run_config_applies_it(dataset, ipc, arch, norm, dsa, augment, epochs):
    config = RunConfig(dataset=dataset, ipc=ipc, model="ConvNet", net_norm=norm, dsa=dsa,
                       eval_archs=(arch,))
    assert (config.eval_augmentation(arch), config.eval_train_epochs(arch)) == (augment, epochs)
    assert dc_rule(dataset, arch, norm, dsa)[1:3] == (augment, epochs)


def test_every_rule_is_reached_and_names_a_known_augmentation():
    reached = {dc_rule(*case[0:1], *case[2:5]) for case in CASES}
    assert reached == set(DC_RULES)
    assert all(rule.augment in AUGMENTATIONS for rule in DC_RULES)


def test_an_explicit_choice_overrides_the_rule():
    config = RunConfig(dataset="FashionMNIST", eval_augment="dc")
    assert (config.eval_augmentation("ConvNet"), config.eval_train_epochs("ConvNet")) == \
        ("dc", 1000)
    config = RunConfig(dataset="MNIST", eval_augment="none", eval_epochs=50)
    assert (config.eval_augmentation("ConvNet"), config.eval_train_epochs("ConvNet")) == \
        ("none", 50)


def test_evaluation_networks_of_one_run_follow_their_own_rule():
    config = RunConfig(dataset="MNIST", net_norm="batchnorm", eval_archs=("ConvNet", "MLP"))
    assert config.eval_augmentation("ConvNet") == "crop_noise"
    assert config.eval_augmentation("MLP") == "dc"


def test_description_names_the_dataset_and_the_rule():
    assert describe("FashionMNIST", "ConvNet", "instancenorm", "none") == \
        "DC's protocol for FashionMNIST: no augmentation, 300 epochs"
    assert describe("MNIST", "ConvNet", "instancenorm", "none") == \
        "DC's protocol for MNIST: crop/scale/rotate, 1000 epochs"


@pytest.mark.parametrize("protocol, eval_augment, dataset, augment, expected", [
    ("full", "auto", "FashionMNIST", "dc", True),     # before the correction of issue 24
    ("full", "auto", "FashionMNIST", "none", False),
    ("full", "none", "MNIST", "dc", False),            # full applies DC's rule, not the run's
    ("full", "none", "MNIST", "none", True),
    ("study", "dc", "FashionMNIST", "dc", False),      # the study's own, chosen by hand
    ("study", "auto", "FashionMNIST", "dc", True),     # a screen made under the earlier rule
])
def test_an_evaluation_made_under_another_rule_is_superseded(protocol, eval_augment, dataset,
                                                             augment, expected):
    row = {"protocol": protocol, "eval_augment": eval_augment, "dataset": dataset,
           "arch": "ConvNet", "net_norm": "instancenorm", "dsa": "none", "augment": augment}
    assert superseded(row) is expected


def test_the_standard_norm_is_dcs_convnets():
    assert STANDARD_NORM == ModelConfig().norm


@pytest.mark.parametrize("eval_net, augment, expected", [
    ("matching", "crop_noise", False), ("matching", "dc", True),
    ("standard", "dc", False), ("standard", "crop_noise", True), (None, "crop_noise", False)])
def test_a_batchnorm_run_evaluated_on_the_standard_convnet_follows_its_rule(eval_net, augment,
                                                                           expected):
    """None: an export from before eval_net, evaluated on the matching network."""
    row = {"protocol": "full", "eval_augment": "auto", "dataset": "MNIST", "arch": "ConvNet",
           "net_norm": "batchnorm", "dsa": "none", "augment": augment, "eval_net": eval_net}
    assert superseded(row) is expected
