"""Time per distillation iteration: the compiled step against DC's eager per-class loop.

MNIST, ConvNet (128 wide, depth 3, instance norm), batch_real per class as DC (256), ipc 1
and ipc 10 (10 outer steps with 50 inner epochs between them). The FLOPs of one iteration
are counted with torch.utils.flop_counter on the reference step (convolutions and matrix
products, forward, backward and double backward); divided by the measured fp32 matrix rate
they give the floor that no implementation of the same arithmetic can beat here (in fp32).
`compiled+bf16` runs the real-data gradients under bf16 autocast (`precision: auto`'s
choice on CPUs with AVX-512 BF16 or AMX). On a GPU (--device cuda) the modes name the levers of raygm/core/gpu.py, e.g.
compiled+batched_classes+cuda_graphs+tf32; the first mode is the reference of the speed-ups.

    python benchmarks/step.py [--data-dir DIR] [--batch-real 256] [--repeats 5]
        [--device cuda] [--modes eager compiled compiled+batched_classes ...]
"""
from __future__ import annotations

import argparse
import statistics
import time

from torch.utils.flop_counter import FlopCounterMode

from common import machine, matmul_gflops, mode_config, mode_name
from raygm.core.config import RunConfig
from raygm.core.data import load_dataset
from raygm.core.distill import Distillation


def iteration_flops(config: RunConfig, data) -> float:
    run = Distillation(config.replace(execution="eager"), data)
    with FlopCounterMode(display=False) as counter:
        run.step()
    return counter.get_total_flops()


def time_steps(config: RunConfig, data, steps: int, warmup: int) -> list[float]:
    run = Distillation(config, data)
    for _ in range(warmup):
        run.step()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        run.step()
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir")
    parser.add_argument("--batch-real", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5, help="timed iterations at ipc 1")
    parser.add_argument("--repeats-ipc10", type=int, default=1)
    parser.add_argument("--warmup-ipc10", type=int, default=0,
                        help="untimed iterations at ipc 10 (0: it reuses ipc 1's compiled "
                             "graphs; a mode not run at ipc 1 needs 1)")
    parser.add_argument("--ipc", type=int, nargs="+", default=[1, 10])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--modes", nargs="+", default=["eager", "compiled", "compiled+auto"],
                        help="execution+levers (+bf16, +auto: the default precision here); "
                             "the first is the reference")
    parser.add_argument("--width", type=int, default=128, help="ConvNet width (small: a dry run)")
    args = parser.parse_args()
    data = load_dataset("MNIST", args.data_dir, download=False)
    rate = matmul_gflops(device=args.device)
    print(f"{machine(args.device)}; fp32 matmul {rate:.0f} GFLOP/s; batch_real {args.batch_real}")
    print("| ipc | mode | median s / iteration | speed-up | GFLOP / iteration | floor s | "
          "floor / time |")
    print("|---|---|---|---|---|---|---|")
    for ipc in args.ipc:
        repeats = args.repeats if ipc == 1 else args.repeats_ipc10
        config = RunConfig(ipc=ipc, batch_real=args.batch_real, seed=0, precision="fp32",
                           device=args.device, net_width=args.width)
        flops = iteration_flops(config, data)
        floor = flops / (rate * 1e9)
        medians = {}
        for mode in args.modes:
            times = time_steps(mode_config(config, mode), data, repeats,
                               warmup=1 if ipc == 1 else args.warmup_ipc10)
            medians[mode] = statistics.median(times)
            print(f"| {ipc} | {mode_name(mode, args.device)} | {medians[mode]:.3f} | "
                  f"{medians[args.modes[0]] / medians[mode]:.2f}x | {flops / 1e9:.0f} | "
                  f"{floor:.3f} | {floor / medians[mode]:.2f} |", flush=True)


if __name__ == "__main__":
    main()
