"""Pick the device and precision: a GPU when present; bf16 where it is supported and actually faster.

A CPU flag is not enough: CPUs with AVX512-BF16 but no AMX (this project's CI machines, for one) multiply bf16 at
about half their fp32 speed, while AMX or Zen 4 parts run it several times faster. So on a CPU the choice is
measured once per process with a small matmul.
"""

from __future__ import annotations

import time
from functools import cache
from pathlib import Path

import torch

# bf16 must beat fp32 by this factor to be chosen: near a tie, processes timing on a noisy machine could disagree,
# and bf16 costs accuracy.
BF16_MIN_SPEEDUP = 1.3


def pick_device() -> torch.device:
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


@cache
def cpu_has_bf16() -> bool:
    """True when the CPU advertises native bf16 arithmetic (AVX512-BF16 or AMX)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def matmul_flops_per_second(dtypes: tuple[torch.dtype, ...], size: int = 1024, repeat: int = 7) -> list[float]:
    """Median FLOP/s of a ``size``² matmul on the CPU in each dtype, timed interleaved so that load from other
    processes hits every dtype alike."""
    pairs = [(torch.randn(size, size).to(dtype), torch.randn(size, size).to(dtype)) for dtype in dtypes]
    timings: list[list[float]] = [[] for _ in dtypes]
    for round_ in range(repeat + 1):
        for (a, b), times in zip(pairs, timings, strict=True):
            start = time.perf_counter()
            a @ b
            if round_:  # round 0 warms the kernels up
                times.append(time.perf_counter() - start)
    return [2 * size**3 / sorted(times)[len(times) // 2] for times in timings]


@cache
def cpu_bf16_is_faster() -> bool:
    if not cpu_has_bf16():
        return False
    fp32, bf16 = matmul_flops_per_second((torch.float32, torch.bfloat16))
    return bf16 > BF16_MIN_SPEEDUP * fp32


def use_bf16(device: torch.device, precision: str = "auto") -> bool:
    if precision != "auto":
        return precision == "bf16"
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return cpu_bf16_is_faster()


def autocast(device: torch.device, bf16: bool) -> torch.autocast:
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16)
