"""The whole graph through Dagster on the smoke profile, in a temporary workspace."""

import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
import torch
import yaml
from safetensors.torch import load_file, save_file

import assets.promotion as promotion_assets
from pipelines.demo import register_sources, run_all
from resources import DvcRepository, ModelRegistry
from tuneforge.corpus.aclsum import place_aclsum
from tuneforge.layout import Layout
from tuneforge.modeling.export import export_merged

REPO = Path(__file__).resolve().parents[1]


def tuneforge_cli(*args: str) -> str:
    """The installed ``tuneforge`` console script, as a user runs it."""
    done = subprocess.run([str(Path(sys.executable).with_name("tuneforge")), *args], capture_output=True, text=True,
                          env=os.environ.copy(), timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def curated_version(instance: dg.DagsterInstance) -> str:
    event = instance.get_latest_materialization_event(dg.AssetKey("curated_dataset"))
    return event.asset_materialization.tags["dagster/data_version"]


def test_whole_graph_materializes_promotes_and_versions_data(workspace, monkeypatch):
    monkeypatch.setenv("TUNEFORGE_PRECISION", "fp32")  # the scores asserted below are fp32's
    layout = Layout(workspace)
    with dg.DagsterInstance.get() as instance:
        summary = run_all(instance, layout)

        assert summary["promoted"], summary["reasons"]
        assert summary["candidate"]["rougeL"] > summary["base"]["rougeL"]
        low, high = summary["intervals"]["candidate"]["rougeL"]
        assert low <= summary["candidate"]["rougeL"] <= high
        champion = ModelRegistry().open().champion()
        assert champion is not None and champion.version == summary["champion_version"]
        assert Path(champion.adapter_dir, "adapter_model.safetensors").exists()
        assert layout.champion_export.resolve() == Path(champion.export_dir).resolve()
        assert (layout.champion_export / "model.safetensors").exists()
        card = (layout.champion_export / "README.md").read_text()
        assert champion.tags["base_sha256"] in card and champion.tags["dataset_version"] in card
        assert "| precision | `fp32` |" in card and "in fp32" in card  # trained, and evaluated

        report = instance.get_latest_materialization_event(dg.AssetKey("evaluation_report")).asset_materialization
        markdown = report.metadata["report"].value
        assert "candidate" in markdown and "base" in markdown and "data:image/png;base64," in markdown
        assert Path(report.metadata["html"].value).exists()
        status = json.loads(tuneforge_cli("status", "--json"))
        assert status["champion"]["version"] == champion.version
        assert status["champion"]["dataset_version"] == curated_version(instance)
        assert status["champion"]["metrics"]["rougeL"]["mean"] == summary["candidate"]["rougeL"]

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

        # Another precision is another adapter, trained in this same process (accelerate's state is not in the way).
        monkeypatch.setenv("TUNEFORGE_PRECISION", "bf16")
        run_all(instance, layout)
        bf16 = instance.get_latest_materialization_event(dg.AssetKey("lora_adapter")).asset_materialization
        assert bf16.metadata["precision"].value == "bf16" and not bf16.metadata["reused"].value
        assert bf16.metadata["hyperparameters"].value["precision"] == "bf16"
        assert bf16.metadata["fingerprint"].value != adapter.metadata["fingerprint"].value
        assert len(list(layout.adapters.iterdir())) == 2
        run = ModelRegistry().open().client.get_run(bf16.metadata["mlflow_run_id"].value)
        assert run.data.params["precision"] == "bf16" and run.data.tags["precision"] == "bf16"


def test_an_export_that_differs_from_the_adapter_is_never_promoted(workspace, monkeypatch):
    """The merged weights are corrupted after export: the parity check blocks promotion; nothing is registered."""

    def export_then_corrupt(base_dir, adapter_dir, out_dir, log=print):
        result = export_merged(base_dir, adapter_dir, out_dir, log)
        weights = out_dir / "model.safetensors"
        tensors = load_file(weights)
        name = next(key for key in tensors if "embed_tokens" in key)
        tensors[name] = torch.randn_like(tensors[name])
        save_file(tensors, weights, metadata={"format": "pt"})
        return result

    monkeypatch.setattr(promotion_assets, "export_merged", export_then_corrupt)
    layout = Layout(workspace)
    with dg.DagsterInstance.get() as instance:
        summary = run_all(instance, layout)
    assert not summary["promoted"] and summary["blocked_by"] == ["export_parity"], summary["reasons"]
    assert any("export_parity" in reason for reason in summary["reasons"])
    registry = ModelRegistry().open()
    assert registry.champion() is None and registry.versions() == []
    assert not layout.champion_export.exists()


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
