"""Sensors: ingest raw data when it arrives or changes, and raise an alert when a run fails.

``raw_data_sensor`` looks at ``data/raw/`` every 30 s (the logic is ``tuneforge.corpus.watch``). A new source
directory is registered as a partition of ``sources``; a source whose files were added, changed or removed gets one
``ingest_source`` run for its partition. Files modified less than ``settle_seconds`` ago hold their source back
until they stop changing; hidden and temporary files (``.*``, ``*.tmp``, ``*.part``) are ignored. The cursor keeps
each file's size, modification time and SHA-256, so unchanged or merely touched files never trigger a run.

``run_failure_alert`` sends every failed run of this code location (its error and failed steps) to the
``AlertNotifier``: a JSON line in ``logs/alerts.jsonl`` by default, or a shell command.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import dagster as dg
from pydantic import Field

from assets import sources
from pipelines.jobs import ingest_source_job
from resources import Workspace
from tuneforge.corpus.watch import DEFAULT_MAX_HASH_BYTES, DEFAULT_SETTLE_SECONDS, WatchState, diff, scan
from tuneforge.notify import Alert, CommandNotifier, LogFileNotifier, Notifier, NotifyError

if TYPE_CHECKING:
    from dagster_shared.error import SerializableErrorInfo

RAW_SENSOR_INTERVAL_SECONDS = 30
DEFAULT_ALERTS_PATH = "logs/alerts.jsonl"
# The last asset of ingest_source: a source whose partition of it is materialized counts as ingested at the first
# look (no cursor yet), so deploying the sensor does not re-ingest everything the demo already ingested.
INGESTED_ASSET = dg.AssetKey("cleaned_corpus")


class RawDataWatch(dg.ConfigurableResource):
    """Settings of ``raw_data_sensor``."""

    settle_seconds: float = Field(
        DEFAULT_SETTLE_SECONDS, ge=0,
        description="A file modified less than this long ago is still being written: its source waits.")
    max_hash_bytes: int = Field(
        DEFAULT_MAX_HASH_BYTES, gt=0,
        description="Bytes hashed per evaluation at most; further changed sources wait for the next one.")


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


@dg.sensor(
    job=ingest_source_job,
    minimum_interval_seconds=RAW_SENSOR_INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Registers new sources under data/raw/ and ingests a source when its files are added or change.",
)
def raw_data_sensor(
    context: dg.SensorEvaluationContext, workspace: Workspace, raw_watch: RawDataWatch
) -> dg.SensorResult:
    previous = WatchState.from_json(context.cursor)
    snapshot = scan(workspace.layout.raw, time.time(), raw_watch.settle_seconds)
    unrecorded = set(snapshot.files) - set(previous.files)
    up_to_date = _ingested_since_last_change(context.instance, snapshot, unrecorded)
    changes = diff(previous, snapshot, up_to_date=up_to_date, max_hash_bytes=raw_watch.max_hash_bytes)

    for source, why in changes.deferred.items():
        context.log.info(f"Source {source!r} waits: {why}")
    for name, why in changes.invalid.items():
        context.log.warning(f"Directory data/raw/{name} is not watched: {why}")
    for source in changes.vanished:
        context.log.info(f"Source {source!r} no longer has data files under data/raw/; its partition is kept.")
    for change in changes.changed:
        context.log.info(f"Ingesting {change.describe()}")

    registered = set(context.instance.get_dynamic_partitions(sources.name))
    new_partitions = [source for source in snapshot.settled_sources() if source not in registered]
    run_requests = [
        dg.RunRequest(run_key=change.run_key, partition_key=change.source,
                      tags={"tuneforge/trigger": "raw_data_sensor", "tuneforge/content": change.digest[:16]})
        for change in changes.changed
    ]
    skip_reason = None if run_requests else _skip_reason(changes.deferred, bool(new_partitions))
    return dg.SensorResult(
        run_requests=run_requests,
        skip_reason=skip_reason,
        cursor=changes.state.to_json(),
        dynamic_partitions_requests=[sources.build_add_request(new_partitions)] if new_partitions else [],
    )


def _ingested_since_last_change(instance: dg.DagsterInstance, snapshot, sources_: set[str]) -> set[str]:
    """Sources the cursor does not record yet (a first look, or files that were still settling) whose latest
    ingestion is newer than every one of their files: `make demo` ingested them, so they need no run."""
    fresh = set()
    for source in sources_:
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=INGESTED_ASSET, asset_partitions=[source]), limit=1).records
        newest_file_ns = max((stat.mtime_ns for stat in snapshot.files[source].values()), default=0)
        if records and records[0].timestamp * 1e9 >= newest_file_ns:
            fresh.add(source)
    return fresh


def _skip_reason(deferred: dict[str, str], registering: bool) -> str | None:
    if registering:
        return None  # the tick registers partitions: not a skip
    if deferred:
        return f"No settled changes; waiting for: {', '.join(deferred)}"
    return "No new or changed raw data"


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
