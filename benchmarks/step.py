"""Time per distillation iteration: the compiled step against DC's eager per-class loop.

MNIST, ConvNet (128 wide, depth 3, instance norm), batch_real per class as DC (256), ipc 1
and ipc 10 (10 outer steps with 50 inner epochs between them). The FLOPs of one iteration
are counted with torch.utils.flop_counter on the reference step (convolutions and matrix
products, forward, backward and double backward); divided by the measured fp32 matrix rate
they give the floor that no implementation of the same arithmetic can beat here (in fp32).
`compiled bf16` runs the real-data gradients under bf16 autocast (the default only on AMX
CPUs).

    python benchmarks/step.py [--data-dir DIR] [--batch-real 256] [--repeats 5]
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from common import machine, matmul_gflops
from raygm.config import RunConfig
from raygm.data import load_dataset
from raygm.distill import Distillation


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
    parser.add_argument("--ipc", type=int, nargs="+", default=[1, 10])
    args = parser.parse_args()
    data = load_dataset("MNIST", args.data_dir, download=False)
    rate = matmul_gflops()
    print(f"{machine()}; fp32 matmul {rate:.0f} GFLOP/s; batch_real {args.batch_real}")
    print("| ipc | mode | median s / iteration | speed-up | GFLOP / iteration | floor s | "
          "floor / time |")
    print("|---|---|---|---|---|---|---|")
    for ipc in args.ipc:
        repeats = args.repeats if ipc == 1 else args.repeats_ipc10
        config = RunConfig(ipc=ipc, batch_real=args.batch_real, seed=0, precision="fp32")
        flops = iteration_flops(config, data)
        floor = flops / (rate * 1e9)
        medians = {}
        for mode, precision in (("eager", "fp32"), ("compiled", "fp32"), ("compiled", "bf16")):
            # ipc 1 warms up (compiles) once; ipc 10 reuses the compiled real-data graph
            name = mode if precision == "fp32" else f"{mode} {precision}"
            times = time_steps(config.replace(execution=mode, precision=precision), data,
                               repeats, warmup=1 if ipc == 1 else 0)
            medians[name] = statistics.median(times)
            print(f"| {ipc} | {name} | {medians[name]:.2f} | "
                  f"{medians['eager'] / medians[name]:.2f}x | {flops / 1e9:.0f} | "
                  f"{floor:.2f} | {floor / medians[name]:.2f} |", flush=True)


if __name__ == "__main__":
    main()
