"""The whole graph through Dagster on the smoke profile, in a temporary workspace."""

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
import yaml

from pipelines.demo import register_sources, run_all
from resources import DvcRepository, ModelRegistry
from tuneforge.corpus.aclsum import place_aclsum
from tuneforge.layout import Layout

REPO = Path(__file__).resolve().parents[1]


def test_whole_graph_materializes_promotes_and_versions_data(workspace):
    layout = Layout(workspace)
    with dg.DagsterInstance.get() as instance:
        summary = run_all(instance, layout)

        assert summary["promoted"], summary["reasons"]
        assert summary["candidate"]["rougeL"] > summary["base"]["rougeL"]
        champion = ModelRegistry().champion()
        assert champion is not None and champion.version == summary["champion_version"]
        assert Path(champion.adapter_dir, "adapter_model.safetensors").exists()

        curated = instance.get_latest_materialization_event(dg.AssetKey("curated_dataset")).asset_materialization
        lock = yaml.safe_load((workspace / "dvc.lock").read_text())
        assert curated.metadata["dvc_md5"].value == lock["stages"]["curate"]["outs"][0]["md5"]
        assert "changed" not in DvcRepository().status()
        assert any((workspace / ".dvcstore").rglob("*")), "dvc push wrote nothing to the local remote"

        adapter = instance.get_latest_materialization_event(dg.AssetKey("lora_adapter")).asset_materialization
        assert adapter.metadata["validation_loss"].value < adapter.metadata["validation_loss_before"].value
        assert set(adapter.metadata["instructions"].value) == {"aclsum-approach", "aclsum-challenge", "aclsum-outcome"}

        again = run_all(instance, layout)
    assert not again["promoted"] and again["reasons"] == ["the candidate is already the champion"]
    assert again["champion_version"] == summary["champion_version"]
    assert len(list(layout.adapters.iterdir())) == 1, "the second run trained a new adapter for unchanged inputs"


def test_missing_raw_data_fails_with_the_fix(workspace):
    with dg.DagsterInstance.get() as instance, pytest.raises(ValueError, match="make demo"):
        run_all(instance, Layout(workspace), seed_embedded=False)


def test_cli_materializes_a_selection(workspace):
    """`dagster asset materialize --select` must parse (the antlr runtime trap in DESIGN.md)."""
    layout = Layout(workspace)
    place_aclsum(layout.raw, limit=12)
    with dg.DagsterInstance.get() as instance:
        register_sources(instance, layout)
    dagster = Path(sys.executable).with_name("dagster")
    done = subprocess.run(
        [str(dagster), "asset", "materialize", "-m", "pipelines.definitions", "-d", str(REPO),
         "--select", "key:raw_corpus or key:cleaned_corpus", "--partition", "aclsum-outcome"],
        capture_output=True, text=True, env=os.environ.copy(), timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert (layout.cleaned / "aclsum-outcome.jsonl").exists()
    assert not (layout.cleaned / "aclsum-challenge.jsonl").exists()
