"""Shared by the benchmarks: the machine's measured matrix rate and a description of it."""
from __future__ import annotations

import time

import torch

from raygm.matching import cpu_description


def matmul_gflops(n: int = 2048, repeats: int = 10) -> float:
    """Best fp32 matrix-multiply rate of this machine, in GFLOP/s (n x n @ n x n)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * n ** 3 / best / 1e9


def machine() -> str:
    return f"{cpu_description()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}"
