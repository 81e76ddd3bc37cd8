"""Where a distillation iteration's time goes, per operator (torch.profiler), for the modes
of benchmarks/step.py: MNIST, ConvNet, ipc 1, batch_real per class as DC (256).

Prints, per mode, the iteration's wall time under the profiler and the operators with the
most self CPU time (convolution forward/backward, normalisation, casts to and from bf16, ...),
so that the eager reference, compiled fp32 and the default (compiled + auto) can be compared
operator by operator.

    python benchmarks/profile_step.py [--batch-real 256] [--modes eager compiled+auto] [--top 15]
"""
from __future__ import annotations

import argparse
import time

from torch.profiler import ProfilerActivity, profile

from common import machine, mode_config, mode_name
from raygm.core.config import RunConfig
from raygm.core.data import load_dataset
from raygm.core.distill import Distillation


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir")
    parser.add_argument("--batch-real", type=int, default=256)
    parser.add_argument("--modes", nargs="+", default=["eager", "compiled", "compiled+auto"])
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    data = load_dataset("MNIST", args.data_dir, download=False)
    print(f"{machine()}; batch_real {args.batch_real}")
    config = RunConfig(ipc=1, batch_real=args.batch_real, seed=0)
    for mode in args.modes:
        run = Distillation(mode_config(config, mode), data)
        run.step()  # compilation and first-call costs stay out of the profile
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            start = time.perf_counter()
            run.step()
            seconds = time.perf_counter() - start
        print(f"\n### {mode_name(mode)}: {seconds:.2f} s (one iteration, under the profiler)\n")
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.top,
                                        max_name_column_width=60))


if __name__ == "__main__":
    main()
