"""The machine a run is on, as every measurement and study cost states it: the CPU model and
the bf16 instructions it has (what precision=auto reads)."""
from __future__ import annotations

import os
import platform


def cpuinfo(key: str) -> str:
    """The first `key` line of /proc/cpuinfo ('' where there is none, e.g. not Linux)."""
    try:
        with open("/proc/cpuinfo") as f:
            return next((line.split(":", 1)[1].strip() for line in f
                         if line.split(":", 1)[0].strip() == key), "")
    except OSError:
        return ""


# CPU flags (/proc/cpuinfo) of instructions that multiply bf16 natively, as cpu_description
# names them
NATIVE_BF16 = {"amx_bf16": "AMX-BF16", "avx512_bf16": "AVX-512 BF16"}


def native_bf16() -> list[str]:
    """The bf16 instructions of this CPU (NATIVE_BF16's names; none: bf16 is emulated)."""
    flags = set(cpuinfo("flags").split())
    return [name for flag, name in NATIVE_BF16.items() if flag in flags]


def cpu_description() -> str:
    """CPU model, its family and model numbers, its native bf16 instructions (what
    precision=auto reads) and its CPU count: the machine every measurement and study cost is
    stated for. The numbers tell apart CPUs sold under one name (two "AMD EPYC" of cloud
    machines ran one study's trials 1.65x apart), so that core-hours are compared only where
    they are the same machine's (analysis.search.history)."""
    model = cpuinfo("model name") or platform.processor() or "unknown CPU"
    numbers = [f"{key} {cpuinfo(key)}" for key in ("cpu family", "model") if cpuinfo(key)]
    details = ", ".join(numbers + [" and ".join(native_bf16()) or "no native bf16"])
    return f"{model} ({details}), {os.cpu_count()} CPUs"
