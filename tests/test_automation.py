"""Declarative automation (each layer follows inputs whose blocking checks passed) and the sensor that retrains the
baseline experiment when a curated dataset brings enough new training rows.

The real assets are far too heavy to run here, so the automation tests run stand-ins built from them: the same
keys, dependencies, partitions, automation conditions and check specs, with a body that only reports the check
outcomes and metadata it is configured with.
"""

import warnings

import dagster as dg
import pytest

from resources import Workspace
from stages import data, evaluation, model
from stages.automation import EVERY_DEP_PARTITION_PASSED, FOLLOW_PASSING_INPUTS
from stages.data.assets import CLEANED_SUITE, CURATED_SUITE
from stages.definitions import defs as real_defs
from stages.evaluation.assets import PROMOTION_GATE
from stages.evaluation.promotion import EXPORT_PARITY
from stages.model.assets import experiments
from stages.model.jobs import train_experiment_job
from stages.model.retraining import RETRAIN_EXPERIMENT, new_data_retrain_sensor
from stages.names import TRIGGER_TAG

# The life cycle's assets; the monitoring assets depend on nothing and are not automated.
LIFECYCLE_ASSETS = [*data.defs.assets, *model.defs.assets, *evaluation.defs.assets]
EXPERIMENTS = experiments.name
TRAIN_JOB = train_experiment_job.name

AUTOMATED = {"cleaned_corpus", "curated_dataset", "evaluation_report", "merged_export", "promoted_model",
             "deployment"}
BLOCKING_CHECKS = {("cleaned_corpus", CLEANED_SUITE), ("curated_dataset", CURATED_SUITE),
                   ("evaluation_report", PROMOTION_GATE), ("merged_export", EXPORT_PARITY)}
OTHER_EXPERIMENT = "wider_lora"


class StandInOutcome(dg.Config):
    failing_checks: list[str] = []
    train_rows: int = 0


def stand_in(real: dg.AssetsDefinition) -> dg.AssetsDefinition:
    """An asset shaped exactly like ``real`` whose run only reports the configured outcome."""
    (spec,) = real.specs
    check_specs = list(real.check_specs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.PreviewWarning)  # partitioned check specs (cleaned_corpus)

        @dg.multi_asset(name=real.key.to_python_identifier(), specs=[spec], check_specs=check_specs)
        def _stand_in(config: StandInOutcome) -> dg.MaterializeResult:
            return dg.MaterializeResult(
                asset_key=spec.key,
                metadata={"train_rows": config.train_rows},
                check_results=[
                    dg.AssetCheckResult(asset_key=spec.key, check_name=check.name,
                                        passed=check.name not in config.failing_checks)
                    for check in check_specs
                ],
            )

    return _stand_in


STAND_INS = {asset.key.to_user_string(): stand_in(asset) for asset in LIFECYCLE_ASSETS}


def materialize(instance: dg.DagsterInstance, name: str, partition: str | None = None, *, failing: tuple = (),
                train_rows: int = 0) -> dg.ExecuteInProcessResult:
    asset = STAND_INS[name]
    config = {"failing_checks": list(failing), "train_rows": train_rows}
    result = dg.materialize([asset], instance=instance, partition_key=partition, raise_on_error=False,
                            run_config={"ops": {asset.op.name: {"config": config}}})
    # A failed blocking check fails the step after the materialization was recorded, as in the real assets.
    assert result.success == (not failing), result.all_events
    return result


class Automation:
    """The stand-in graph on one instance, evaluated tick after tick with the cursor carried along like the
    automation sensor does."""

    def __init__(self, sources: list[str]) -> None:
        self.instance = dg.DagsterInstance.ephemeral()
        self.defs = dg.Definitions(assets=list(STAND_INS.values()))
        self.cursor = None
        self.instance.add_dynamic_partitions("sources", sources)
        self.instance.add_dynamic_partitions(EXPERIMENTS, [RETRAIN_EXPERIMENT, OTHER_EXPERIMENT])
        for source in sources:
            self.materialize("raw_corpus", source)
            self.materialize("cleaned_corpus", source)
        self.materialize("curated_dataset")
        self.materialize("base_model")
        for experiment in (RETRAIN_EXPERIMENT, OTHER_EXPERIMENT):
            for name in ("lora_adapter", "evaluation_report", "merged_export", "promoted_model"):
                self.materialize(name, experiment)

    def materialize(self, name: str, partition: str | None = None, *, failing: tuple = ()) -> None:
        materialize(self.instance, name, partition, failing=failing)

    def tick(self) -> dict[str, set[str | None]]:
        """Requested partitions per asset name, for the assets this tick requested anything of."""
        result = dg.evaluate_automation_conditions(defs=self.defs, instance=self.instance, cursor=self.cursor)
        self.cursor = result.cursor
        requested = {name: set(result.get_requested_partitions(dg.AssetKey(name))) for name in STAND_INS}
        requested = {name: partitions for name, partitions in requested.items() if partitions}
        assert result.total_requested == sum(len(partitions) for partitions in requested.values())
        return requested


@pytest.fixture
def automation() -> Automation:
    """Everything materialized with every check passing, and one tick taken (which requests nothing)."""
    settled = Automation(["papers", "news"])
    assert settled.tick() == {}
    return settled


# --- the real definitions -------------------------------------------------------------------------------------------


def test_real_assets_follow_passing_inputs_and_the_automation_sensor_runs_by_default():
    graph = real_defs.resolve_asset_graph()
    for asset in LIFECYCLE_ASSETS:
        condition = graph.get(asset.key).automation_condition
        name = asset.key.to_user_string()
        if name in AUTOMATED:
            assert condition == FOLLOW_PASSING_INPUTS, name
        else:
            # raw data arrives through the raw-data sensor; training is expensive and is started by the weekly
            # schedule, the drift sensor and the new-data sensor, never by a curated dataset merely changing
            assert condition is None, name
    assert "eager" in {c.get_label() for c in FOLLOW_PASSING_INPUTS.children}
    assert EVERY_DEP_PARTITION_PASSED in FOLLOW_PASSING_INPUTS.children
    blocking = {(key.asset_key.to_user_string(), key.name) for key in graph.asset_check_keys
                if graph.get(key).blocking}
    assert blocking >= BLOCKING_CHECKS

    sensor = real_defs.resolve_sensor_def("default_automation_sensor")
    assert isinstance(sensor, dg.AutomationConditionSensorDefinition)
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert {dg.AssetKey(name) for name in AUTOMATED} <= sensor.asset_selection.resolve(graph)


def test_stand_ins_have_the_real_graph_shape():
    real = real_defs.resolve_asset_graph()
    mirrored = dg.Definitions(assets=list(STAND_INS.values())).resolve_asset_graph()
    for asset in LIFECYCLE_ASSETS:
        real_node, stand_in_node = real.get(asset.key), mirrored.get(asset.key)
        assert stand_in_node.parent_keys == real_node.parent_keys, asset.key
        assert stand_in_node.partitions_def == real_node.partitions_def, asset.key
        assert stand_in_node.automation_condition == real_node.automation_condition, asset.key
        real_checks = {(key, real.get(key).blocking, real.get(key).partitions_def) for key in real_node.check_keys}
        assert {(key, mirrored.get(key).blocking, mirrored.get(key).partitions_def)
                for key in stand_in_node.check_keys} == real_checks, asset.key
    assert real.get(dg.AssetKey("cleaned_corpus")).partitions_def.name == "sources"
    assert real.get(dg.AssetKey("curated_dataset")).partitions_def is None
    assert real.get(dg.AssetKey("evaluation_report")).partitions_def.name == EXPERIMENTS


# --- the automation conditions -------------------------------------------------------------------------------------


def test_a_source_cleaned_again_with_its_check_passed_requests_the_curated_dataset(automation):
    automation.materialize("cleaned_corpus", "news")
    # lora_adapter has no automation condition: a new curated dataset is trained on by the retrain sensor
    assert automation.tick() == {"curated_dataset": {None}}


def test_nothing_changed_since_the_last_tick_requests_nothing(automation):
    assert automation.tick() == {}
    automation.materialize("cleaned_corpus", "papers")
    assert automation.tick() == {"curated_dataset": {None}}
    # the request handled the update: the next tick (with the cursor) does not request it again
    assert automation.tick() == {}
    assert automation.tick() == {}


@pytest.mark.parametrize("sources", [
    pytest.param(["papers"], id="one-source"),
    pytest.param(["papers", "news"], id="two-sources"),
])
def test_a_source_failing_its_check_holds_the_curated_dataset_until_it_passes(sources):
    automation = Automation(sources)
    assert automation.tick() == {}
    automation.materialize("cleaned_corpus", "papers", failing=(CLEANED_SUITE,))
    assert automation.tick() == {}
    assert automation.tick() == {}, "the failed source must keep holding the curated dataset"
    automation.materialize("cleaned_corpus", "papers")
    assert automation.tick() == {"curated_dataset": {None}}


def test_a_new_adapter_requests_only_its_own_experiment(automation):
    automation.materialize("lora_adapter", RETRAIN_EXPERIMENT)
    requested = automation.tick()
    assert requested["evaluation_report"] == {RETRAIN_EXPERIMENT}
    # merged_export and promoted_model may join the same request (the gate, a blocking check, stops the run if
    # it fails), but only for this experiment and nothing above the model layer
    assert set(requested) <= {"evaluation_report", "merged_export", "promoted_model", "deployment"}
    assert all(partitions == {RETRAIN_EXPERIMENT} for partitions in requested.values()), requested
    assert automation.tick() == {}


@pytest.mark.parametrize(("gated", "check", "downstream"), [
    ("evaluation_report", PROMOTION_GATE, {"merged_export", "promoted_model", "deployment"}),
    ("merged_export", EXPORT_PARITY, {"promoted_model", "deployment"}),
])
def test_a_failed_gate_stops_promotion_and_a_passed_one_continues(automation, gated, check, downstream):
    automation.materialize(gated, OTHER_EXPERIMENT, failing=(check,))
    assert automation.tick() == {}
    assert automation.tick() == {}
    automation.materialize(gated, OTHER_EXPERIMENT)
    assert automation.tick() == {name: {OTHER_EXPERIMENT} for name in downstream}


# --- the new-data retrain sensor -----------------------------------------------------------------------------------


class RetrainSensor:
    """new_data_retrain_sensor ticked like the daemon does: each tick starts from the cursor the last one left."""

    def __init__(self, instance: dg.DagsterInstance) -> None:
        self.instance, self.cursor = instance, None

    def tick(self) -> dg.RunRequest | dg.SkipReason:
        with dg.build_sensor_context(instance=self.instance, cursor=self.cursor,
                                     resources={"workspace": Workspace()}) as context:
            result = new_data_retrain_sensor(context)
            self.cursor = context.cursor
        return result

    def curate(self, train_rows: int, *, passed: bool = True) -> int:
        """A curated dataset with its check in the same run, as the real asset makes it; returns its storage id."""
        materialize(self.instance, "curated_dataset", failing=() if passed else (CURATED_SUITE,), train_rows=train_rows)
        return self.latest_curated()

    def latest_curated(self) -> int:
        (record,) = self.instance.fetch_materializations(dg.AssetKey("curated_dataset"), limit=1).records
        return record.storage_id

    def train(self, train_rows: int) -> None:
        self.instance.report_runless_asset_event(
            dg.AssetMaterialization("lora_adapter", partition=RETRAIN_EXPERIMENT, metadata={"train_rows": train_rows}))


@pytest.fixture
def sensor(workspace):
    with dg.DagsterInstance.get() as instance:
        yield RetrainSensor(instance)


@pytest.fixture
def needed(workspace) -> int:
    rows = Workspace().load_profile().retrain.min_new_training_rows
    assert rows > 10, "the tests below add 10 rows and expect that to be too few"
    return rows


def register_baseline(sensor: RetrainSensor) -> None:
    sensor.instance.add_dynamic_partitions(EXPERIMENTS, [RETRAIN_EXPERIMENT])


def test_the_sensor_targets_train_experiment_and_runs_by_default():
    assert new_data_retrain_sensor.job_name == TRAIN_JOB == "train_experiment"
    assert real_defs.resolve_sensor_def(new_data_retrain_sensor.name).default_status == dg.DefaultSensorStatus.RUNNING
    job = real_defs.resolve_job_def(TRAIN_JOB)
    assert job.partitions_def.name == EXPERIMENTS
    assert dg.AssetKey("lora_adapter") in job.asset_layer.selected_asset_keys


def test_no_curated_dataset_skips(sensor):
    register_baseline(sensor)
    result = sensor.tick()
    assert isinstance(result, dg.SkipReason) and "has not been materialized" in result.skip_message
    assert sensor.cursor is None


def test_enough_new_rows_request_one_training_run_and_only_once(sensor, needed):
    register_baseline(sensor)
    sensor.train(200)
    storage_id = sensor.curate(200 + needed + 10)
    request = sensor.tick()
    assert isinstance(request, dg.RunRequest)
    assert request.partition_key == RETRAIN_EXPERIMENT
    assert request.run_key == f"new-data-{storage_id}"
    assert request.tags[TRIGGER_TAG] == "new_data"
    assert request.tags["tuneforge/new_training_rows"] == str(needed + 10)
    assert sensor.cursor == str(storage_id)

    again = sensor.tick()
    assert isinstance(again, dg.SkipReason) and f"version {storage_id} was already considered" in again.skip_message


def test_a_first_dataset_with_no_adapter_yet_requests_training(sensor, needed):
    register_baseline(sensor)
    sensor.curate(needed)
    request = sensor.tick()
    assert isinstance(request, dg.RunRequest) and request.tags["tuneforge/new_training_rows"] == str(needed)


def test_a_handful_of_new_rows_skips_naming_the_numbers(sensor, needed):
    register_baseline(sensor)
    sensor.train(200)
    storage_id = sensor.curate(210)
    result = sensor.tick()
    assert isinstance(result, dg.SkipReason)
    assert "10 more training rows" in result.skip_message and "(210 vs 200)" in result.skip_message
    assert f"retraining needs {needed}" in result.skip_message
    assert sensor.cursor == str(storage_id)

    # rows accumulate across versions: the next one compares with the adapter again, not with the skipped version
    sensor.curate(200 + needed)
    assert isinstance(sensor.tick(), dg.RunRequest)


def test_a_dataset_that_failed_its_check_is_never_trained_on(sensor, needed):
    register_baseline(sensor)
    sensor.train(200)
    storage_id = sensor.curate(200 + needed + 10, passed=False)
    result = sensor.tick()
    assert isinstance(result, dg.SkipReason)
    assert f"did not pass {CURATED_SUITE}" in result.skip_message
    assert sensor.cursor == str(storage_id)
    assert isinstance(sensor.tick(), dg.SkipReason)

    sensor.curate(200 + needed + 20)
    assert isinstance(sensor.tick(), dg.RunRequest)


def test_a_newer_dataset_without_its_own_passed_check_skips(sensor, needed):
    register_baseline(sensor)
    sensor.train(200)
    sensor.curate(200 + needed)
    # recorded outside a run, so the check that passed belongs to the older version
    sensor.instance.report_runless_asset_event(
        dg.AssetMaterialization("curated_dataset", metadata={"train_rows": 200 + needed + 100}))
    result = sensor.tick()
    assert isinstance(result, dg.SkipReason) and f"did not pass {CURATED_SUITE}" in result.skip_message
    assert sensor.cursor == str(sensor.latest_curated())


def test_an_unregistered_experiment_skips_with_the_sync_hint_and_retries_once_registered(sensor, needed):
    storage_id = sensor.curate(needed + 10)
    result = sensor.tick()
    assert isinstance(result, dg.SkipReason)
    assert f"{RETRAIN_EXPERIMENT!r} of {EXPERIMENTS!r} is not registered" in result.skip_message
    assert "tuneforge experiments sync" in result.skip_message
    assert sensor.cursor is None, "the dataset must be considered again once the partition exists"

    register_baseline(sensor)
    request = sensor.tick()
    assert isinstance(request, dg.RunRequest) and request.run_key == f"new-data-{storage_id}"
