import copy

import pytest
import torch

from raygm.core.augment import AUGMENTATIONS, DSA
from raygm.core.config import RunConfig
from raygm.core.evaluate import (accuracy, evaluate_network, evaluate_synthetic,
                                 evaluation_network, train_and_test, train_stacked)
from raygm.core.models import ModelConfig, build_model
from raygm.core.training import train_epochs

from conftest import make_real_data


def test_training_on_real_data_learns_the_classes():
    torch.manual_seed(0)
    data = make_real_data()
    net = build_model("MLP", 1, 4, (8, 8))
    assert train_and_test(net, data.images, data.labels, data, epochs=30, lr=0.05,
                          batch_size=16, augment=None) > 0.9


def test_accuracy_of_a_constant_classifier():
    data = make_real_data()

    class Always2(torch.nn.Module):
        def forward(self, x):
            return torch.nn.functional.one_hot(torch.full((len(x),), 2), 4).float()

    assert accuracy(Always2(), data.test_images, data.test_labels) == 0.25


def test_evaluate_synthetic_reports_per_network_accuracies(tiny_mlp_config):
    data = make_real_data()
    config = tiny_mlp_config.replace(eval_models=3, eval_epochs=10)
    images, labels = data.images[::3], data.labels[::3]
    result = evaluate_synthetic(images, labels, data, config, "MLP")
    assert len(result.accs) == 3 and 0 <= result.acc_std <= result.acc_mean <= 1
    assert len(set(result.accs)) > 1  # three different networks
    again = evaluate_synthetic(images, labels, data, config, "MLP")
    assert again.accs == result.accs


def test_each_evaluation_network_can_be_evaluated_alone(tiny_mlp_config):
    """Network n has its own stream: alone (as one `raygm evaluate` task) it gives what it
    gives among the others, and a later iteration meets other networks."""
    data = make_real_data()
    config = tiny_mlp_config.replace(eval_models=3, eval_epochs=10)
    images, labels = data.images[::3], data.labels[::3]
    together = evaluate_synthetic(images, labels, data, config, "MLP", iteration=4)
    assert evaluate_network(images, labels, data, config, "MLP", 4, 2) == together.accs[2]
    assert evaluate_synthetic(images, labels, data, config, "MLP", iteration=5).accs != \
        together.accs


@pytest.mark.parametrize("changes", [{}, {"dsa": "color_crop"}, {"levers": ("stacked_eval",)},
                                     {"dsa": "color_crop", "levers": ("stacked_eval",)}])
def test_evaluation_does_not_consume_the_global_random_stream(changes, tiny_config):
    """Neither building the networks nor training them (DSA's colour factors included)
    draws from the caller's stream."""
    data = make_real_data()
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    evaluate_synthetic(data.images, data.labels, data, tiny_config.replace(**changes), "MLP",
                       iteration=1)
    assert torch.equal(torch.rand(3), expected)


def test_a_dsa_run_trains_its_evaluation_networks_with_dsa(tiny_config, monkeypatch):
    """Every training batch of an evaluation network goes through DSA's augmentation (one
    set of parameters per image), drawn from that network's stream."""
    data = make_real_data()
    config = tiny_config.replace(dsa="crop_scale_rotate", eval_epochs=4)
    calls = []
    original = DSA.__call__

    def spy(self, images, generator=None):
        calls.append((self.same_on_batch, len(images)))
        return original(self, images, generator)
    monkeypatch.setattr(DSA, "__call__", spy)
    images, labels = data.images[::6], data.labels[::6]
    first = evaluate_network(images, labels, data, config, "ConvNet", 0, 0)
    assert calls == [(False, len(images))] * 4  # one batch per epoch here
    assert evaluate_network(images, labels, data, config, "ConvNet", 0, 0) == first


@pytest.mark.parametrize("augment", ["none", "dc", "dsa"])
@pytest.mark.parametrize("batch_size", [5, 256])
def test_stacked_networks_train_as_each_would_alone(augment, batch_size):
    """Lever stacked_eval: networks trained together end where each ends trained alone with
    its own generator (its shuffling and augmentation), through momentum, weight decay and
    the learning-rate drop, several batches an epoch or one."""
    data = make_real_data()
    images, labels = data.images[::4], data.labels[::4]
    torch.manual_seed(0)
    nets = [build_model("ConvNet", 1, 4, (8, 8), RunConfig(net_width=8, net_depth=2).net)
            for _ in range(3)]
    alone = copy.deepcopy(nets)
    transform = AUGMENTATIONS[augment]("color_crop_cutout_scale_rotate")
    for n, net in enumerate(alone):
        optimizer = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
        scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, [3], 0.1)
        train_epochs(net, optimizer, images, labels, 6, batch_size, transform, scheduler,
                     torch.Generator().manual_seed(n))
    start = copy.deepcopy(nets[0])
    train_stacked(nets, images, labels, 6, 0.05, batch_size, transform,
                  [torch.Generator().manual_seed(n) for n in range(3)])
    for together, by_itself in zip(nets, alone):
        for p, q in zip(together.parameters(), by_itself.parameters()):
            torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5)
    assert not torch.equal(nets[0].classifier.weight, start.classifier.weight)
    assert not torch.equal(nets[0].classifier.weight, nets[1].classifier.weight)


@pytest.mark.parametrize("changes", [{}, {"net_norm": "batchnorm"}])
def test_stacked_evaluation_gives_each_network_its_accuracy(changes, tiny_config):
    """evaluate_synthetic with stacked_eval meets the same networks as without (a network
    with BatchNorm, which does not stack, trains alone)."""
    data = make_real_data()
    # (fp32: stacking is a GPU lever, and GPUs evaluate in fp32; bf16 trains alone)
    config = tiny_config.replace(eval_models=3, eval_epochs=8, precision="fp32", **changes)
    images, labels = data.images[::3], data.labels[::3]
    alone = evaluate_synthetic(images, labels, data, config, "ConvNet", iteration=2)
    together = evaluate_synthetic(images, labels, data,
                                  config.replace(levers=("stacked_eval",)), "ConvNet", iteration=2)
    assert together.accs == alone.accs and len(set(alone.accs)) > 1


def test_bf16_evaluation_learns_as_fp32_does(tiny_config):
    """precision bf16: the evaluation networks train and test under bf16 autocast; on the
    same networks and batches they end near fp32's accuracy, but not bit for bit (bf16 ran)."""
    data = make_real_data()
    config = tiny_config.replace(eval_models=3, eval_epochs=30)
    images, labels = data.images[::2], data.labels[::2]
    accs = {p: evaluate_synthetic(images, labels, data, config.replace(precision=p),
                                  "ConvNet").accs for p in ("fp32", "bf16")}
    assert min(accs["fp32"]) > 0.5  # the networks learn (4 classes)
    assert abs(sum(accs["bf16"]) - sum(accs["fp32"])) / 3 < 0.05
    calls = []
    original = torch.nn.functional.conv2d

    def spy(x, w, *args, **kwargs):
        calls.append(torch.is_autocast_enabled("cpu"))
        return original(x, w, *args, **kwargs)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(torch.nn.functional, "conv2d", spy)
        evaluate_network(images, labels, data, config.replace(precision="bf16", eval_epochs=2),
                         "ConvNet", 0, 0)
    assert calls and all(calls)  # training and the test pass


@pytest.mark.parametrize("eval_net", ["matching", "standard"])
def test_the_evaluation_networks_are_the_matching_variant_or_dcs_standard_convnet(eval_net,
                                                                                 tiny_config):
    data = make_real_data()
    config = tiny_config.replace(eval_net=eval_net)
    net, _ = evaluation_network(data, config, "ConvNet", 0, 0, torch.device("cpu"))
    expected = build_model("ConvNet", data.channels, data.num_classes, data.im_size,
                           config.net if eval_net == "matching" else ModelConfig())
    assert [p.shape for p in net.parameters()] == [p.shape for p in expected.parameters()]
    assert 0 <= evaluate_network(data.images[::3], data.labels[::3], data, config, "ConvNet", 0,
                                 0) <= 1
