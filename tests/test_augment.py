import torch

from raygm.augment import dc_augment


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
