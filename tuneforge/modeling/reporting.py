"""Where a training run reports to: the console, the Dagster run (directly or through Pipes), MLflow.

The trainer calls every reporter on rank 0 only, so N data-parallel processes report once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from tuneforge.modeling.records import TrainingResult


class Reporter(Protocol):
    def log(self, message: str) -> None: ...

    def metrics(self, step: int, values: dict[str, float]) -> None:
        """Per-step figures: train/loss, train/learning_rate, train/tokens_per_second, validation/loss, ..."""

    def finish(self, result: TrainingResult) -> None:
        """Called once with the final result, after the adapter is written."""

    def fail(self, error: BaseException) -> None:
        """Called instead of ``finish`` when training raises."""


class LogReporter:
    """Log lines to any callable (``print``, ``context.log.info``); metrics are already in the step lines."""

    def __init__(self, log: Callable[[str], None] = print) -> None:
        self._log = log

    def log(self, message: str) -> None:
        self._log(message)

    def metrics(self, step: int, values: dict[str, float]) -> None:
        pass

    def finish(self, result: TrainingResult) -> None:
        pass

    def fail(self, error: BaseException) -> None:
        self._log(f"training failed: {error}")


class Fanout:
    """Several reporters as one."""

    def __init__(self, reporters: Sequence[Reporter]) -> None:
        self._reporters = list(reporters)

    def log(self, message: str) -> None:
        for reporter in self._reporters:
            reporter.log(message)

    def metrics(self, step: int, values: dict[str, float]) -> None:
        for reporter in self._reporters:
            reporter.metrics(step, values)

    def finish(self, result: TrainingResult) -> None:
        for reporter in self._reporters:
            reporter.finish(result)

    def fail(self, error: BaseException) -> None:
        for reporter in self._reporters:
            reporter.fail(error)


class PipesReporter:
    """Streams log lines and metrics into the Dagster run that launched this process through Pipes."""

    def __init__(self, pipes) -> None:  # a dagster_pipes.PipesContext
        self._pipes = pipes

    def log(self, message: str) -> None:
        self._pipes.log.info(message)

    def metrics(self, step: int, values: dict[str, float]) -> None:
        self._pipes.report_custom_message({"step": step, **values})

    def finish(self, result: TrainingResult) -> None:
        self._pipes.report_custom_message({"finished": True, "adapter_dir": result.adapter_dir,
                                           "validation_loss": result.validation_loss})

    def fail(self, error: BaseException) -> None:
        self._pipes.log.error(f"training failed: {error}")
