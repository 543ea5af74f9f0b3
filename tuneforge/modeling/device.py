"""Pick the device and precision: a GPU when present, bf16 wherever the hardware multiplies it natively."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import torch


def pick_device() -> torch.device:
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


@cache
def cpu_has_bf16() -> bool:
    """True on CPUs with native bf16 matrix units (AVX512-BF16 or AMX), where bf16 autocast is a large speed-up."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def use_bf16(device: torch.device, precision: str = "auto") -> bool:
    if precision != "auto":
        return precision == "bf16"
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return cpu_has_bf16()


def autocast(device: torch.device, bf16: bool) -> torch.autocast:
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16)
