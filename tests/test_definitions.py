"""The graph's shape, as users see it in the UI and as the jobs select it."""

import dagster as dg
import pytest

from stages.definitions import defs


def test_the_code_location_holds_every_asset_job_schedule_and_sensor():
    """A restructure of ``stages/`` must not drop (or add) a definition without this test changing with it."""
    repository = defs.get_repository_def()
    assert {key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()} == {
        "raw_corpus", "cleaned_corpus", "curated_dataset", "base_model", "lora_adapter", "evaluation_report",
        "merged_export", "promoted_model", "deployment", "raw_data_drift", "champion_monitor", "live_traffic",
    }
    assert {key.to_user_string() for key in defs.resolve_asset_graph().asset_check_keys} == {
        "cleaned_corpus:great_expectations_cleaned", "curated_dataset:great_expectations_curated",
        "evaluation_report:promotion_gate", "merged_export:export_parity", "raw_data_drift:drift_within_threshold",
        *(f"live_traffic:live_{name}" for name in ("error_rate", "latency_p95", "degenerate_rate", "mean_rating",
                                                   "document_drift")),
    }
    jobs = {job.name for job in defs.resolve_all_job_defs() if not job.name.startswith("__")}
    assert jobs == {"ingest_source", "model_lifecycle", "train_experiment", "monitoring", "live_monitoring"}
    assert {schedule.name: (schedule.job_name, schedule.cron_schedule) for schedule in repository.schedule_defs} == {
        "weekly_retrain": ("model_lifecycle", "0 3 * * 0"),
        "nightly_monitoring": ("monitoring", "0 2 * * *"),
        "daily_live_monitoring": ("live_monitoring", "30 0 * * *"),
    }
    assert {sensor.name for sensor in repository.sensor_defs} == {
        "raw_data_sensor", "new_data_retrain_sensor", "drift_retrain_sensor", "live_retrain_sensor",
        "run_failure_alert", "default_automation_sensor",
    }
    assert set(defs.resources) == {"workspace", "dvc", "registry", "compute", "data_engine", "serving", "raw_watch",
                                   "alert_notifier"}
    groups = {key.to_user_string(): node.group_name for key, node in
              ((key, defs.resolve_asset_graph().get(key)) for key in defs.resolve_asset_graph().get_all_asset_keys())}
    assert groups == {"raw_corpus": "data", "cleaned_corpus": "data", "curated_dataset": "data", "base_model": "model",
                      "lora_adapter": "model", "evaluation_report": "evaluation", "merged_export": "promotion",
                      "promoted_model": "promotion", "deployment": "promotion", "raw_data_drift": "monitoring",
                      "champion_monitor": "monitoring", "live_traffic": "monitoring"}
    lifecycle_tags = {"tuneforge/lifecycle": "model"}
    assert {job.name: dict(job.tags) for job in defs.resolve_all_job_defs() if not job.name.startswith("__")} == {
        "ingest_source": {}, "model_lifecycle": lifecycle_tags, "train_experiment": lifecycle_tags, "monitoring": {},
        "live_monitoring": {}}


def test_each_stage_assembles_its_own_definitions():
    from stages import data, evaluation, model, monitoring

    def names(stage_defs: dg.Definitions) -> set[str]:
        return ({asset.key.to_user_string() for asset in stage_defs.assets or []}
                | {job.name for job in stage_defs.jobs or []} | {sensor.name for sensor in stage_defs.sensors or []})

    assert names(data.defs) == {"raw_corpus", "cleaned_corpus", "curated_dataset", "ingest_source", "raw_data_sensor"}
    assert names(model.defs) == {"base_model", "lora_adapter", "model_lifecycle", "train_experiment",
                                 "new_data_retrain_sensor"}
    assert names(evaluation.defs) == {"evaluation_report", "merged_export", "promoted_model", "deployment"}
    assert names(monitoring.defs) == {"raw_data_drift", "champion_monitor", "monitoring", "drift_retrain_sensor",
                                      "run_failure_alert", "live_traffic", "live_monitoring", "live_retrain_sensor"}


def test_asset_graph_has_the_documented_lineage():
    graph = defs.resolve_asset_graph()
    parents = {key.to_user_string(): sorted(p.to_user_string() for p in graph.get(key).parent_keys)
               for key in graph.get_all_asset_keys()}
    assert parents == {
        "raw_corpus": [],
        "cleaned_corpus": ["raw_corpus"],
        "curated_dataset": ["cleaned_corpus"],
        "base_model": [],
        "lora_adapter": ["base_model", "curated_dataset"],
        "evaluation_report": ["base_model", "lora_adapter"],
        "merged_export": ["base_model", "evaluation_report"],
        "promoted_model": ["base_model", "evaluation_report", "merged_export"],
        "deployment": ["base_model", "promoted_model"],
        "raw_data_drift": [],
        "champion_monitor": [],
        "live_traffic": [],
    }
    blocking = {(spec.asset_key.to_user_string(), spec.name)
                for assets in defs.assets for spec in assets.check_specs if spec.blocking}
    assert blocking >= {("evaluation_report", "promotion_gate"), ("merged_export", "export_parity")}
    partitioned = {key.to_user_string() for key in graph.get_all_asset_keys() if graph.get(key).is_partitioned}
    assert partitioned == {"raw_corpus", "cleaned_corpus", "lora_adapter", "evaluation_report", "merged_export",
                           "promoted_model", "deployment", "live_traffic"}
    assert graph.get(dg.AssetKey("lora_adapter")).partitions_def.name == "experiments"
    assert graph.get(dg.AssetKey("lora_adapter")).pools == {"gpu"}


def test_jobs_cover_ingestion_per_source_and_the_model_lifecycle():
    assert isinstance(defs.resolve_job_def("ingest_source").partitions_def, dg.DynamicPartitionsDefinition)
    lifecycle = {k.to_user_string() for k in defs.resolve_job_def("model_lifecycle").asset_layer.selected_asset_keys}
    assert lifecycle == {"curated_dataset", "base_model", "lora_adapter", "evaluation_report", "merged_export",
                         "promoted_model", "deployment"}
    sweep = defs.resolve_job_def("train_experiment")
    assert {k.to_user_string() for k in sweep.asset_layer.selected_asset_keys} == {
        "lora_adapter", "evaluation_report", "merged_export", "promoted_model", "deployment"}
    assert sweep.partitions_def.name == "experiments"


def test_the_curated_dataset_and_the_promoted_model_carry_freshness_policies():
    graph = defs.resolve_asset_graph()
    for asset in ("curated_dataset", "promoted_model"):
        policy = graph.get(dg.AssetKey(asset)).freshness_policy
        assert policy is not None and policy.fail_window.to_timedelta().days >= 7
    automated = {key.to_user_string() for key in graph.get_all_asset_keys()
                 if graph.get(key).automation_condition is not None}
    assert automated == {"cleaned_corpus", "curated_dataset", "evaluation_report", "merged_export", "promoted_model",
                         "deployment"}


def test_the_launchpad_shows_every_training_hyperparameter():
    from tuneforge.profiles import TrainingConfig

    fields = defs.resolve_job_def("model_lifecycle").run_config_schema.config_type.fields["ops"].config_type.fields
    launchpad = fields["lora_adapter"].config_type.fields["config"].config_type.fields
    assert set(launchpad) == set(TrainingConfig.model_fields)
    assert "learning_rate" in launchpad and not launchpad["learning_rate"].is_required


@pytest.mark.slow
def test_workspace_validates_with_the_dagster_cli():
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    dagster = Path(sys.executable).with_name("dagster")
    done = subprocess.run([str(dagster), "definitions", "validate", "-w", "workspace.yaml"],
                          cwd=repo, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "All code locations passed validation" in done.stderr + done.stdout
