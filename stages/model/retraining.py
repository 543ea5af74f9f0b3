"""Retrain when a new curated dataset brings enough new training rows: a new version with a handful of extra rows is
not worth a training run (the weekly schedule picks those up). And retrain every week: ``build_weekly_retrain``, which
``stages.definitions`` builds in the project's time zone.

Both start RUNNING and retrain ``RETRAIN_EXPERIMENT``; while its partition of ``experiments`` is not registered, a tick
is skipped with a message saying so (a run request for an unknown partition would fail the tick).
"""

from datetime import datetime

import dagster as dg

from resources import Workspace
from stages.data.assets import CURATED_SUITE, curated_dataset
from stages.model.assets import experiments, lora_adapter
from stages.model.jobs import model_lifecycle_job, train_experiment_job
from stages.names import NEW_TRAINING_ROWS_TAG, SCHEDULED_FOR_TAG, TRIGGER_TAG
from tuneforge.experiments import DEFAULT_EXPERIMENT

RETRAIN_EXPERIMENT = DEFAULT_EXPERIMENT
WEEKLY_RETRAIN_CRON = "0 3 * * 0"  # Sundays at 03:00
RECENT_CHECKS = 20


def experiment_missing(instance: dg.DagsterInstance, experiment: str) -> dg.SkipReason | None:
    if instance.has_dynamic_partition(experiments.name, experiment):
        return None
    return dg.SkipReason(
        f"the experiment partition {experiment!r} of {experiments.name!r} is not registered, so "
        f"{model_lifecycle_job.name} cannot run for it; register it (`tuneforge experiments sync`, or 'add partition' "
        "in the UI) and the next tick runs"
    )


def build_weekly_retrain(
    cron: str = WEEKLY_RETRAIN_CRON, timezone: str = "UTC", experiment: str = RETRAIN_EXPERIMENT
) -> dg.ScheduleDefinition:
    @dg.schedule(
        cron_schedule=cron,
        job_name=model_lifecycle_job.name,
        name="weekly_retrain",
        execution_timezone=timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"Retrain, evaluate and (if it passes the gate) promote experiment {experiment!r} every week.",
    )
    def weekly_retrain(context: dg.ScheduleEvaluationContext):
        skip = experiment_missing(context.instance, experiment)
        if skip:
            return skip
        scheduled: datetime = context.scheduled_execution_time
        return dg.RunRequest(
            run_key=f"weekly-retrain-{scheduled.isoformat()}",
            partition_key=experiment,
            tags={TRIGGER_TAG: "weekly_retrain", SCHEDULED_FOR_TAG: scheduled.isoformat()},
        )

    return weekly_retrain


def _latest(instance: dg.DagsterInstance, key: dg.AssetKey, partition: str | None = None):
    records_filter = dg.AssetRecordsFilter(asset_key=key, asset_partitions=[partition] if partition else None)
    records = instance.fetch_materializations(records_filter, limit=1).records
    return records[0] if records else None


def _check_status(instance: dg.DagsterInstance, run_id: str) -> str | None:
    """The status of the curated suite's evaluation in the run that materialized the dataset (None: none there).
    Newer runs may have planned evaluations of their own, so the run is matched, not the newest record taken."""
    history = instance.event_log_storage.get_asset_check_execution_history(
        dg.AssetCheckKey(curated_dataset.key, CURATED_SUITE), limit=RECENT_CHECKS)
    return next((record.status.value for record in history if record.run_id == run_id), None)


def _int(record, name: str) -> int | None:
    value = record.asset_materialization.metadata.get(name) if record else None
    return int(value.value) if value is not None else None


@dg.sensor(
    job_name=train_experiment_job.name,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=f"Train experiment {RETRAIN_EXPERIMENT!r} on a new curated dataset that passed its checks and has "
    "at least retrain.min_new_training_rows more training rows than its current adapter.",
)
def new_data_retrain_sensor(context: dg.SensorEvaluationContext, workspace: Workspace):
    dataset = _latest(context.instance, curated_dataset.key)
    if dataset is None:
        return dg.SkipReason("the curated dataset has not been materialized yet")
    if context.cursor and int(context.cursor) >= dataset.storage_id:
        return dg.SkipReason(f"curated dataset version {dataset.storage_id} was already considered")
    status = _check_status(context.instance, dataset.run_id)
    if status in ("PLANNED", "IN_PROGRESS"):
        return dg.SkipReason(f"{CURATED_SUITE} of the newest curated dataset has not finished")
    if status != "SUCCEEDED":
        context.update_cursor(str(dataset.storage_id))
        return dg.SkipReason(f"the newest curated dataset did not pass {CURATED_SUITE}; not training on it")
    skip = experiment_missing(context.instance, RETRAIN_EXPERIMENT)
    if skip:
        return skip
    context.update_cursor(str(dataset.storage_id))
    rows_now = _int(dataset, "train_rows") or 0
    rows_trained = _int(_latest(context.instance, lora_adapter.key, RETRAIN_EXPERIMENT), "train_rows") or 0
    needed = workspace.load_profile().retrain.min_new_training_rows
    if rows_now - rows_trained < needed:
        return dg.SkipReason(f"the new curated dataset has {rows_now - rows_trained} more training rows than the "
                             f"adapter ({rows_now} vs {rows_trained}); retraining needs {needed}")
    return dg.RunRequest(
        run_key=f"new-data-{dataset.storage_id}",
        partition_key=RETRAIN_EXPERIMENT,
        tags={TRIGGER_TAG: "new_data", NEW_TRAINING_ROWS_TAG: str(rows_now - rows_trained)},
    )
