import pytest
import torch

from raygm.core.config import ConfigError
from raygm.core.distill import Distillation

from conftest import make_real_data


def run(config, data, steps):
    d = Distillation(config, data)
    records = [d.step() for _ in range(steps)]
    return d, records


def test_same_seed_gives_bit_identical_synthetic_sets(tiny_config, tiny_data):
    a, _ = run(tiny_config, tiny_data, 3)
    b, _ = run(tiny_config, tiny_data, 3)
    assert torch.equal(a.images, b.images)
    c, _ = run(tiny_config.replace(seed=1), tiny_data, 3)
    assert not torch.equal(a.images, c.images)


def test_records_hold_total_and_per_class_loss(tiny_config, tiny_data):
    d, records = run(tiny_config, tiny_data, 2)
    assert [r.iteration for r in records] == [1, 2] and d.iteration == 2
    for r in records:
        assert len(r.class_loss) == 4 and r.loss == pytest.approx(sum(r.class_loss))
        assert r.seconds > 0


def test_steps_change_the_synthetic_images(tiny_config, tiny_data):
    d = Distillation(tiny_config, tiny_data)
    before = d.images.detach().clone()
    d.step()
    assert not torch.allclose(d.images, before)


def test_matching_loss_goes_down(tiny_mlp_config):
    data = make_real_data(per_class=40)
    config = tiny_mlp_config.replace(lr_img=1.0, batch_real=40, distance="mse")
    _, records = run(config, data, 30)
    first = sum(r.loss for r in records[:5])
    last = sum(r.loss for r in records[-5:])
    assert last < 0.7 * first


def test_resume_from_state_dict_equals_uninterrupted_run(tiny_config, tiny_data):
    config = tiny_config.replace(ipc=2, outer_loop=2, inner_loop=2)  # exercises the inner loop
    straight, _ = run(config, tiny_data, 4)
    first, _ = run(config, tiny_data, 2)
    state = first.state_dict()
    torch.rand(10)  # disturb the global stream: the state must carry it
    resumed = Distillation(config, tiny_data)
    resumed.load_state_dict(state)
    for _ in range(2):
        resumed.step()
    assert resumed.iteration == 4 and torch.equal(resumed.images, straight.images)


def test_batchnorm_network_runs_with_frozen_statistics(tiny_config, tiny_data):
    config = tiny_config.replace(net_norm="batchnorm", ipc=2, outer_loop=2, inner_loop=1,
                                 bn_batch=2)
    d, records = run(config, tiny_data, 2)
    assert all(torch.isfinite(torch.tensor(r.loss)) for r in records)


def test_evaluate_covers_each_architecture(tiny_config, tiny_data):
    d = Distillation(tiny_config.replace(eval_archs=("ConvNet", "MLP")), tiny_data)
    results = d.evaluate()
    assert [r.arch for r in results] == ["ConvNet", "MLP"]
    assert all(r.iteration == 0 and len(r.accs) == 1 for r in results)


@pytest.mark.parametrize("distance", ["ours", "mse", "cos"])
@pytest.mark.parametrize("hessian, curvature", [("none", "gauss_newton"),
                                                ("curvature", "gauss_newton"),
                                                ("curvature", "exact"), ("hvp", "gauss_newton")])
def test_compiled_and_eager_steps_agree(distance, hessian, curvature, tiny_config, tiny_data):
    """The compiled real-data path gives the eager reference loop's loss and update."""
    config = tiny_config.replace(distance=distance, hessian=hessian,
                                 hessian_weight=0.1 if hessian != "none" else 0.0,
                                 hessian_curvature=curvature, ipc=2, outer_loop=2, inner_loop=1)
    results = {}
    for mode in ("eager", "compiled"):
        d = Distillation(config.replace(execution=mode), tiny_data)
        results[mode] = (d.images.detach().clone(), [d.step() for _ in range(2)],
                         d.images.detach().clone())
    (start_r, rec_r, end_r), (start_f, rec_f, end_f) = results["eager"], results["compiled"]
    assert torch.equal(start_r, start_f)
    for r, f in zip(rec_r, rec_f):
        assert f.loss == pytest.approx(r.loss, rel=1e-5)
        assert f.loss_higher == pytest.approx(r.loss_higher, rel=1e-4, abs=1e-6)
    assert torch.allclose(end_f - start_f, end_r - start_r, rtol=1e-4, atol=1e-5)
    assert not torch.equal(end_r, start_r)


@pytest.mark.parametrize("base, changes", [
    ("tiny_config", {"distance": "ours"}), ("tiny_config", {"distance": "mse"}),
    ("tiny_config", {"distance": "cos"}), ("tiny_mlp_config", {}),
    ("tiny_config", {"dsa": "color_crop_cutout_scale_rotate"}),
    ("tiny_config", {"net_norm": "batchnorm", "bn_batch": 2, "execution": "compiled"}),
])
def test_batched_classes_step_agrees_with_the_per_class_loop(base, changes, request, tiny_data):
    """Lever batched_classes: the same losses (per class too) and synthetic update as the
    per-class loop, to float32 rounding."""
    config = request.getfixturevalue(base).replace(ipc=2, outer_loop=2, inner_loop=1, **changes)
    results = {}
    for levers in (None, ("batched_classes",)):
        d = Distillation(config.replace(levers=levers), tiny_data)
        results[levers] = (d.images.detach().clone(), [d.step() for _ in range(2)],
                           d.images.detach().clone())
    (start_r, rec_r, end_r), (start_b, rec_b, end_b) = results.values()
    assert torch.equal(start_r, start_b)
    for r, b in zip(rec_r, rec_b):
        assert b.class_loss == pytest.approx(r.class_loss, rel=1e-5, abs=1e-6)
        assert b.loss_higher == 0
    update = end_r - start_r  # float32 rounding in sums over a layer of 128 or more
    assert torch.allclose(end_b - start_b, update, rtol=1e-4, atol=2e-5 * update.abs().max())
    assert not torch.equal(end_r, start_r)


def test_batched_classes_refuse_real_batches_a_class_cannot_fill(tiny_config, tiny_data):
    smallest = min(len(i) for i in tiny_data.class_indices)
    with pytest.raises(ConfigError, match="'batch_real'.*batched_classes"):
        Distillation(tiny_config.replace(levers=("batched_classes",), batch_real=smallest + 1),
                     tiny_data)


def test_the_config_as_run_names_the_device_it_resolved(tiny_config, tiny_data):
    assert Distillation(tiny_config.replace(device="auto"), tiny_data).config.device == "cpu"


def test_same_seed_gives_the_same_networks_and_batches_across_configurations(tiny_config,
                                                                            tiny_data, monkeypatch):
    """Common random numbers: configurations that differ in init, lr_img or DSA see the
    same network initialisations and real batches at every iteration (and differ in what
    they change); another seed sees others."""
    seen = {}

    def record(name, config):
        run = Distillation(config, tiny_data)
        nets, batches = [], []
        sample = type(tiny_data).sample

        def spy(self, c, n, generator=None):
            batch = sample(self, c, n, generator)
            batches.append(batch.clone())
            return batch
        monkeypatch.setattr(type(tiny_data), "sample", spy)
        fresh = run.fresh_network

        def spy_net():
            net = fresh()
            nets.append([p.detach().clone() for p in net.parameters()])
            return net
        run.fresh_network = spy_net
        for _ in range(3):
            run.step()
        monkeypatch.undo()
        seen[name] = (nets, batches, run.images.detach().clone())

    record("noise", tiny_config)
    record("white", tiny_config.replace(init="white", lr_img=0.5))
    record("seed1", tiny_config.replace(seed=1))
    record("dsa", tiny_config.replace(dsa="color_crop_cutout_scale_rotate"))
    (n1, b1, i1), (n3, b3, _) = seen["noise"], seen["seed1"]
    for nets, batches, images in (seen["white"], seen["dsa"]):
        assert all(torch.equal(a, b) for x, y in zip(n1, nets) for a, b in zip(x, y))
        assert all(torch.equal(a, b) for a, b in zip(b1, batches)) and len(batches) == 12
        assert not torch.equal(i1, images)
    assert not all(torch.equal(a, b) for a, b in zip(b1, b3))
    assert not torch.equal(n1[0][0], n3[0][0])


def test_dsa_runs_are_reproducible_and_differ_from_dc(tiny_config, tiny_data):
    config = tiny_config.replace(dsa="color_crop_cutout_scale_rotate")
    a, _ = run(config, tiny_data, 2)
    b, _ = run(config, tiny_data, 2)
    dc, _ = run(tiny_config, tiny_data, 2)
    assert torch.equal(a.images, b.images) and not torch.allclose(a.images, dc.images)


def test_a_step_leaves_the_global_random_stream_alone(tiny_config, tiny_data):
    run = Distillation(tiny_config, tiny_data)
    torch.manual_seed(3)
    expected = torch.rand(2)
    torch.manual_seed(3)
    run.step()
    assert torch.equal(torch.rand(2), expected)


def test_bf16_real_gradients_agree_with_fp32(tiny_config, tiny_data):
    """bf16 autocast of the real-data gradients (the default on AMX CPUs): the matching loss
    within 2% and the synthetic update pointing the same way (cosine > 0.99)."""
    runs = {}
    for precision in ("fp32", "bf16"):
        run = Distillation(tiny_config.replace(precision=precision, ipc=2, outer_loop=2,
                                               inner_loop=1), tiny_data)
        start = run.images.detach().clone()
        records = [run.step() for _ in range(2)]
        runs[precision] = (records, (run.images.detach() - start).flatten())
    (fp32, update32), (bf16, update16) = runs["fp32"], runs["bf16"]
    for a, b in zip(fp32, bf16):
        assert b.loss == pytest.approx(a.loss, rel=0.02)
    assert torch.nn.functional.cosine_similarity(update32, update16, dim=0) > 0.99
    assert not torch.equal(update32, update16)  # bf16 really ran


@pytest.mark.parametrize("flags, expected", [
    ("fpu avx2 avx512f", "fp32"), ("fpu avx512f avx512_bf16", "bf16"),
    ("fpu avx512f amx_bf16 amx_tile", "bf16")])
def test_auto_precision_is_bf16_where_the_cpu_multiplies_bf16_natively(
        tiny_config, tiny_data, monkeypatch, flags, expected):
    from raygm.core import machine
    monkeypatch.setattr(machine, "cpuinfo",
                        lambda key: flags if key == "flags" else "Test CPU")
    tiny_config = tiny_config.replace(precision="auto")
    assert Distillation(tiny_config, tiny_data).config.precision == expected
    assert Distillation(tiny_config.replace(device="cpu", precision="fp32"),
                        tiny_data).config.precision == "fp32"
    # a higher-order term that differentiates the real gradient keeps fp32
    hvp = tiny_config.replace(hessian="hvp", hessian_weight=0.1)
    assert Distillation(hvp, tiny_data).config.precision == "fp32"
    gauss_newton = tiny_config.replace(hessian="curvature", hessian_weight=0.1)
    assert Distillation(gauss_newton, tiny_data).config.precision == expected
    assert ("AVX-512 BF16" in machine.cpu_description()) == ("avx512_bf16" in flags)
