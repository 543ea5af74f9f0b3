"""The whole graph through Dagster on the smoke profile, in a temporary workspace.

The graph runs three times in one module-scoped workspace (fp32, fp32 again, then bf16); what each run left is read
right after it, and each test below asserts one behaviour of it, so a failure names what broke.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import dagster as dg
import pytest
import torch
import yaml
from conftest import enter_workspace, workspace_env
from safetensors.torch import load_file, save_file

import stages.evaluation.promotion as promotion_assets
from pipelines.demo import register_sources, run_all
from resources import DvcRepository, ModelRegistry
from tuneforge.corpus.aclsum import place_aclsum
from tuneforge.layout import Layout
from tuneforge.modeling.export import export_merged
from tuneforge.registry import RegisteredModel

REPO = Path(__file__).resolve().parents[1]
T = TypeVar("T")


def run_tuneforge_cli(*args: str) -> subprocess.CompletedProcess:
    """The installed ``tuneforge`` console script, as a user runs it."""
    return subprocess.run([str(Path(sys.executable).with_name("tuneforge")), *args], capture_output=True, text=True,
                          env=os.environ.copy(), timeout=120)


def curated_version(instance: dg.DagsterInstance) -> str:
    event = instance.get_latest_materialization_event(dg.AssetKey("curated_dataset"))
    return event.asset_materialization.tags["dagster/data_version"]


def latest(instance: dg.DagsterInstance, asset: str) -> dg.AssetMaterialization:
    return instance.get_latest_materialization_event(dg.AssetKey(asset)).asset_materialization


def outcome(read: Callable[[], T]) -> T | Exception:
    """What ``read()`` returns, or the exception it raised: the test asserting on it raises it, not the fixture."""
    try:
        return read()
    except Exception as error:  # noqa: BLE001 - handed to the one test it concerns
        return error


def value(result: T | Exception) -> T:
    if isinstance(result, Exception):
        raise result
    return result


@dataclass
class WholeGraph:
    """The three runs of the whole graph in one workspace, and what each left, read right after it."""

    root: Path
    layout: Layout
    # The first run, in fp32 (the scores asserted below are fp32's).
    summary: dict
    champion: RegisteredModel | None
    champion_export: Path  # where layout.champion_export pointed
    card: str
    report: dg.AssetMaterialization
    status: subprocess.CompletedProcess  # `tuneforge status --json`
    curated_version: str
    curated: dg.AssetMaterialization
    lock: dict  # dvc.lock
    dvc_status: str | Exception
    dvcstore: list[Path]
    adapter: dg.AssetMaterialization
    # The second run, nothing changed.
    again: dict
    adapters_after_again: list[str]
    # The third run, in bf16.
    bf16: dg.AssetMaterialization
    adapters_after_bf16: list[str]
    bf16_log: list[str]  # the messages of the bf16 run


@pytest.fixture(scope="module")
def graph(tmp_path_factory, smoke_base_models) -> Iterator[WholeGraph]:
    """The whole graph materialized in a fresh smoke workspace (the module-scoped `workspace`): in fp32, again in fp32
    with nothing changed, then in bf16 in the same process. The workspace's environment stays set for the tests."""
    root = tmp_path_factory.mktemp("pipeline") / "ws"
    with pytest.MonkeyPatch.context() as patch:
        enter_workspace(patch, root, workspace_env(root, smoke_base_models))
        layout = Layout(root)
        with pytest.MonkeyPatch.context() as precision, dg.DagsterInstance.get() as instance:
            precision.setenv("TUNEFORGE_PRECISION", "fp32")  # the scores asserted below are fp32's
            summary = run_all(instance, layout)
            first = dict(
                summary=summary,
                champion=ModelRegistry().open().champion(),
                champion_export=layout.champion_export.resolve(),
                card=(layout.champion_export / "README.md").read_text()
                if (layout.champion_export / "README.md").exists() else "",
                report=latest(instance, "evaluation_report"),
                status=run_tuneforge_cli("status", "--json"),
                curated_version=curated_version(instance),
                curated=latest(instance, "curated_dataset"),
                lock=yaml.safe_load((root / "dvc.lock").read_text()),
                dvc_status=outcome(lambda: DvcRepository().status()),
                dvcstore=list((root / ".dvcstore").rglob("*")),
                adapter=latest(instance, "lora_adapter"),
            )

            again = run_all(instance, layout)
            adapters_after_again = sorted(path.name for path in layout.adapters.iterdir())

            # Another precision is another adapter, trained in this same process (accelerate's state is not in the
            # way).
            precision.setenv("TUNEFORGE_PRECISION", "bf16")
            run_all(instance, layout)
            bf16 = latest(instance, "lora_adapter")
            adapters_after_bf16 = sorted(path.name for path in layout.adapters.iterdir())
            bf16_run = instance.get_latest_materialization_event(dg.AssetKey("lora_adapter")).run_id
            bf16_log = [entry.user_message for entry in instance.all_logs(bf16_run)]
        yield WholeGraph(root=root, layout=layout, **first, again=again, adapters_after_again=adapters_after_again,
                         bf16=bf16, adapters_after_bf16=adapters_after_bf16, bf16_log=bf16_log)


@pytest.mark.slow
@pytest.mark.e2e
class TestWholeGraph:
    def test_the_candidate_is_promoted_beating_the_base_model_inside_its_interval(self, graph: WholeGraph):
        summary = graph.summary
        assert summary["promoted"], summary["reasons"]
        assert summary["candidate"]["rougeL"] > summary["base"]["rougeL"]
        low, high = summary["intervals"]["candidate"]["rougeL"]
        assert low <= summary["candidate"]["rougeL"] <= high

    def test_the_registry_champion_is_the_promoted_version_with_its_adapter_and_export(self, graph: WholeGraph):
        champion = graph.champion
        assert champion is not None and champion.version == graph.summary["champion_version"]
        assert Path(champion.adapter_dir, "adapter_model.safetensors").exists()
        assert graph.champion_export == Path(champion.export_dir).resolve()
        assert (graph.champion_export / "model.safetensors").exists()

    def test_the_model_card_records_lineage_and_precision(self, graph: WholeGraph):
        assert graph.card, f"no model card at {graph.layout.champion_export / 'README.md'}"
        assert graph.champion is not None
        assert graph.champion.tags["base_sha256"] in graph.card and graph.champion.tags["dataset_version"] in graph.card
        assert "| precision | `fp32` |" in graph.card and "in fp32" in graph.card  # trained, and evaluated

    def test_the_evaluation_report_holds_both_models_a_chart_and_an_html_file(self, graph: WholeGraph):
        markdown = graph.report.metadata["report"].value
        assert "candidate" in markdown and "base" in markdown and "data:image/png;base64," in markdown
        assert Path(graph.report.metadata["html"].value).exists()

    def test_status_json_names_the_champion_its_dataset_version_and_score(self, graph: WholeGraph):
        assert graph.status.returncode == 0, graph.status.stderr[-3000:]
        status = json.loads(graph.status.stdout)
        assert graph.champion is not None
        assert status["champion"]["version"] == graph.champion.version
        assert status["champion"]["dataset_version"] == graph.curated_version
        assert status["champion"]["metrics"]["rougeL"]["mean"] == graph.summary["candidate"]["rougeL"]

    def test_dvc_locks_the_curated_dataset_has_nothing_changed_and_pushed(self, graph: WholeGraph):
        assert graph.curated.metadata["dvc_md5"].value == graph.lock["stages"]["curate"]["outs"][0]["md5"]
        assert "changed" not in value(graph.dvc_status)
        assert any(graph.dvcstore), "dvc push wrote nothing to the local remote"

    def test_the_adapter_lowered_validation_loss_and_records_each_sources_instruction(self, graph: WholeGraph):
        adapter = graph.adapter
        assert adapter.metadata["validation_loss"].value < adapter.metadata["validation_loss_before"].value
        assert set(adapter.metadata["instructions"].value) == {"aclsum-approach", "aclsum-challenge", "aclsum-outcome"}

    def test_a_second_run_with_nothing_changed_reuses_the_adapter_and_keeps_the_champion(self, graph: WholeGraph):
        again = graph.again
        assert not again["promoted"] and again["reasons"] == ["the candidate is already the champion"]
        assert again["champion_version"] == graph.summary["champion_version"]
        assert len(graph.adapters_after_again) == 1, (
            f"the second run trained a new adapter for unchanged inputs: {graph.adapters_after_again}")

    def test_a_bf16_run_trains_a_second_adapter_recording_its_precision(self, graph: WholeGraph):
        bf16 = graph.bf16
        assert bf16.metadata["precision"].value == "bf16" and not bf16.metadata["reused"].value
        assert bf16.metadata["hyperparameters"].value["precision"] == "bf16"
        assert bf16.metadata["fingerprint"].value != graph.adapter.metadata["fingerprint"].value
        assert len(graph.adapters_after_bf16) == 2, graph.adapters_after_bf16

    def test_the_log_says_why_the_adapter_was_trained_again(self, graph: WholeGraph):
        why = 'changed since the last adapter: training.precision: "fp32" -> "bf16"'
        assert any(why in message for message in graph.bf16_log), [m for m in graph.bf16_log if "adapter" in m]

    def test_the_bf16_training_run_records_its_precision_in_mlflow(self, graph: WholeGraph):
        run = ModelRegistry().open().client.get_run(graph.bf16.metadata["mlflow_run_id"].value)
        assert run.data.params["precision"] == "bf16" and run.data.tags["precision"] == "bf16"


@pytest.mark.slow
@pytest.mark.e2e
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


@pytest.mark.slow
@pytest.mark.e2e
def test_cli_materializes_a_selection(workspace):
    """`dagster asset materialize --select` must parse (dvc's hydra pulls the antlr 4.9 runtime; Dagster's
    selection parser needs the 4.13 that the Makefile installs over it)."""
    layout = Layout(workspace)
    place_aclsum(layout.raw, limit=12)
    with dg.DagsterInstance.get() as instance:
        register_sources(instance, layout)
    dagster = Path(sys.executable).with_name("dagster")
    done = subprocess.run(
        [str(dagster), "asset", "materialize", "-m", "stages.definitions", "-d", str(REPO),
         "--select", "key:raw_corpus or key:cleaned_corpus", "--partition", "aclsum-outcome"],
        capture_output=True, text=True, env=os.environ.copy(), timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert (layout.cleaned / "aclsum-outcome.jsonl").exists()
    assert not (layout.cleaned / "aclsum-challenge.jsonl").exists()
