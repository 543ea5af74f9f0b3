"""Ingest raw data when it arrives or changes.

``raw_data_sensor`` looks at ``data/raw/`` every 30 s (the logic is ``tuneforge.corpus.watch``). A new source
directory is registered as a partition of ``sources``; a source whose files were added, changed or removed gets one
``ingest_source`` run for its partition. Files modified less than ``settle_seconds`` ago hold their source back
until they stop changing; hidden and temporary files (``.*``, ``*.tmp``, ``*.part``) are ignored. The cursor keeps
each file's size, modification time and SHA-256, so unchanged or merely touched files never trigger a run.
"""

from __future__ import annotations

import time

import dagster as dg
from pydantic import Field

from resources import Workspace
from stages.data.assets import cleaned_corpus, sources
from stages.data.jobs import ingest_source_job
from stages.names import CONTENT_TAG, TRIGGER_TAG
from tuneforge.corpus.watch import DEFAULT_MAX_HASH_BYTES, DEFAULT_SETTLE_SECONDS, WatchState, diff, scan

RAW_SENSOR_INTERVAL_SECONDS = 30
# The last asset of ingest_source: a source whose partition of it is materialized counts as ingested at the first
# look (no cursor yet), so deploying the sensor does not re-ingest everything the demo already ingested.
INGESTED_ASSET = cleaned_corpus.key


class RawDataWatch(dg.ConfigurableResource):
    """Settings of ``raw_data_sensor``."""

    settle_seconds: float = Field(
        DEFAULT_SETTLE_SECONDS, ge=0,
        description="A file modified less than this long ago is still being written: its source waits.")
    max_hash_bytes: int = Field(
        DEFAULT_MAX_HASH_BYTES, gt=0,
        description="Bytes hashed per evaluation at most; further changed sources wait for the next one.")


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
                      tags={TRIGGER_TAG: "raw_data_sensor", CONTENT_TAG: change.digest[:16]})
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
