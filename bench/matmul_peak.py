"""This machine's matrix-multiply peak, per precision: the denominator of model-FLOPs utilization (MFU).

A square ``n × n`` matmul (2n³ floating-point operations) in fp32 and in bf16 (bf16 inputs and output, the kernel
autocast runs a linear layer on), timed ``repeats`` times each after a warm-up, with torch's default thread count.
The two precisions alternate, so a burst of load from other processes slows both alike. The median GFLOP/s is the
peak of that precision. 2048² runs at the BLAS library's best speed and takes well under a second.

Usage: ``python -m bench.matmul_peak [--size 2048] [--repeats 20]``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def matmul_peaks(size: int = 2048, repeats: int = 20) -> dict[str, dict[str, float]]:
    """``{"fp32": {"median_gflops", "best_gflops", ...}, "bf16": {...}}`` of ``size``² matmuls."""
    if size < 1 or repeats < 1:
        raise ValueError(f"matmul peak: size ({size}) and repeats ({repeats}) must be positive")
    generator = torch.Generator().manual_seed(0)
    operands = {}
    for name, dtype in DTYPES.items():
        a = torch.randn(size, size, generator=generator).to(dtype)
        b = torch.randn(size, size, generator=generator).to(dtype)
        operands[name] = (a, b, torch.empty(size, size, dtype=dtype))
        for _ in range(3):  # warm-up: thread pool, kernel selection
            torch.matmul(a, b, out=operands[name][2])
    seconds: dict[str, list[float]] = {name: [] for name in DTYPES}
    for _ in range(repeats):
        for name, (a, b, out) in operands.items():
            started = time.perf_counter()
            torch.matmul(a, b, out=out)
            seconds[name].append(time.perf_counter() - started)
    flops = 2.0 * size**3
    return {
        name: {"median_gflops": round(flops / statistics.median(times) / 1e9, 1),
               "best_gflops": round(flops / min(times) / 1e9, 1),
               "size": size, "repeats": repeats, "threads": torch.get_num_threads()}
        for name, times in seconds.items()
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Median GFLOP/s of square matmuls in fp32 and bf16.")
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args(argv)
    for name, peak in matmul_peaks(args.size, args.repeats).items():
        print(f"{name}: {args.size}² matmul median {peak['median_gflops']:.1f} GFLOP/s "
              f"(best {peak['best_gflops']:.1f}), {peak['threads']} threads")


if __name__ == "__main__":
    main()
