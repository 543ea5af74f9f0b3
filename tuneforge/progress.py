"""Throttled progress lines for long steps: done/total, rate and ETA, at most one line every ``every`` seconds."""

from __future__ import annotations

import time
from collections.abc import Callable


class Progress:
    def __init__(self, log: Callable[[str], None], what: str, total: int | None, unit: str = "rows",
                 every: float = 10.0) -> None:
        self._log, self._what, self._total, self._unit, self._every = log, what, total, unit, every
        self._start = self._last = time.monotonic()

    def __call__(self, done: int) -> None:
        now = time.monotonic()
        if now - self._last < self._every and done != self._total:
            return
        self._last = now
        rate = done / max(now - self._start, 1e-9)
        if self._total:
            eta = (self._total - done) / rate if rate else float("inf")
            self._log(f"{self._what}: {done:,}/{self._total:,} {self._unit} ({done / self._total:.0%}), "
                      f"{rate:,.0f} {self._unit}/s, ETA {eta:.0f}s")
        else:
            self._log(f"{self._what}: {done:,} {self._unit}, {rate:,.0f} {self._unit}/s")
