"""Distillation on the real MNIST train/test split (RAYGM_DATA_DIR; CI sets it)."""
import pytest

from raygm.core.config import RunConfig
from raygm.core.data import load_dataset
from raygm.core.distill import Distillation

from conftest import real_data_dir

pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    real_data_dir() is None, reason="set RAYGM_DATA_DIR to a folder with MNIST")]


def test_distilled_mnist_beats_its_initialisation_by_a_wide_margin():
    data = load_dataset("MNIST", real_data_dir(), download=False)
    # a width-16 ConvNet and a large image learning rate: a real run in ~15 s on 2 cores
    config = RunConfig(model="ConvNet", net_width=16, ipc=1, init="noise", iterations=60,
                       lr_img=1.0, batch_real=64, eval_models=2, eval_epochs=300,
                       eval_augment="none", device="cpu", seed=0)
    run = Distillation(config, data)
    before = run.evaluate()[0].acc_mean
    for _ in range(config.iterations):
        run.step()
    after = run.evaluate()[0].acc_mean
    print(f"MNIST ConvNet-16 ipc 1: accuracy {before:.3f} at init, {after:.3f} after 60 iterations")
    assert before < 0.3 and after > before + 0.4
