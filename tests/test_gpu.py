"""raygm/core/gpu.py on any machine, and the CUDA path itself where there is a GPU: the tests
marked gpu run in benchmarks/gpu_check.sh (`pytest -m gpu tests/test_gpu.py`) and are skipped
elsewhere."""
import io
import math
import os
import warnings

import pytest
import torch

from raygm.core import gpu
from raygm.core.distill import Distillation
from raygm.core.driver import run_to_end
from raygm.core.augment import dc_augment
from raygm.core.evaluate import evaluate_synthetic
from raygm.core.training import train_epochs

from conftest import make_real_data

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def test_each_process_compiles_into_a_cache_of_its_own(monkeypatch, tmp_path):
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    monkeypatch.delenv("TRITON_CACHE_DIR", raising=False)
    folder = gpu.own_compile_cache(str(tmp_path))
    assert folder.endswith(f"raygm-compile-{os.getpid()}")
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"].startswith(folder)
    assert os.environ["TRITON_CACHE_DIR"].startswith(folder)
    # a cache the user chose stays
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", "/mine")
    gpu.own_compile_cache(str(tmp_path))
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == "/mine"


def test_a_fractional_gpu_caps_memory_at_its_share_and_a_whole_one_not_at_all():
    assert gpu.memory_share(0.25) == 0.25
    assert gpu.memory_share(1) is None and gpu.memory_share(2) is None
    assert gpu.memory_share(0) is None


def test_a_cpu_run_reports_its_cpu_and_no_gpu_memory(tiny_config, tiny_data):
    run = Distillation(tiny_config.replace(iterations=1, eval_models=0, eval_epochs=None),
                       tiny_data)
    progress = run_to_end(run, [])
    assert "CPUs" in gpu.device_name(run.device)
    assert math.isnan(progress.peak_memory_mb)
    assert math.isnan(gpu.memory_cap_gb(run.device, None))


def two_steps(config, data):
    run = Distillation(config, data)
    start = run.images.detach().cpu().clone()
    records = [run.step() for _ in range(2)]
    return run, start, records, run.images.detach().cpu().clone()


@pytest.mark.gpu
@cuda
@pytest.mark.parametrize("execution, levers", [
    ("eager", None), ("compiled", None), ("eager", ("batched_classes",)),
    ("compiled", ("batched_classes", "cuda_graphs"))])
def test_a_short_run_on_cuda_agrees_with_the_cpu(execution, levers, tiny_config, tiny_data):
    """The same losses and synthetic update on the GPU (fp32, TF32 off) as on the CPU."""
    config = tiny_config.replace(ipc=2, outer_loop=2, inner_loop=1, precision="fp32",
                                 execution=execution, levers=levers)
    _, start_c, rec_c, end_c = two_steps(config.replace(device="cpu"), tiny_data)
    _, start_g, rec_g, end_g = two_steps(config.replace(device="cuda"), tiny_data)
    assert torch.equal(start_c, start_g)
    for c, g in zip(rec_c, rec_g):
        assert g.class_loss == pytest.approx(c.class_loss, rel=1e-4, abs=1e-5)
    update = end_c - start_c
    assert torch.allclose(end_g - start_g, update, rtol=1e-3, atol=1e-4 * update.abs().max())


@pytest.mark.gpu
@cuda
@pytest.mark.parametrize("levers", [None, ("stacked_eval",), ("stacked_eval", "cuda_graphs")])
def test_evaluation_on_cuda_agrees_with_the_cpu(levers, tiny_config):
    data = make_real_data()
    config = tiny_config.replace(eval_models=3, eval_epochs=8, execution="compiled",
                                 levers=levers)
    images, labels = data.images[::3], data.labels[::3]
    on_cpu = evaluate_synthetic(images, labels, data, config, "ConvNet")
    on_gpu = evaluate_synthetic(images.cuda(), labels.cuda(), data, config.replace(device="cuda"),
                                "ConvNet")
    # 24 test images: a network may flip one near-tied prediction under other rounding
    assert on_gpu.accs == pytest.approx(on_cpu.accs, abs=1 / 24 + 1e-9)


@pytest.mark.gpu
@cuda
def test_a_checkpoint_taken_on_the_gpu_resumes_on_the_cpu(tiny_config, tiny_data):
    config = tiny_config.replace(ipc=2, outer_loop=2, inner_loop=1, precision="fp32")
    on_gpu, *_ = two_steps(config.replace(device="cuda"), tiny_data)
    saved = io.BytesIO()
    torch.save(on_gpu.state_dict(), saved)
    saved.seek(0)
    resumed = Distillation(config.replace(device="cpu"), tiny_data)
    resumed.load_state_dict(torch.load(saved, map_location="cpu", weights_only=False))
    on_cpu, *_ = two_steps(config.replace(device="cpu"), tiny_data)
    assert resumed.iteration == on_cpu.iteration == 2
    assert torch.allclose(resumed.images, on_cpu.images, rtol=1e-3, atol=1e-4)
    after = resumed.step(), on_cpu.step()
    assert after[0].loss == pytest.approx(after[1].loss, rel=1e-3)


@pytest.mark.gpu
@cuda
def test_a_run_caps_its_gpu_memory_and_reports_what_it_held(tiny_config, tiny_data):
    device = torch.device("cuda")
    try:
        run = Distillation(tiny_config.replace(device="cuda", iterations=1, eval_models=0,
                                               eval_epochs=None, gpu_memory_fraction=0.01),
                           tiny_data)
        progress = run_to_end(run, [])
        assert progress.peak_memory_mb > 0
        assert gpu.device_name(device) == torch.cuda.get_device_name(device)
        cap = gpu.memory_cap_gb(device, 0.01)
        assert cap == pytest.approx(torch.cuda.get_device_properties(device).total_memory
                                    * 0.01 / 2 ** 30)
        with pytest.raises(torch.OutOfMemoryError):  # twice the cap, in one tensor
            torch.empty(int(2 * cap * 2 ** 30), dtype=torch.uint8, device=device)
        assert os.environ["TORCHINDUCTOR_CACHE_DIR"].endswith(
            os.path.join(f"raygm-compile-{os.getpid()}", "inductor"))
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0, device)


def synchronisations(work) -> int:
    """How many times `work` makes the host wait for the GPU (torch's sync debug mode)."""
    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            work()
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return sum("synchroniz" in str(w.message) for w in caught)


@pytest.mark.gpu
@cuda
@pytest.mark.parametrize("execution, levers", [
    ("eager", None), ("compiled", None), ("compiled", ("batched_classes", "cuda_graphs"))])
def test_a_step_on_cuda_waits_for_the_gpu_only_to_read_its_losses(execution, levers,
                                                                   tiny_config, tiny_data):
    """Inside a step (outer steps, inner epochs between them) the host never waits for the
    GPU except once, reading the iteration's losses back (Distillation.step's tolist)."""
    run = Distillation(tiny_config.replace(device="cuda", ipc=2, outer_loop=3, inner_loop=2,
                                           execution=execution, levers=levers), tiny_data)
    run.step()  # compiling and recording CUDA graphs may wait; a study's later steps do not
    assert synchronisations(run.step) == 1


@pytest.mark.gpu
@cuda
def test_training_an_evaluation_network_never_waits_for_the_gpu(tiny_config, tiny_data):
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 4)).cuda()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    images, labels = tiny_data.images.cuda(), tiny_data.labels.cuda()
    assert synchronisations(lambda: train_epochs(
        net, optimizer, images, labels, 5, 16, dc_augment, None,
        torch.Generator().manual_seed(0))) == 0
