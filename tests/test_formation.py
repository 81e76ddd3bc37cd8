"""IDC's multi-formation: the decode, the packing of an initialisation, and a run's use of
them (config, distillation, evaluation)."""
import math

import pytest
import torch
import torch.nn.functional as F

from raygm.core import evaluate as evaluate_module
from raygm.core.config import ConfigError, RunConfig
from raygm.core.distill import Distillation
from raygm.core.evaluate import evaluate_network
from raygm.core.formation import decode, encode


def test_factor_1_is_the_plain_set_itself():
    images, labels = torch.randn(6, 1, 28, 28), torch.arange(6)
    decoded, decoded_labels = decode(images, labels, 1)
    assert decoded is images and decoded_labels is labels
    assert encode(images, 1) is images


@pytest.mark.parametrize("factor", [2, 4, 7])
def test_decoding_splits_each_image_into_its_blocks_and_upsamples_them(factor):
    images, labels = torch.randn(3, 2, 28, 28), torch.tensor([0, 1, 2])
    decoded, decoded_labels = decode(images, labels, factor)
    assert decoded.shape == (3 * factor ** 2, 2, 28, 28)
    assert decoded_labels.tolist() == [k for k in range(3) for _ in range(factor ** 2)]
    s = 28 // factor
    # block (i, j) of image 1 is decoded image 1·f² + i·f + j, upsampled
    i, j = factor - 1, 0
    block = images[1:2, :, i * s:(i + 1) * s, j * s:(j + 1) * s]
    expected = F.interpolate(block, size=(28, 28), mode="bilinear", align_corners=False)
    torch.testing.assert_close(decoded[factor ** 2 + i * factor + j], expected[0])


@pytest.mark.parametrize("factor", [2, 4])
def test_an_encoded_set_decodes_to_its_images_at_block_resolution(factor):
    """encode packs f² images as blocks; splitting the packed image gives each image
    averaged down to the block's size, in order."""
    images = torch.randn(2 * factor ** 2, 1, 28, 28)
    packed = encode(images, factor)
    assert packed.shape == (2, 1, 28, 28)  # the storage of 2 images
    s = 28 // factor
    blocks = packed.reshape(2, 1, factor, s, factor, s).permute(0, 2, 4, 1, 3, 5) \
        .reshape(2 * factor ** 2, 1, s, s)
    torch.testing.assert_close(blocks, F.avg_pool2d(images, factor))


def test_the_decode_is_differentiable_against_finite_differences():
    images = torch.randn(2, 1, 8, 8, dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([0, 1])
    weights = torch.randn(8, 1, 8, 8, dtype=torch.float64)  # a fixed readout of the decode
    assert torch.autograd.gradcheck(lambda x: (decode(x, labels, 2)[0] * weights).sum(),
                                    (images,))


# --- in a run: config, distillation, evaluation -----------------------------------------

def test_a_factor_must_divide_the_image_size():
    assert RunConfig(factor=2).factor == 2
    with pytest.raises(ConfigError, match=r"'factor' = 3 .*divisor of MNIST's image size 28: "
                                          r"1, 2, 4, 7, 14, 28"):
        RunConfig(factor=3)
    with pytest.raises(ConfigError, match="divisor of CIFAR10's image size 32: 1, 2, 4, 8, 16"):
        RunConfig(dataset="CIFAR10", factor=7)
    with pytest.raises(ConfigError, match="'factor' = 0"):
        RunConfig(factor=0)


@pytest.mark.parametrize("dsa", ["none", "color_crop_cutout_scale_rotate"])
def test_distillation_stores_ipc_images_and_learns_them_through_the_decode(dsa, tiny_config,
                                                                           tiny_data):
    run = Distillation(tiny_config.replace(factor=2, ipc=2, dsa=dsa), tiny_data)
    # the storage of ipc images per class, packed from 4 initial images each
    assert run.images.shape == (4 * 2, 1, 8, 8) and run.labels.tolist() == [0, 0, 1, 1, 2, 2,
                                                                             3, 3]
    before = run.images.detach().clone()
    record = run.step()
    moved = (run.images.detach() - before).abs()
    assert math.isfinite(record.loss) and record.loss > 0
    # every block of every stored image receives gradient through the decode
    blocks = moved.reshape(8, 1, 2, 4, 2, 4).sum(dim=(1, 3, 5))
    assert (blocks > 0).all()
    assert run.state_dict()["factor"] == 2


def test_evaluation_networks_train_on_the_decoded_images(tiny_config, tiny_data, monkeypatch):
    seen = []
    original = evaluate_module.train_and_test

    def spy(net, images, labels, *args, **kwargs):
        seen.append((tuple(images.shape), labels.tolist()))
        return original(net, images, labels, *args, **kwargs)
    monkeypatch.setattr(evaluate_module, "train_and_test", spy)
    images, labels = tiny_data.images[:4], torch.tensor([0, 1, 2, 3])
    evaluate_network(images, labels, tiny_data, tiny_config.replace(factor=2), "ConvNet", 0, 0)
    evaluate_network(images, labels, tiny_data, tiny_config, "ConvNet", 0, 0)
    assert seen == [((16, 1, 8, 8), [k for k in range(4) for _ in range(4)]),
                    ((4, 1, 8, 8), [0, 1, 2, 3])]  # factor 1: the stored images themselves
