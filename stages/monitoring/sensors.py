"""Retrain when the raw data drifts: ``drift_retrain_sensor`` requests one ``model_lifecycle`` run of
``RETRAIN_EXPERIMENT`` per failed evaluation of the drift check. It starts RUNNING, and skips (saying why) while that
experiment's partition is not registered."""

import dagster as dg

from resources import Workspace
from stages.model.jobs import model_lifecycle_job
from stages.model.retraining import RETRAIN_EXPERIMENT, experiment_missing
from stages.monitoring.assets import DRIFT_CHECK, raw_data_drift
from stages.monitoring.live import RETRAIN_CHECKS, check_name, live_traffic
from stages.names import DRIFT_EVALUATION_TAG, DRIFT_RUN_TAG, LIVE_CHECK_TAG, TRIGGER_TAG

RECENT_EVALUATIONS = 20


def build_drift_retrain_sensor(experiment: str = RETRAIN_EXPERIMENT) -> dg.SensorDefinition:
    check_key = dg.AssetCheckKey(raw_data_drift.key, DRIFT_CHECK)

    @dg.sensor(
        job_name=model_lifecycle_job.name,
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
            tags={TRIGGER_TAG: "drift", DRIFT_EVALUATION_TAG: str(record.id), DRIFT_RUN_TAG: record.run_id},
        )

    return drift_retrain_sensor


def _latest_completed_evaluation(instance: dg.DagsterInstance, check_key: dg.AssetCheckKey):
    """The newest evaluation that passed or failed; a planned one (a run still going, or one that died before the
    check ran) is passed over."""
    history = instance.event_log_storage.get_asset_check_execution_history(check_key, limit=RECENT_EVALUATIONS)
    return next((record for record in history if record.status.value in ("SUCCEEDED", "FAILED")), None)


drift_retrain_sensor = build_drift_retrain_sensor()


def build_live_retrain_sensor(experiment: str = RETRAIN_EXPERIMENT) -> dg.SensorDefinition:
    check_keys = [dg.AssetCheckKey(live_traffic.key, check_name(name)) for name in RETRAIN_CHECKS]

    @dg.sensor(
        job_name=model_lifecycle_job.name,
        name="live_retrain_sensor",
        minimum_interval_seconds=120,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Retrain experiment {experiment!r} once for each failed evaluation of a live quality, rating "
                    "or drift check (live.retrain_on_breach).",
    )
    def live_retrain_sensor(context: dg.SensorEvaluationContext, workspace: Workspace):
        if not workspace.load_profile().live.retrain_on_breach:
            return dg.SkipReason("live.retrain_on_breach is off")
        handled = int(context.cursor) if context.cursor else 0
        records = [r for key in check_keys if (r := _latest_completed_evaluation(context.instance, key))]
        fresh = sorted((r for r in records if r.id > handled), key=lambda r: r.id)
        if not fresh:
            return dg.SkipReason("no live check evaluated since the last one handled")
        failed = [r for r in fresh if r.status.value == "FAILED"]
        if not failed:
            context.update_cursor(str(fresh[-1].id))
            return dg.SkipReason("the live checks evaluated since passed")
        skip = experiment_missing(context.instance, experiment)
        if skip:
            return skip
        context.update_cursor(str(fresh[-1].id))
        record = failed[-1]
        return dg.RunRequest(
            run_key=f"live-{record.run_id}-{record.id}", partition_key=experiment,
            tags={TRIGGER_TAG: "live_monitoring", LIVE_CHECK_TAG: record.key.name, DRIFT_RUN_TAG: record.run_id},
        )

    return live_retrain_sensor


live_retrain_sensor = build_live_retrain_sensor()
