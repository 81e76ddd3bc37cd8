import pytest
import torch

from raygm.core.init import init_synthetic, synthetic_labels

from conftest import make_real_data


def test_labels_are_class_major():
    assert synthetic_labels(3, 2).tolist() == [0, 0, 1, 1, 2, 2]


@pytest.mark.parametrize("init, pixel", [("black", 0.0), ("white", 1.0), ("grey", 0.5)])
def test_constant_inits_are_pixel_values(init, pixel):
    data = make_real_data(channels=3)
    images = init_synthetic(init, data, ipc=2)
    assert images.shape == (8, 3, 8, 8)
    assert torch.allclose(data.to_pixels(images), torch.full_like(images, pixel), atol=1e-6)


@pytest.mark.parametrize("init, value", [("seed_zeros", 0.0), ("seed_ones", 1.0),
                                         ("seed_half", 0.5)])
def test_seed_study_constants_are_in_normalised_space(init, value):
    images = init_synthetic(init, make_real_data(), ipc=1)
    assert torch.equal(images, torch.full_like(images, value))


def test_real_init_takes_images_of_each_class():
    data = make_real_data()
    images = init_synthetic("real", data, ipc=3, generator=torch.Generator().manual_seed(1))
    for i, image in enumerate(images):
        match = (data.images == image).flatten(1).all(1).nonzero()
        assert len(match) == 1 and data.labels[match.item()] == i // 3


def test_noise_init_is_standard_normal():
    images = init_synthetic("noise", make_real_data(num_classes=10, size=20), ipc=50)
    assert abs(images.mean().item()) < 0.02 and abs(images.std().item() - 1) < 0.02


def test_unknown_init():
    with pytest.raises(ValueError, match="allowed: noise, real"):
        init_synthetic("zeros", make_real_data(), ipc=1)


@pytest.mark.parametrize("init", ["herding", "kcenter"])
def test_selection_inits_take_distinct_real_images_of_each_class(init):
    data = make_real_data()
    images = init_synthetic(init, data, ipc=3, generator=torch.Generator().manual_seed(1))
    assert images.shape == (12, 1, 8, 8)
    rows = []
    for i, image in enumerate(images):
        match = (data.images == image).flatten(1).all(1).nonzero()
        assert len(match) == 1 and data.labels[match.item()] == i // 3
        rows.append(match.item())
    assert len(set(rows)) == 12


@pytest.mark.parametrize("init", ["herding", "kcenter"])
def test_selection_inits_are_deterministic_per_seed(init):
    data = make_real_data()
    first, again, other = (init_synthetic(init, data, ipc=2,
                                          generator=torch.Generator().manual_seed(seed))
                           for seed in (1, 1, 2))
    assert torch.equal(first, again) and not torch.equal(first, other)


def test_selection_init_leaves_the_global_random_stream():
    """The embedding network draws only from the init's stream."""
    torch.manual_seed(0)
    expected = torch.rand(1)
    torch.manual_seed(0)
    init_synthetic("herding", make_real_data(), ipc=2, generator=torch.Generator().manual_seed(1))
    assert torch.equal(torch.rand(1), expected)
