"""The weekly retrain and nightly monitoring schedules, and the sensor that retrains once per failed drift check."""

import json
import random
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest

from resources import ModelRegistry, Workspace
from stages.model.assets import experiments as real_experiments
from stages.model.jobs import model_lifecycle_job
from stages.model.retraining import RETRAIN_EXPERIMENT, build_weekly_retrain
from stages.monitoring.jobs import monitoring_job
from stages.monitoring.schedules import build_nightly_monitoring
from stages.monitoring.sensors import drift_retrain_sensor
from stages.names import DRIFT_EVALUATION_TAG, TRIGGER_TAG
from tuneforge.corpus.records import Example, write_jsonl

EXPERIMENTS = real_experiments.name
LIFECYCLE_JOB = model_lifecycle_job.name
# Built with the builders' defaults (UTC), as stages/definitions.py builds them in the project's time zone.
weekly_retrain = build_weekly_retrain()
nightly_monitoring = build_nightly_monitoring()
SCHEDULES = [weekly_retrain, nightly_monitoring]
SENSORS = [drift_retrain_sensor]

experiments = dg.DynamicPartitionsDefinition(name=EXPERIMENTS)


@dg.asset(partitions_def=experiments)
def trained_stand_in() -> None:
    """Stands in for the experiment-partitioned training assets, which model_lifecycle selects."""


def definitions(schedules=SCHEDULES) -> dg.Definitions:
    from stages.monitoring.assets import champion_monitor, raw_data_drift

    lifecycle = dg.define_asset_job(LIFECYCLE_JOB, selection=[trained_stand_in], partitions_def=experiments)
    return dg.Definitions(
        assets=[trained_stand_in, raw_data_drift, champion_monitor],
        jobs=[lifecycle, monitoring_job],
        schedules=schedules,
        sensors=SENSORS,
        resources={"workspace": Workspace(), "registry": ModelRegistry()},
    )


SUNDAY_3AM = datetime(2026, 11, 15, 3, 0, tzinfo=UTC)


def test_everything_starts_running_and_loads():
    defs = definitions()
    dg.Definitions.validate_loadable(defs)
    for schedule in SCHEDULES:
        assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
        assert schedule.execution_timezone == "UTC"
    assert drift_retrain_sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert weekly_retrain.cron_schedule == "0 3 * * 0" and weekly_retrain.job_name == LIFECYCLE_JOB
    assert nightly_monitoring.job_name == "monitoring"
    job = defs.resolve_job_def("monitoring")
    assert job.asset_layer.selected_asset_keys == {dg.AssetKey("raw_data_drift"), dg.AssetKey("champion_monitor")}
    assert build_weekly_retrain(timezone="Europe/Berlin").execution_timezone == "Europe/Berlin"


def test_weekly_retrain_requests_the_baseline_experiment(workspace):
    defs = definitions()
    with dg.DagsterInstance.get() as instance:
        context = dg.build_schedule_context(instance=instance, scheduled_execution_time=SUNDAY_3AM,
                                            repository_def=defs.get_repository_def())
        skipped = weekly_retrain.evaluate_tick(context)
        assert not skipped.run_requests and f"{RETRAIN_EXPERIMENT!r} of {EXPERIMENTS!r} is not registered" in (
            skipped.skip_message)

        instance.add_dynamic_partitions(EXPERIMENTS, [RETRAIN_EXPERIMENT])
        (request,) = weekly_retrain.evaluate_tick(context).run_requests
        assert request.partition_key == RETRAIN_EXPERIMENT
        assert request.tags[TRIGGER_TAG] == "weekly_retrain"
        assert request.tags["dagster/schedule_name"] == "weekly_retrain"
        assert request.run_key == f"weekly-retrain-{SUNDAY_3AM.isoformat()}"


def test_nightly_monitoring_requests_the_monitoring_job(workspace):
    with dg.DagsterInstance.get() as instance:
        context = dg.build_schedule_context(instance=instance, scheduled_execution_time=SUNDAY_3AM)
        (request,) = nightly_monitoring.evaluate_tick(context).run_requests
        assert request.tags[TRIGGER_TAG] == "nightly_monitoring"
        assert request.partition_key is None


# --- the drift sensor -------------------------------------------------------------------------------------------

WORDS_TEXT = "the model method data results show that our approach improves task performance on text"
WORDS = WORDS_TEXT.split()


def texts(seed: int, count: int, mean_words: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choices(WORDS, k=max(20, int(rng.gauss(mean_words, mean_words / 5))))) + "."
            for _ in range(count)]


def write_data(root: Path, raw_words: int) -> None:
    train = root / "data" / "curated" / "train.jsonl"
    train.parent.mkdir(parents=True, exist_ok=True)
    write_jsonl(train, [Example(id=f"papers/t{i}", source="papers", group=f"t{i}", document=text,
                                summary="A summary.", language="en")
                        for i, text in enumerate(texts(1, 120, 150))])
    raw = root / "data" / "raw" / "papers"
    raw.mkdir(parents=True, exist_ok=True)
    (raw / "new.jsonl").write_text("".join(
        json.dumps({"id": f"n{i}", "document": text, "summary": "A summary."}) + "\n"
        for i, text in enumerate(texts(2, 100, raw_words))
    ))


def tick(defs: dg.Definitions, instance: dg.DagsterInstance, cursor: str | None = None):
    # instance_ref as the daemon passes it: partition keys are resolved against the instance's dynamic partitions.
    context = dg.build_sensor_context(instance=instance, instance_ref=instance.get_ref(), cursor=cursor,
                                      definitions=defs)
    return drift_retrain_sensor.evaluate_tick(context)


def run_monitoring(defs: dg.Definitions, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    result = defs.resolve_job_def("monitoring").execute_in_process(instance=instance)
    assert result.success
    return result


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_drift_sensor_retrains_once_per_failed_drift_check(workspace):
    defs = definitions()
    with dg.DagsterInstance.get() as instance:
        assert "has not been evaluated yet" in tick(defs, instance).skip_message

        write_data(workspace, raw_words=600)  # four times longer documents than the training data
        drifted = run_monitoring(defs, instance)
        (evaluation,) = drifted.get_asset_check_evaluations()
        assert not evaluation.passed
        champion = drifted.asset_materializations_for_node("champion_monitor")[0]
        assert champion.metadata["status"].value == "no champion"

        skipped = tick(defs, instance)
        assert not skipped.run_requests and "is not registered" in skipped.skip_message
        instance.add_dynamic_partitions(EXPERIMENTS, [RETRAIN_EXPERIMENT])

        first = tick(defs, instance)
        (request,) = first.run_requests
        assert request.job_name is None or request.job_name == LIFECYCLE_JOB
        assert request.partition_key == RETRAIN_EXPERIMENT and request.tags[TRIGGER_TAG] == "drift"
        assert request.run_key.startswith(f"drift-{drifted.run_id}-")
        assert request.tags[DRIFT_EVALUATION_TAG] == first.cursor

        # The same evaluation again: skipped by the cursor, and the run key is the same should the cursor be lost.
        again = tick(defs, instance, cursor=first.cursor)
        assert not again.run_requests and "already handled" in again.skip_message
        (repeated,) = tick(defs, instance).run_requests
        assert repeated.run_key == request.run_key

        write_data(workspace, raw_words=150)
        calm = run_monitoring(defs, instance)
        assert calm.get_asset_check_evaluations()[0].passed
        passed = tick(defs, instance, cursor=first.cursor)
        assert not passed.run_requests and "passed" in passed.skip_message
        assert int(passed.cursor) > int(first.cursor)
