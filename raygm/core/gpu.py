"""Running on a GPU: the speed levers for launch-bound work, and what a process that shares
one GPU with others must do and report.

At ipc 1 a step works on 10 synthetic images and 10 small real batches, and an evaluation
network trains on 10 images for 1000 epochs: on a GPU such work waits on kernel launches,
not arithmetic. Each lever does the default path's arithmetic in fewer launches (the tests
check it gives the same losses, updates and networks to float32 rounding); BENCHMARKS.md's
GPU section says which ones measured faster on which device. A process sharing a GPU caps
its memory at its share, and compiles into a cache of its own: several processes compiling
into one inductor/Triton cache is a known race.
"""
from __future__ import annotations

import math
import os
import tempfile

import torch

from .choices import Choices
from .machine import cpu_description

LEVERS = Choices("lever", {
    "batched_classes": "all classes' real and synthetic gradients in one vmapped call "
                       "(torch.func) instead of one pass per class",
    "stacked_eval": "an evaluation's networks trained together as one vmapped network "
                    "(torch.func.stack_module_state); networks with BatchNorm still train "
                    "one by one",
    "cuda_graphs": "compiled networks replayed as CUDA graphs (torch.compile's "
                   "reduce-overhead mode; on a CPU the same as compiled)",
    "tf32": "TF32 matrix products and convolutions on CUDA (10-bit mantissa inputs)",
})


def prepare(device: torch.device, levers: tuple[str, ...],
            memory_fraction: float | None) -> None:
    """Process-wide settings for a run on `device`, before anything is compiled or allocated."""
    if device.type != "cuda":
        return
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = "tf32" in levers
    if memory_fraction is not None:
        torch.cuda.set_per_process_memory_fraction(memory_fraction, device)
    own_compile_cache()


def to_device(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A CPU tensor (random indices, augmentation parameters) on `device` without waiting
    for the GPU: a copy from pageable memory waits for the GPU's queue to drain, one from
    pinned memory does not."""
    if device.type != "cuda":
        return tensor.to(device)
    return tensor.pin_memory().to(device, non_blocking=True)


def memory_share(gpus: float) -> float | None:
    """The memory fraction of a process given `gpus` GPUs by Ray (0.25: a quarter of one);
    None (no cap) with a whole GPU or more, or none."""
    return gpus if 0 < gpus < 1 else None


def own_compile_cache(root: str | None = None) -> str:
    """Point inductor's and Triton's caches at a folder of this process's own (unless the
    user chose them): processes sharing a GPU compile concurrently."""
    folder = os.path.join(root or tempfile.gettempdir(), f"raygm-compile-{os.getpid()}")
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", os.path.join(folder, "inductor"))
    os.environ.setdefault("TRITON_CACHE_DIR", os.path.join(folder, "triton"))
    return folder


def device_name(device: torch.device) -> str:
    """What a run reports about where it ran: the GPU's name, or the CPU's description."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return cpu_description()


def memory_cap_gb(device: torch.device, fraction: float | None) -> float:
    """The GPU memory this process may take, in GiB (NaN on a CPU)."""
    if device.type != "cuda":
        return math.nan
    total = torch.cuda.get_device_properties(device).total_memory
    return total * (fraction if fraction is not None else 1.0) / 2 ** 30


def peak_memory_mb(device: torch.device) -> float:
    """The most GPU memory this process has held in tensors so far, in MiB (NaN on a CPU)."""
    if device.type != "cuda":
        return math.nan
    return torch.cuda.max_memory_allocated(device) / 2 ** 20
