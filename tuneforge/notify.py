"""Alerts about failed runs, and where they go.

An ``Alert`` is one JSON object. ``LogFileNotifier`` appends it as one line to a file (``logs/alerts.jsonl`` in the
workspace by default); ``CommandNotifier`` pipes it to a shell command's standard input, which is how a real
deployment reaches a chat or paging service, for example::

    curl -fsS -X POST -H 'Content-Type: application/json' --data-binary @- "$SLACK_WEBHOOK_URL"

(Slack's incoming webhooks want a ``text`` field: put ``jq '{text: .summary}' |`` in front.)
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

DEFAULT_COMMAND_TIMEOUT_SECONDS = 30.0
__all__ = ["Alert", "CommandNotifier", "LogFileNotifier", "NotifyError", "Notifier"]


class NotifyError(RuntimeError):
    """An alert that could not be delivered; the message says where and why."""


@dataclass(frozen=True)
class Alert:
    run_id: str
    job: str
    error: str
    failed_steps: list[str] = field(default_factory=list)
    step_errors: dict[str, str] = field(default_factory=dict)  # step key -> its error message
    partition: str | None = None
    time: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    @property
    def summary(self) -> str:
        """One line for a human: which run of which job failed, and why."""
        where = f" [{self.partition}]" if self.partition else ""
        steps = f" (failed steps: {', '.join(self.failed_steps)})" if self.failed_steps else ""
        first_line = self.error.strip().splitlines()[0] if self.error.strip() else "no error message"
        return f"Run {self.run_id} of {self.job}{where} failed{steps}: {first_line}"

    def as_dict(self) -> dict[str, Any]:
        return {"time": self.time, **{key: value for key, value in asdict(self).items() if key != "time"},
                "summary": self.summary}

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), ensure_ascii=False, sort_keys=False)


class Notifier(Protocol):
    def send(self, alert: Alert) -> None:
        """Deliver ``alert``; raise ``NotifyError`` when it cannot be."""
        ...


@dataclass(frozen=True)
class LogFileNotifier:
    """Appends one JSON line per alert to ``path`` (creating its directories)."""

    path: Path

    def send(self, alert: Alert) -> None:
        line = (alert.to_json() + "\n").encode("utf-8", "backslashreplace")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # One write on an O_APPEND descriptor: lines from concurrent senders do not interleave.
            descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(descriptor, line)
            finally:
                os.close(descriptor)
        except OSError as error:
            raise NotifyError(f"Cannot append the alert for run {alert.run_id} to {self.path}: {error}") from error


@dataclass(frozen=True)
class CommandNotifier:
    """Runs ``command`` in a shell with the alert's JSON on its standard input; a non-zero exit is an error."""

    command: str
    timeout_seconds: float = DEFAULT_COMMAND_TIMEOUT_SECONDS
    cwd: Path | None = None

    def __post_init__(self) -> None:
        if not self.command.strip():
            raise ValueError("CommandNotifier needs a command, such as a curl call posting stdin to a webhook")
        if self.timeout_seconds <= 0:
            raise ValueError(f"CommandNotifier timeout_seconds must be positive, got {self.timeout_seconds}")

    def send(self, alert: Alert) -> None:
        payload = alert.to_json().encode("utf-8", "backslashreplace")
        try:
            # A session of its own, so a timeout kills the whole pipeline (curl ... | ...), not only the shell.
            process = subprocess.Popen(self.command, shell=True, cwd=self.cwd, start_new_session=True,
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        except OSError as error:
            raise NotifyError(f"Cannot run alert command {self.command!r}: {error}") from error
        try:
            _, stderr = process.communicate(payload, timeout=self.timeout_seconds)
        except subprocess.TimeoutExpired as error:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            raise NotifyError(f"Alert command {self.command!r} did not finish within {self.timeout_seconds:g} s "
                              f"(alert for run {alert.run_id})") from error
        if process.returncode != 0:
            detail = stderr.decode("utf-8", "replace").strip()[-500:]
            raise NotifyError(f"Alert command {self.command!r} exited with status {process.returncode} "
                              f"(alert for run {alert.run_id}): {detail or 'no error output'}")
