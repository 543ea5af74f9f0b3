"""The graph's shape, as users see it in the UI and as the jobs select it."""

import dagster as dg
import pytest

from pipelines.definitions import defs


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
        "raw_data_drift": [],
        "champion_monitor": [],
    }
    blocking = {(spec.asset_key.to_user_string(), spec.name)
                for assets in defs.assets for spec in assets.check_specs if spec.blocking}
    assert blocking >= {("evaluation_report", "promotion_gate"), ("merged_export", "export_parity")}
    partitioned = {key.to_user_string() for key in graph.get_all_asset_keys() if graph.get(key).is_partitioned}
    assert partitioned == {"raw_corpus", "cleaned_corpus", "lora_adapter", "evaluation_report", "merged_export",
                           "promoted_model"}
    assert graph.get(dg.AssetKey("lora_adapter")).partitions_def.name == "experiments"
    assert graph.get(dg.AssetKey("lora_adapter")).pools == {"gpu"}


def test_jobs_cover_ingestion_per_source_and_the_model_lifecycle():
    assert isinstance(defs.resolve_job_def("ingest_source").partitions_def, dg.DynamicPartitionsDefinition)
    lifecycle = {k.to_user_string() for k in defs.resolve_job_def("model_lifecycle").asset_layer.selected_asset_keys}
    assert lifecycle == {"curated_dataset", "base_model", "lora_adapter", "evaluation_report", "merged_export",
                         "promoted_model"}
    sweep = defs.resolve_job_def("train_experiment")
    assert {k.to_user_string() for k in sweep.asset_layer.selected_asset_keys} == {
        "lora_adapter", "evaluation_report", "merged_export", "promoted_model"}
    assert sweep.partitions_def.name == "experiments"


def test_the_curated_dataset_and_the_promoted_model_carry_freshness_policies():
    graph = defs.resolve_asset_graph()
    for asset in ("curated_dataset", "promoted_model"):
        policy = graph.get(dg.AssetKey(asset)).freshness_policy
        assert policy is not None and policy.fail_window.to_timedelta().days >= 7
    automated = {key.to_user_string() for key in graph.get_all_asset_keys()
                 if graph.get(key).automation_condition is not None}
    assert automated == {"cleaned_corpus", "curated_dataset", "evaluation_report", "merged_export", "promoted_model"}


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
