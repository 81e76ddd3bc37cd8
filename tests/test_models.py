from dataclasses import fields, replace

import pytest
import torch

from raygm.core.config import RunConfig
from raygm.core.models import MODEL_SETTINGS, MODELS, ModelConfig, build_model, has_batchnorm


# Parameters of DC's networks (networks.py) with 10 classes on 1-channel 28x28 (MNIST) and
# 3-channel 32x32 (CIFAR, SVHN) images: computing a flatten size must not change them.
DC_PARAMETERS = {
    "MLP": (118282, 411146), "ConvNet": (317706, 320010), "LeNet": (61706, 62006),
    "AlexNet": (1865802, 1872202), "AlexNetBN": (1867722, 1874122),
    "VGG11": (9229962, 9231114), "VGG11BN": (9229962, 9231114),
    "ResNet18": (11172810, 11173962), "ResNet18BN": (11172810, 11173962),
}


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("channels, im_size", [(1, (28, 28)), (3, (32, 32)), (3, (40, 48))])
def test_models_map_images_of_their_size_to_logits(name, channels, im_size):
    """Every network takes 40x48 images too: the flatten sizes follow im_size (non-square,
    so height and width cannot be swapped unnoticed)."""
    net = build_model(name, channels, 10, im_size)
    logits = net(torch.randn(2, channels, *im_size))
    assert logits.shape == (2, 10)
    logits.sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    assert has_batchnorm(net) == name.endswith("BN")
    if im_size != (40, 48):
        parameters = sum(p.numel() for p in net.parameters())
        assert parameters == DC_PARAMETERS[name][0 if channels == 1 else 1]


@pytest.mark.parametrize("name, channels, im_size", [
    ("LeNet", 3, (12, 12)),    # two 5x5 convs and two poolings need 14 pixels a side
    ("VGG11", 3, (28, 28)),    # five poolings need 32 (1-channel 28x28 is padded to 32)
    ("VGG11BN", 3, (16, 16)),
])
def test_images_too_small_for_a_network_are_refused_when_it_is_built(name, channels, im_size):
    with pytest.raises(ValueError, match=f"cannot take {im_size[0]}x{im_size[1]} images"):
        build_model(name, channels, 10, im_size)


def test_batchnorm_statistics_are_fresh_after_building():
    """Sizing the classifier runs the features once, without touching BatchNorm's state."""
    net = build_model("AlexNetBN", 3, 10, (32, 32))
    norms = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert norms and all(int(m.num_batches_tracked) == 0 and bool((m.running_mean == 0).all())
                         for m in norms)
    assert net.training


@pytest.mark.parametrize("changes", [
    {"net_width": 16, "net_depth": 2}, {"net_act": "sigmoid"}, {"net_act": "leakyrelu"},
    {"net_norm": "batchnorm"}, {"net_norm": "layernorm"}, {"net_norm": "groupnorm"},
    {"net_norm": "none"}, {"net_pooling": "maxpooling"}, {"net_pooling": "none", "net_depth": 1},
])
def test_convnet_variants(changes):
    config = RunConfig(net_width=16, **{k: v for k, v in changes.items() if k != "net_width"})
    net = build_model("ConvNet", 1, 10, (28, 28), config.net)
    assert net(torch.randn(3, 1, 28, 28)).shape == (3, 10)
    assert net.features[0].out_channels == config.net_width
    assert has_batchnorm(net) == (config.net_norm == "batchnorm")


@pytest.mark.parametrize("name", MODELS)
def test_model_settings_lists_the_settings_each_network_reads(name):
    """The run config refuses net_* settings by MODEL_SETTINGS: a network is built differently
    when a setting it lists changes, and identically when another one does."""
    default = repr(build_model(name, 1, 10, (28, 28)))
    changed = ModelConfig(width=16, depth=2, act="sigmoid", norm="batchnorm", pooling="maxpooling")
    for setting in fields(ModelConfig):
        net = replace(ModelConfig(), **{setting.name: getattr(changed, setting.name)})
        differs = repr(build_model(name, 1, 10, (28, 28), net)) != default
        assert differs == (setting.name in MODEL_SETTINGS[name]), setting.name


def test_unknown_model():
    with pytest.raises(ValueError, match="allowed"):
        build_model("Transformer", 1, 10, (28, 28))
