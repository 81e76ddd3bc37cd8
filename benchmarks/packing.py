"""Trials packed on one GPU, without Ray: N concurrent `raygm distill` processes, each capped
at 1/N of the GPU's memory and compiling into its own cache, and their aggregate
distillation iterations per second against one process alone, with the GPU's utilisation
(nvidia-smi) meanwhile.

Each process distills MNIST ipc 1 with no evaluation for as long as it is measured. Slot i
keeps its compile cache across N (a copy of slot 0's, warmed first), so that the window
measures stepping, not compiling. The window opens once every process has done --warmup
iterations and lasts --seconds; a process's iterations are the rows of its metrics.csv.

    python benchmarks/packing.py [--data-dir DIR] [--procs 1 2 4 8] [--seconds 20]
        [--device cuda] [--mode compiled+batched_classes] [--width 128]
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from common import machine

REPO = Path(__file__).resolve().parents[1]


def iterations_done(out: Path) -> int:
    try:
        return max(0, len((out / "metrics.csv").read_text().splitlines()) - 1)
    except FileNotFoundError:
        return 0


def gpu_utilisation(samples: list[float], stop: threading.Event) -> None:
    """nvidia-smi's utilisation.gpu every 0.2 s until stop (nothing where there is none)."""
    while not stop.is_set():
        try:
            out = subprocess.run(["nvidia-smi", "--query-gpu=utilization.gpu",
                                  "--format=csv,noheader,nounits"], capture_output=True,
                                 text=True, timeout=5).stdout
            samples.append(float(out.split()[0]))
        except (OSError, ValueError, IndexError, subprocess.SubprocessError):
            return
        stop.wait(0.2)


def launch(slot: int, name: str, n: int, args, work: Path) -> tuple[subprocess.Popen, Path]:
    out = work / f"{name}_slot{slot}"
    cache = work / f"cache{slot}"
    if not cache.exists() and (work / "cache0").exists():
        shutil.copytree(work / "cache0", cache)
    execution, *levers = args.mode.split("+")
    command = [sys.executable, "-m", "raygm.cli", "distill", "--out", str(out),
               "--device", args.device, "--iterations", "1000000", "--eval-models", "0",
               "--execution", execution, "--seed", str(slot), "--precision", "fp32",
               "--net-width", str(args.width), "--batch-real", str(args.batch_real)]
    if levers:
        command += ["--levers", ",".join(levers)]
    if args.device != "cpu":
        command += ["--gpu-memory-fraction", str(round(1 / n, 4))]
    if args.data_dir:
        command += ["--data-dir", args.data_dir]
    env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": str(cache / "inductor"),
           "TRITON_CACHE_DIR": str(cache / "triton"), "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                               stderr=open(work / f"{name}_slot{slot}.log", "w"))
    return process, out


def measure(n: int, args, work: Path, name: str) -> tuple[float, list[float]]:
    """Aggregate iterations per second of n concurrent processes, and GPU utilisation
    samples over the window."""
    runs = [launch(slot, name, n, args, work) for slot in range(n)]
    try:
        deadline = time.monotonic() + args.startup
        while min(iterations_done(out) for _, out in runs) < args.warmup:
            if any(p.poll() is not None for p, _ in runs):
                raise RuntimeError(f"a process of {n} stopped: " +
                                   (work / f"{name}_slot0.log").read_text()[-2000:])
            if time.monotonic() > deadline:
                raise TimeoutError(f"{n} processes: not all warmed up in {args.startup} s")
            time.sleep(0.2)
        samples, stop = [], threading.Event()
        sampler = threading.Thread(target=gpu_utilisation, args=(samples, stop))
        before, start = [iterations_done(out) for _, out in runs], time.monotonic()
        sampler.start()
        time.sleep(args.seconds)
        after, elapsed = [iterations_done(out) for _, out in runs], time.monotonic() - start
        stop.set()
        sampler.join()
        if any(p.poll() is not None for p, _ in runs):
            raise RuntimeError(f"a process of {n} stopped during the window")
        return (sum(after) - sum(before)) / elapsed, samples
    finally:
        for process, _ in runs:
            process.kill()
            process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir")
    parser.add_argument("--procs", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--warmup", type=int, default=3, help="iterations before the window")
    parser.add_argument("--startup", type=float, default=300,
                        help="seconds allowed for starting and warming up")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--mode", default="compiled", help="execution+levers")
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--batch-real", type=int, default=256)
    args = parser.parse_args()
    print(f"{machine(args.device)}; {args.mode}, MNIST ipc 1, batch_real {args.batch_real}, "
          f"window {args.seconds:.0f} s after {args.warmup} iterations")
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        measure(1, args, work, "warm")  # warms slot 0's compile cache, which the other slots copy
        print("| processes | aggregate it/s | vs one | GPU utilisation % (mean, max) |")
        print("|---|---|---|---|")
        alone = None
        for n in args.procs:
            rate, samples = measure(n, args, work, f"n{n}")
            alone = alone or rate
            use = (f"{sum(samples) / len(samples):.0f}, {max(samples):.0f}" if samples
                   else "n/a (no nvidia-smi)")
            print(f"| {n} | {rate:.2f} | {rate / alone:.2f}x | {use} |", flush=True)


if __name__ == "__main__":
    main()
