"""What else the machine did during a measurement: these machines are shared, and a figure taken while other
processes used the CPUs is not comparable, so benchmarks record it beside each timing."""

from __future__ import annotations

import os
from pathlib import Path


class OtherCpu:
    """CPU seconds used by processes other than this one and its waited-for children, from /proc/stat."""

    def start(self) -> None:
        self._busy, self._ours = self._machine_busy(), self._our_cpu()

    def stop(self) -> float | None:
        busy = self._machine_busy()
        if busy is None or self._busy is None:
            return None
        return round(max(busy - self._busy - (self._our_cpu() - self._ours), 0.0), 1)

    @staticmethod
    def _machine_busy() -> float | None:
        try:
            fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        except OSError:
            return None
        return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")

    @staticmethod
    def _our_cpu() -> float:
        times = os.times()
        return times.user + times.system + times.children_user + times.children_system
