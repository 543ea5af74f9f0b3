"""When things run by themselves: a weekly retrain, nightly monitoring, and a retrain when the raw data drifts.

All three start RUNNING (a schedule or sensor is stopped by default in Dagster), so `dagster dev` with the daemon
runs them without a click. Retraining requests the ``model_lifecycle`` job for the experiment partition
``RETRAIN_EXPERIMENT`` of the ``experiments`` dynamic partitions; when that partition is not registered the tick is
skipped with a message saying so (a run request for an unknown partition would fail the tick).
"""

import os
from datetime import datetime

import dagster as dg

from assets.monitoring import DRIFT_CHECK, champion_monitor, raw_data_drift
from tuneforge.experiments import DEFAULT_EXPERIMENT

LIFECYCLE_JOB = "model_lifecycle"
EXPERIMENTS = "experiments"
RETRAIN_EXPERIMENT = DEFAULT_EXPERIMENT
TIMEZONE_ENV_VAR = "TUNEFORGE_SCHEDULE_TIMEZONE"
SCHEDULE_TIMEZONE = os.environ.get(TIMEZONE_ENV_VAR) or "UTC"
WEEKLY_RETRAIN_CRON = "0 3 * * 0"  # Sundays at 03:00
NIGHTLY_MONITORING_CRON = "0 2 * * *"  # every night at 02:00
TRIGGER_TAG = "tuneforge/trigger"
DRIFT_EVALUATION_TAG = "tuneforge/drift_check_evaluation"
RECENT_EVALUATIONS = 20

monitoring_job = dg.define_asset_job(
    "monitoring",
    selection=dg.AssetSelection.assets(raw_data_drift, champion_monitor),
    description="Raw-data drift against the training data (with its warning check) and the champion re-evaluated.",
)


def experiment_missing(instance: dg.DagsterInstance, experiment: str) -> dg.SkipReason | None:
    if instance.has_dynamic_partition(EXPERIMENTS, experiment):
        return None
    return dg.SkipReason(
        f"the experiment partition {experiment!r} of {EXPERIMENTS!r} is not registered, so {LIFECYCLE_JOB} cannot run "
        "for it; register it (`tuneforge experiments sync`, or 'add partition' in the UI) and the next tick runs"
    )


def build_weekly_retrain(
    cron: str = WEEKLY_RETRAIN_CRON, timezone: str = SCHEDULE_TIMEZONE, experiment: str = RETRAIN_EXPERIMENT
) -> dg.ScheduleDefinition:
    @dg.schedule(
        cron_schedule=cron,
        job_name=LIFECYCLE_JOB,
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
            tags={TRIGGER_TAG: "weekly_retrain", "tuneforge/scheduled_for": scheduled.isoformat()},
        )

    return weekly_retrain


def build_nightly_monitoring(
    cron: str = NIGHTLY_MONITORING_CRON, timezone: str = SCHEDULE_TIMEZONE
) -> dg.ScheduleDefinition:
    return dg.ScheduleDefinition(
        name="nightly_monitoring",
        cron_schedule=cron,
        job=monitoring_job,
        execution_timezone=timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        tags={TRIGGER_TAG: "nightly_monitoring"},
        description="Measure raw-data drift and re-evaluate the champion every night.",
    )


def build_drift_retrain_sensor(experiment: str = RETRAIN_EXPERIMENT) -> dg.SensorDefinition:
    check_key = dg.AssetCheckKey(raw_data_drift.key, DRIFT_CHECK)

    @dg.sensor(
        job_name=LIFECYCLE_JOB,
        name="drift_retrain_sensor",
        minimum_interval_seconds=120,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Retrain experiment {experiment!r} once for each failed {DRIFT_CHECK} evaluation.",
    )
    def drift_retrain_sensor(context: dg.SensorEvaluationContext):
        # The cursor is the storage id of the last evaluation acted on; the run key makes a request idempotent even
        # if the cursor is lost.
        record = _latest_completed_evaluation(context.instance, check_key)
        if record is None:
            return dg.SkipReason(f"{DRIFT_CHECK} has not been evaluated yet")
        if context.cursor and int(context.cursor) >= record.id:
            return dg.SkipReason(f"the latest {DRIFT_CHECK} evaluation (storage id {record.id}) was already handled")
        if record.status.value == "SUCCEEDED":
            context.update_cursor(str(record.id))
            return dg.SkipReason(f"the latest {DRIFT_CHECK} evaluation passed (run {record.run_id})")
        skip = experiment_missing(context.instance, experiment)
        if skip:
            return skip
        context.update_cursor(str(record.id))
        return dg.RunRequest(
            run_key=f"drift-{record.run_id}-{record.id}",
            partition_key=experiment,
            tags={TRIGGER_TAG: "drift", DRIFT_EVALUATION_TAG: str(record.id), "tuneforge/drift_run_id": record.run_id},
        )

    return drift_retrain_sensor


def _latest_completed_evaluation(instance: dg.DagsterInstance, check_key: dg.AssetCheckKey):
    """The newest evaluation that passed or failed; a planned one (a run still going, or one that died before the
    check ran) is passed over."""
    history = instance.event_log_storage.get_asset_check_execution_history(check_key, limit=RECENT_EVALUATIONS)
    return next((record for record in history if record.status.value in ("SUCCEEDED", "FAILED")), None)


weekly_retrain = build_weekly_retrain()
nightly_monitoring = build_nightly_monitoring()
drift_retrain_sensor = build_drift_retrain_sensor()

MONITORING_JOBS = [monitoring_job]
SCHEDULES = [weekly_retrain, nightly_monitoring]
SENSORS = [drift_retrain_sensor]
