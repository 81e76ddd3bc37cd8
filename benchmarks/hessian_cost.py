"""Cost of the higher-order matching terms relative to none: time per outer step, peak memory.

MNIST, ConvNet, ipc 1 and 10; one outer step = per-class real and synthetic gradients, the
matching loss and one synthetic update (outer_loop=1, so no inner-loop training is timed).
Each mode runs in its own process so its peak memory can be read: on the CPU, the growth of
peak resident memory above what the loaded data and the synthetic set take.

    python benchmarks/hessian_cost.py [--batch-real 64] [--repeats 3] [--data-dir DIR]
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

MODES = [("none", "gauss_newton"), ("curvature", "gauss_newton"), ("curvature", "exact"),
         ("hvp", "gauss_newton")]


def measure(args) -> dict:
    import torch

    from raygm.core.config import RunConfig
    from raygm.core.data import load_dataset
    from raygm.core.distill import Distillation

    data = load_dataset("MNIST", args.data_dir, download=False)
    # eager for every mode: exact and hvp need the real side's double backward, which
    # compiled graphs lack, so only eager compares like with like
    config = RunConfig(ipc=args.ipc, outer_loop=1, batch_real=args.batch_real, seed=0,
                       execution="eager",
                       hessian=args.mode, hessian_weight=0.1 if args.mode != "none" else 0.0,
                       hessian_curvature=args.curvature, hessian_probes=args.probes)
    run = Distillation(config, data)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    run.step()  # warm-up
    if run.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        run.step()
        if run.device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    # CPU: growth of peak resident memory over what data, model and set already took
    peak = (torch.cuda.max_memory_allocated() / 2**20 if run.device.type == "cuda"
            else (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024)
    return {"seconds": statistics.median(times), "peak_mib": peak, "device": str(run.device),
            "threads": torch.get_num_threads()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir")
    parser.add_argument("--batch-real", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--probes", type=int, default=1)
    parser.add_argument("--ipcs", default="1,10")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--mode", default="none")
    parser.add_argument("--curvature", default="gauss_newton")
    parser.add_argument("--ipc", type=int, default=1)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args)))
        return
    rows = []
    for ipc in [int(i) for i in args.ipcs.split(",")]:
        for mode, curvature in MODES:
            cmd = [sys.executable, __file__, "--child", "--mode", mode, "--curvature", curvature,
                   "--ipc", str(ipc), "--batch-real", str(args.batch_real),
                   "--repeats", str(args.repeats), "--probes", str(args.probes)]
            if args.data_dir:
                cmd += ["--data-dir", args.data_dir]
            result = json.loads(subprocess.run(cmd, check=True, capture_output=True,
                                               text=True).stdout.strip().splitlines()[-1])
            rows.append({"ipc": ipc, "mode": mode if mode != "curvature" else
                         f"curvature ({curvature})", **result})
    print(f"MNIST ConvNet, batch_real {args.batch_real}, median of {args.repeats} outer steps, "
          f"device {rows[0]['device']}, {rows[0]['threads']} threads, hvp probes {args.probes}")
    print("| ipc | mode | s / outer step | × none | peak extra MiB | × none |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        base = next(r for r in rows if r["ipc"] == row["ipc"] and r["mode"] == "none")
        print(f"| {row['ipc']} | {row['mode']} | {row['seconds']:.2f} | "
              f"{row['seconds'] / base['seconds']:.2f} | {row['peak_mib']:.0f} | "
              f"{row['peak_mib'] / base['peak_mib']:.2f} |")


if __name__ == "__main__":
    main()
