"""The data assets as a user sees them in Dagster: accounting, funnel, GX results and DVC hash in the metadata, and a
failing validation gate that stops training."""

import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from stages.definitions import defs
from tuneforge.corpus.aclsum import place_aclsum
from tuneforge.layout import Layout

SOURCE = "aclsum-outcome"


def metadata(instance: dg.DagsterInstance, asset: str, partition: str | None = None) -> dict:
    selection = dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[partition] if partition else None)
    (record,) = instance.fetch_materializations(selection, limit=1).records
    return {key: value.value for key, value in record.event_log_entry.asset_materialization.metadata.items()}


def check_records(instance: dg.DagsterInstance, asset: str, check: str) -> list:
    key = dg.AssetCheckKey(dg.AssetKey(asset), check)
    return instance.event_log_storage.get_asset_check_execution_history(key, limit=10)


def one_source(workspace, papers: int, extra_lines: list[str] = ()) -> Layout:
    layout = Layout(workspace)
    raw = place_aclsum(layout.raw, limit=papers)
    for source, path in raw.items():
        if source != SOURCE:
            path.unlink()
            path.parent.rmdir()
    with raw[SOURCE].open("a", encoding="utf-8") as handle:
        handle.writelines(line + "\n" for line in extra_lines)
    return layout


def materialize(instance, assets: list[str], partition: str | None = None) -> dg.ExecuteInProcessResult:
    job = dg.define_asset_job("selection", selection=assets).resolve(asset_graph=defs.resolve_asset_graph())
    return job.execute_in_process(instance=instance, partition_key=partition, raise_on_error=False,
                                  resources=defs.resources)


@pytest.mark.slow
def test_data_assets_show_accounting_funnel_checks_and_dvc_hash(workspace):
    duplicate = json.dumps({"id": "copy", "group": "copy", "document": "x " * 30, "summary": "y"})
    layout = one_source(workspace, papers=40, extra_lines=["{broken", duplicate, duplicate.replace("copy", "copy2")])
    with dg.DagsterInstance.get() as instance:
        instance.add_dynamic_partitions("sources", [SOURCE])
        result = materialize(instance, ["raw_corpus", "cleaned_corpus"], SOURCE)
        assert result.success
        raw = metadata(instance, "raw_corpus", SOURCE)
        assert raw["records_read"] == 43 and raw["quarantined"] == 1
        assert "invalid_json" in raw["quarantine_reasons"]

        cleaned = metadata(instance, "cleaned_corpus", SOURCE)
        assert cleaned["records_read"] == cleaned["quarantined"] + cleaned["rows_removed"] + cleaned["rows_out"]
        rejected = [json.loads(line) for line in (layout.cleaned / f"{SOURCE}.rejected.jsonl").open()]
        assert len(rejected) == cleaned["rows_removed"]
        # 30 words lies far below the document lengths learned from the 40 papers.
        assert {r["id"] for r in rejected if r["reason"] == "document_length"} == {f"{SOURCE}/copy", f"{SOURCE}/copy2"}
        assert "| pair_checks |" in cleaned["funnel"] and "| near_dedup |" in cleaned["funnel"]
        assert "expect_column_values_to_be_unique" in cleaned["great_expectations"]
        version = instance.get_latest_data_version_record(dg.AssetKey("cleaned_corpus"), partition_key=SOURCE)
        assert cleaned["dvc_md5"] == version.event_log_entry.asset_materialization.tags["dagster/data_version"]
        (check,) = [r for r in check_records(instance, "cleaned_corpus", "great_expectations_cleaned")]
        assert check.partition == SOURCE and check.status.value == "SUCCEEDED"

        result = materialize(instance, ["curated_dataset"])
        assert result.success
        curated = metadata(instance, "curated_dataset")
        lock = (layout.root / "dvc.lock").read_text()
        assert curated["dvc_md5"] in lock
        assert curated["train_rows"] + curated["validation_rows"] + curated["test_rows"] == cleaned["rows_out"]
        assert "| decontamination |" in curated["funnel"]

    # `dvc repro` runs the same code: rebuilding every stage gives the same bytes, and DVC agrees nothing changed.
    before = {path: path.read_bytes() for path in sorted((layout.root / "data").rglob("*.jsonl"))}
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    subprocess.run(["dvc", "repro", "--force", "-q"], cwd=layout.root, env=env, check=True, capture_output=True)
    assert {path: path.read_bytes() for path in before} == before
    status = subprocess.run(["dvc", "status"], cwd=layout.root, env=env, check=True, capture_output=True, text=True)
    assert "changed" not in status.stdout, status.stdout


def test_failing_validation_gate_stops_training(workspace):
    """Twelve papers give no validation split: the curated check fails and lora_adapter never runs."""
    one_source(workspace, papers=12)
    with dg.DagsterInstance.get() as instance:
        instance.add_dynamic_partitions("sources", [SOURCE])
        assert materialize(instance, ["raw_corpus", "cleaned_corpus"], SOURCE).success
        result = materialize(instance, ["curated_dataset", "base_model", "lora_adapter"])

        assert not result.success
        (check,) = check_records(instance, "curated_dataset", "great_expectations_curated")
        assert check.status.value == "FAILED"
        evaluation = check.event.dagster_event.event_specific_data
        failed = evaluation.metadata["failed_expectations"].value
        assert any(item["column"] == "rows" and item["failing_ids"] == ["validation"] for item in failed), failed
        assert instance.get_latest_materialization_event(dg.AssetKey("lora_adapter")) is None


@pytest.fixture(autouse=True)
def _no_mlflow_env(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
