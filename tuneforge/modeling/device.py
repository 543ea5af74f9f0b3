"""Pick the device and precision: a GPU when present; bf16 where it is supported and actually faster.

A CPU flag is not enough: CPUs with AVX512-BF16 but no AMX multiply bf16 at about half their fp32 speed, while AMX
or Zen 4 parts run it twice as fast or more. So on a CPU ``auto`` is measured with a small matmul, once per machine:
the verdict is cached under ``$XDG_CACHE_HOME/tuneforge`` keyed by the CPU model, its flags, the thread count and
the torch version, so every process on the machine (the asset, a training subprocess, each data-parallel rank)
makes the same choice instead of timing on a noisy machine and perhaps disagreeing.

``TUNEFORGE_PRECISION`` (``auto``, ``bf16``, ``fp32``) overrides the configured training precision at every entry
point (the assets, the trainer run standalone, each data-parallel rank). Generation for evaluation has its own
setting, fp32 by default: there batched greedy outputs equal one-by-one outputs, so scores do not depend on the
batch size.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import time
from functools import cache
from pathlib import Path
from typing import Literal

import torch

from tuneforge.atomic import write_text_atomically
from tuneforge.layout import user_cache_dir
from tuneforge.project import PRECISION_ENV_VAR

PRECISIONS = ("auto", "bf16", "fp32")
Precision = Literal["auto", "bf16", "fp32"]
Resolved = Literal["bf16", "fp32"]
# bf16 must beat fp32 by this factor to be chosen: near a tie bf16 only costs accuracy.
BF16_MIN_SPEEDUP = 1.3
CACHE_FILE = "precision.json"


def pick_device() -> torch.device:
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def requested_precision(configured: str) -> str:
    """The configured precision, unless ``TUNEFORGE_PRECISION`` overrides it."""
    override = os.environ.get(PRECISION_ENV_VAR, "").strip()
    if not override:
        return configured
    if override not in PRECISIONS:
        raise ValueError(f"{PRECISION_ENV_VAR}={override!r} is not a precision; use one of: {', '.join(PRECISIONS)}")
    return override


def training_precision(configured: str, device: torch.device | None = None) -> Resolved:
    """The precision a training configured with ``configured`` runs in: ``TUNEFORGE_PRECISION`` first."""
    return resolve_precision(requested_precision(configured), device)


def resolve_precision(precision: str, device: torch.device | None = None) -> Resolved:
    """``bf16`` or ``fp32``, with ``auto`` decided for ``device`` (this machine's default device when None)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r} is not one of: {', '.join(PRECISIONS)}")
    if precision != "auto":
        return precision  # type: ignore[return-value]
    device = device or pick_device()
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if cpu_bf16_is_faster() else "fp32"


def use_bf16(device: torch.device, precision: str = "auto") -> bool:
    return resolve_precision(precision, device) == "bf16"


def autocast(device: torch.device, bf16: bool) -> torch.autocast:
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16)


def cpu_model() -> tuple[str, frozenset[str]]:
    """The CPU's model name and flags, from /proc/cpuinfo (empty where there is none)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor(), frozenset()
    fields = dict(line.split(":", 1) for line in text.splitlines()[:40] if ":" in line)
    fields = {key.strip(): value.strip() for key, value in fields.items()}
    return fields.get("model name", platform.processor()), frozenset(fields.get("flags", "").split())


def cpu_has_bf16() -> bool:
    """True when the CPU advertises native bf16 arithmetic (AVX512-BF16 or AMX)."""
    _, flags = cpu_model()
    return bool({"avx512_bf16", "amx_bf16"} & flags)


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


def machine_key() -> str:
    """What a CPU precision verdict depends on: the CPU, its flags, the threads torch uses and torch itself."""
    name, flags = cpu_model()
    identity = [name, sorted(flags), torch.get_num_threads(), torch.__version__, platform.machine()]
    return hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:16]


def cache_path() -> Path:
    return user_cache_dir() / CACHE_FILE


@cache
def cpu_bf16_is_faster() -> bool:
    """Whether bf16 matmuls beat fp32 by ``BF16_MIN_SPEEDUP`` on this CPU: measured once per machine, then read from
    the cache file."""
    if not cpu_has_bf16():
        return False
    key, path = machine_key(), cache_path()
    verdicts = _read_verdicts(path)
    if key in verdicts:
        return bool(verdicts[key]["bf16"])
    fp32, bf16 = matmul_flops_per_second((torch.float32, torch.bfloat16))
    verdicts[key] = {
        "bf16": bf16 > BF16_MIN_SPEEDUP * fp32, "fp32_gflops": round(fp32 / 1e9, 1),
        "bf16_gflops": round(bf16 / 1e9, 1), "cpu": cpu_model()[0], "torch": torch.__version__,
        "threads": torch.get_num_threads(), "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    with contextlib.suppress(OSError):  # a read-only home only costs a measurement per process
        write_text_atomically(path, json.dumps(verdicts, indent=2) + "\n")
    return bool(verdicts[key]["bf16"])


def _read_verdicts(path: Path) -> dict[str, dict]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
