"""Time and accuracy of one evaluated network: the new path against DC's per-image way.

DC's protocol at ipc 1 on MNIST: ConvNet trained 1000 epochs on the 10 synthetic images with
crop/scale/rotate augmentation, then tested on the 10k test images. The reference applies
DC's augmentation image by image (numpy + scipy.ndimage.rotate, as DC's utils.augment) on an
eager network; the new path augments whole batches (raygm.core.augment) on a compiled network.

    python benchmarks/eval.py [--data-dir DIR] [--synthetic runs/demo/synthetic.pt] [--models 3]
        [--device cuda] [--modes eager compiled compiled+stacked_eval ...]

On a GPU (--device cuda) DC's per-image reference (numpy and scipy on the CPU) is left out
and the first mode is the reference: modes name an execution and the levers of
raygm/core/gpu.py, e.g. compiled+stacked_eval+cuda_graphs.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F
from scipy.ndimage import rotate as scipy_rotate

from torch.utils.flop_counter import FlopCounterMode

from common import machine, matmul_gflops, mode_config, mode_name
from raygm.core.config import RunConfig
from raygm.core.data import load_dataset
from raygm.core.evaluate import accuracy, evaluate_synthetic, train_and_test
from raygm.core.init import init_synthetic, synthetic_labels
from raygm.core.models import build_model, compiled
from raygm.core.records import EvaluationRecord


def dc_augment_per_image(images: torch.Tensor, generator=None, crop: int = 4,
                         scale: float = 0.2, rotate: int = 45) -> torch.Tensor:
    """DC's utils.augment with strategy crop_scale_rotate: one random choice per image."""
    images = images.clone()
    n, c, h, w = images.shape
    mean = [float(images[:, i].mean()) for i in range(c)]
    for i in range(n):
        choice = np.random.choice(["crop", "scale", "rotate"])
        if choice == "crop":
            padded = torch.empty(c, h + 2 * crop, w + 2 * crop)
            for ch in range(c):
                padded[ch] = mean[ch]
            padded[:, crop:crop + h, crop:crop + w] = images[i]
            r, s = np.random.randint(2 * crop), np.random.randint(2 * crop)
            images[i] = padded[:, r:r + h, s:s + w]
        elif choice == "scale":
            sh = int(np.random.uniform(1 - scale, 1 + scale) * h)
            sw = int(np.random.uniform(1 - scale, 1 + scale) * w)
            tmp = F.interpolate(images[i:i + 1], [sh, sw])[0]
            m = max(sh, sw, h, w)
            canvas = torch.zeros(c, m, m)
            r, s = (m - sh) // 2, (m - sw) // 2
            canvas[:, r:r + sh, s:s + sw] = tmp
            r, s = (m - h) // 2, (m - w) // 2
            images[i] = canvas[:, r:r + h, s:s + w]
        else:
            rotated = scipy_rotate(images[i].numpy(), angle=np.random.randint(-rotate, rotate),
                                   axes=(-2, -1), cval=np.mean(mean))
            r, s = (rotated.shape[-2] - h) // 2, (rotated.shape[-1] - w) // 2
            images[i] = torch.from_numpy(rotated[:, r:r + h, s:s + w])
    return images


def network_flops(images, labels, data, epochs: int, config: RunConfig) -> float:
    """FLOPs of one evaluated network: epochs training steps on the set, one test pass."""
    net = build_model("ConvNet", 1, 10, (28, 28), config.net)
    with FlopCounterMode(display=False) as train:
        F.cross_entropy(net(images), labels).backward()
    with FlopCounterMode(display=False) as test, torch.no_grad():
        net(data.test_images[:1000])
    return epochs * train.get_total_flops() + len(data.test_images) / 1000 * test.get_total_flops()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir")
    parser.add_argument("--synthetic", help="synthetic.pt from raygm distill (default: "
                                            "10 random real images)")
    parser.add_argument("--models", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=1000)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--modes", nargs="+", default=["eager", "compiled", "compiled+auto"],
                        help="execution+levers (+bf16, +auto: the default precision here), "
                             "each a row after DC's reference (on a CPU)")
    parser.add_argument("--width", type=int, default=128, help="ConvNet width (small: a dry run)")
    args = parser.parse_args()
    data = load_dataset("MNIST", args.data_dir, download=False)
    torch.manual_seed(0)
    np.random.seed(0)
    if args.synthetic:
        images = torch.load(args.synthetic)["images"]
    else:
        images = init_synthetic("real", data, 1)
    labels = synthetic_labels(data.num_classes, 1)
    config = RunConfig(ipc=1, eval_models=args.models, eval_epochs=args.epochs,
                       net_width=args.width, device=args.device)
    flops, rate = network_flops(images, labels, data, args.epochs, config), \
        matmul_gflops(device=args.device)
    floor = flops / (rate * 1e9)
    print(f"{machine(args.device)}; ConvNet, {args.epochs} epochs, ipc 1, DC augmentation, "
          f"{args.models} networks each")
    print(f"FLOPs per evaluated network {flops / 1e12:.2f} TFLOP; fp32 matmul {rate:.0f} GFLOP/s; "
          f"floor {floor:.1f} s per network")
    rows = {}
    if args.device == "cpu":
        accs, start = [], time.perf_counter()
        for _ in range(args.models):
            net = build_model("ConvNet", 1, 10, (28, 28), config.net)
            accs.append(train_and_test(net, images, labels, data, args.epochs, config.eval_lr,
                                       config.eval_batch, dc_augment_per_image))
        rows["per-image augmentation, eager (DC)"] = EvaluationRecord.from_accs(
            0, "ConvNet", accs, time.perf_counter() - start)
    device_images, device_labels = images.to(args.device), labels.to(args.device)
    for mode in args.modes:
        run = mode_config(config, mode)
        # compile once outside the timing: a study process pays it once, not per network
        evaluate_synthetic(device_images, device_labels, data,
                           run.replace(eval_epochs=2), "ConvNet", iteration=-1)
        rows[f"batched augmentation, {mode_name(mode, args.device)}"] = evaluate_synthetic(
            device_images, device_labels, data, run, "ConvNet")

    ref = next(iter(rows.values()))
    print("| path | s / network | speed-up | floor / time | accuracy % (mean ± std) |")
    print("|---|---|---|---|---|")
    for name, r in rows.items():
        print(f"| {name} | {r.seconds_per_model:.2f} | "
              f"{ref.seconds_per_model / r.seconds_per_model:.2f}x | "
              f"{floor / r.seconds_per_model:.2f} | "
              f"{100 * r.acc_mean:.2f} ± {100 * r.acc_std:.2f} |", flush=True)
    test_pass(config, data, args.device)


def test_pass(config: RunConfig, data, device: str, repeats: int = 3) -> None:
    """The test pass alone (10k images through a compiled ConvNet), fp32 against bf16: the
    part of an evaluated network that does not shrink with fewer epochs."""
    net = compiled(build_model("ConvNet", 1, 10, (28, 28), config.net).to(device), "compiled")
    images, labels = data.test_images.to(device), data.test_labels.to(device)
    print("| test pass (10k images) | fp32 s | bf16 s | speed-up |\n|---|---|---|---|")
    seconds = {}
    for precision in ("fp32", "bf16"):
        with torch.autocast(torch.device(device).type, torch.bfloat16,
                            enabled=precision == "bf16"):
            accuracy(net, images, labels)  # compiles
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                accuracy(net, images, labels)
                times.append(time.perf_counter() - start)
        seconds[precision] = min(times)
    print(f"| ConvNet | {seconds['fp32']:.2f} | {seconds['bf16']:.2f} | "
          f"{seconds['fp32'] / seconds['bf16']:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
