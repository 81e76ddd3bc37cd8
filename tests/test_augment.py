import pytest
import torch

from raygm.core.augment import DSA, DSA_STRATEGIES, dc_augment


def test_constant_images_stay_constant():
    images = torch.full((16, 1, 28, 28), 0.7)
    out = dc_augment(images, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(out, images, atol=1e-5)


def test_each_image_gets_its_own_transform_and_content_is_kept():
    images = torch.zeros(64, 1, 28, 28)
    images[:, :, 10:18, 10:18] = 1.0
    out = dc_augment(images, generator=torch.Generator().manual_seed(0))
    assert out.shape == images.shape
    distinct = {tuple(o.flatten().round(decimals=3).tolist()) for o in out}
    assert len(distinct) > 32
    # the square stays inside the frame: crop <= 4 px, scale <= 20%, rotation about the centre
    mass = out.sum(dim=(1, 2, 3))
    assert ((mass > 0.6 * 64) & (mass < 1.5 * 64)).all()


def test_same_generator_seed_gives_same_augmentation():
    images = torch.randn(8, 3, 32, 32)
    a = dc_augment(images, generator=torch.Generator().manual_seed(3))
    b = dc_augment(images, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def test_crop_noise_shifts_some_images_and_adds_small_noise_to_the_others():
    """DC's crop_noise (ConvNetBN): each image either shifted by whole pixels or given
    Gaussian noise of std 0.001, never scaled or rotated."""
    images = torch.zeros(256, 1, 28, 28)
    images[:, :, 10:18, 10:18] = 1.0
    out = dc_augment(images, ("crop", "noise"), generator=torch.Generator().manual_seed(0))
    change = (out - images).flatten(1)
    noisy = change.abs().max(1).values < 0.01
    assert 64 < noisy.sum() < 192  # about half each
    assert 0.0005 < change[noisy].std() < 0.002
    # a whole-pixel shift keeps the square's 64 pixels whole and every other pixel 0 or the
    # mean moved in from outside; a scale or rotation would blur its edges
    shifted = out[~noisy].flatten(1)
    assert ((shifted > 1 - 1e-4).sum(1) == 64).all()
    fill = images.mean()
    assert ((shifted > 1 - 1e-4) | (shifted.abs() < 1e-4) | ((shifted - fill).abs() < 1e-4)).all()


# --- DSA ----------------------------------------------------------------------------------

GROUPS = list(DSA_STRATEGIES)


@pytest.mark.parametrize("group", GROUPS)
def test_gradients_flow_through_every_dsa_group_to_the_synthetic_images(group):
    """Against finite differences, in float64 on a tiny case, with the augmentation's
    parameters fixed by the generator's seed."""
    real = torch.randn(3, 1, 6, 6, dtype=torch.float64)
    synthetic = torch.randn(1, 1, 6, 6, dtype=torch.float64, requires_grad=True)
    weights = torch.randn(1, 1, 6, 6, dtype=torch.float64)
    dsa = DSA(group, same_on_batch=True)

    def loss(s):
        return (weights * dsa.siamese(real, s, torch.Generator().manual_seed(1))[1]).sum()

    assert torch.autograd.gradcheck(loss, (synthetic,))
    # and the group does change images (for some seed): the check is not of an identity
    moved = [not torch.allclose(dsa(synthetic, torch.Generator().manual_seed(seed)), synthetic)
             for seed in range(6)]
    assert any(moved)


@pytest.mark.parametrize("group", GROUPS)
def test_a_class_real_and_synthetic_batches_get_the_same_parameters(group):
    """A real batch holding a copy of the synthetic image: siamese augmentation leaves the
    copy equal to the synthetic image, whatever the draw; one draw per image does not."""
    image = torch.randn(1, 3, 16, 16)
    real = torch.cat([torch.randn(4, 3, 16, 16), image, torch.randn(3, 3, 16, 16)])
    for seed in range(6):
        r, s = DSA(group, same_on_batch=True).siamese(real, image.clone().requires_grad_(),
                                                     torch.Generator().manual_seed(seed))
        assert torch.allclose(r[4], s[0], atol=1e-6) and not r.requires_grad
    apart = [not torch.allclose(*(x[i] for x, i in zip(DSA(group, same_on_batch=False).siamese(
        real, image.clone(), torch.Generator().manual_seed(seed)), (4, 0))), atol=1e-6)
        for seed in range(6)]
    assert any(apart)


def test_dsa_draws_from_its_generator_and_leaves_the_global_stream_alone():
    images = torch.randn(8, 1, 12, 12)
    dsa = DSA("color_crop_cutout_scale_rotate", same_on_batch=False)
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    a = dsa(images, torch.Generator().manual_seed(5))
    assert torch.equal(torch.rand(3), expected)
    assert torch.equal(a, dsa(images, torch.Generator().manual_seed(5)))
    draws = {tuple(dsa(images, torch.Generator().manual_seed(s)).flatten()[:50].tolist())
             for s in range(8)}
    assert len(draws) == 8
