"""Raise an alert when a run fails.

``run_failure_alert`` sends every failed run of this code location (its error and failed steps) to the
``AlertNotifier``: a JSON line in ``logs/alerts.jsonl`` by default, or a shell command.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

import dagster as dg
from pydantic import Field

from resources import Workspace
from tuneforge.notify import Alert, CommandNotifier, LogFileNotifier, Notifier, NotifyError

if TYPE_CHECKING:
    from dagster_shared.error import SerializableErrorInfo

DEFAULT_ALERTS_PATH = "logs/alerts.jsonl"


class AlertNotifier(dg.ConfigurableResource):
    """Where run-failure alerts go: ``log`` appends JSON lines to ``path``; ``command`` pipes each alert's JSON
    to ``command`` (a shell command, such as a curl call to a webhook), and also appends it to ``path`` when the
    command fails, so no alert is lost."""

    kind: Literal["log", "command"] = Field("log", description="'log' (JSON lines file) or 'command' (shell).")
    path: str = Field(DEFAULT_ALERTS_PATH, description="The alerts file; a relative path is under the workspace root.")
    command: str = Field("", description="Shell command reading one alert as JSON on stdin (kind 'command').")
    timeout_seconds: float = Field(30.0, gt=0, description="How long the command may run.")

    def log_file(self, root: Path) -> LogFileNotifier:
        return LogFileNotifier(root / self.path)

    def notifier(self, root: Path) -> Notifier:
        if self.kind == "log":
            return self.log_file(root)
        if not self.command.strip():
            raise ValueError("AlertNotifier: kind is 'command' but 'command' is empty; set it to a shell command "
                             "reading the alert JSON on stdin, or use kind 'log'.")
        return CommandNotifier(self.command, self.timeout_seconds, cwd=root)


@dg.run_failure_sensor(
    name="run_failure_alert",
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Sends an alert (AlertNotifier) with the error and the failed steps of every failed run.",
)
def run_failure_alert(context: dg.RunFailureSensorContext, workspace: Workspace, alert_notifier: AlertNotifier) -> None:
    alert = failure_alert(context)
    root = workspace.layout.root
    try:
        alert_notifier.notifier(root).send(alert)
    except NotifyError as error:
        if alert_notifier.kind == "log":
            raise
        alert_notifier.log_file(root).send(alert)  # keep the alert; the raised error marks the tick as failed
        raise NotifyError(f"{error}; the alert was written to {root / alert_notifier.path} instead") from error
    context.log.info(f"Alert sent: {alert.summary}")


def failure_alert(context: dg.RunFailureSensorContext) -> Alert:
    """The alert for a failed run: the failed steps with their errors, else the run's own failure message."""
    run = context.dagster_run
    step_errors: dict[str, str] = {}
    for event in context.get_step_failure_events():
        error = getattr(event.event_specific_data, "error", None)
        step_errors[event.step_key or "?"] = _error_text(error) if error else (event.message or "step failed")
    run_error = getattr(context.failure_event.event_specific_data, "error", None)
    message = "\n".join(f"{step}: {text}" for step, text in step_errors.items()) or (
        _error_text(run_error) if run_error else context.failure_event.message or "the run failed")
    return Alert(run_id=run.run_id, job=run.job_name, error=message, failed_steps=list(step_errors),
                 step_errors=step_errors, partition=run.tags.get("dagster/partition"))


def _error_text(error: SerializableErrorInfo) -> str:
    """The error and its causes, outermost first, without stack traces or Dagster's wrappers around user errors
    (``DagsterExecutionStepExecutionError: Error occurred while executing op ...``)."""
    parts: list[str] = []
    current: SerializableErrorInfo | None = error
    while current is not None:
        wrapper = (current.cls_name or "").startswith("Dagster") and current.cause is not None
        if not wrapper and current.message.strip():
            parts.append(current.message.strip())
        current = current.cause or current.context
    return "; caused by: ".join(parts) or "no error message"
