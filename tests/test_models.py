import pytest
import torch

from raygm.config import RunConfig
from raygm.models import MODELS, build_model, has_batchnorm


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("channels, size", [(1, 28), (3, 32)])
def test_models_map_images_to_logits(name, channels, size):
    net = build_model(name, channels, 10, (size, size))
    assert net(torch.randn(2, channels, size, size)).shape == (2, 10)
    assert has_batchnorm(net) == name.endswith("BN")


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


def test_unknown_model():
    with pytest.raises(ValueError, match="allowed"):
        build_model("Transformer", 1, 10, (28, 28))
