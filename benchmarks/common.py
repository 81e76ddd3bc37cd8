"""Shared by the benchmarks: the machine's measured matrix rate and a description of it."""
from __future__ import annotations

import time

import torch

from raygm.core.machine import cpu_description
from raygm.core.matching import resolve_precision


def matmul_gflops(n: int = 2048, repeats: int = 10, device: str = "cpu") -> float:
    """Best fp32 matrix-multiply rate of this machine (or GPU), in GFLOP/s (n x n @ n x n;
    TF32 as the process has it set)."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        a @ b
        sync(device)
        best = min(best, time.perf_counter() - start)
    return 2 * n ** 3 / best / 1e9


def sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def machine(device: str = "cpu") -> str:
    where = torch.cuda.get_device_name(device) if torch.device(device).type == "cuda" else \
        f"{cpu_description()}, {torch.get_num_threads()} torch threads"
    return f"{where}, torch {torch.__version__}"


def mode_config(config, mode: str):
    """config in a benchmark mode: execution, then levers or a precision (bf16, or auto:
    the default's choice for this machine) joined by +, e.g. compiled+batched_classes+tf32
    (fp32 unless a precision is named)."""
    execution, *rest = mode.split("+")
    precisions = [r for r in rest if r in ("bf16", "auto")]
    levers = tuple(r for r in rest if r not in precisions)
    return config.replace(execution=execution, levers=levers or None,
                          precision=precisions[0] if precisions else "fp32")


def mode_name(mode: str, device: str = "cpu") -> str:
    """The mode as a table shows it: auto with what it resolves to here, e.g.
    compiled+auto (bf16)."""
    if "auto" not in mode.split("+"):
        return mode
    return f"{mode} ({resolve_precision('auto', torch.device(device))})"
