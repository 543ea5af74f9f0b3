"""``promoted_model`` under each ``promotion.rollout``: a passing candidate becomes champion (direct), or the
registry's canary beside the champion (canary); the first model is always promoted directly."""

from __future__ import annotations

import dagster as dg
from serving_helpers import candidate

from resources import ModelRegistry, Workspace
from stages.evaluation.promotion import promoted_model
from tuneforge.evaluation.report import REPORT_HTML, REPORT_MD
from tuneforge.promotion import Outcome


def _evaluation(workspace, name: str, champion: str | None) -> tuple[dict, dict]:
    registered = candidate(workspace, name, None)
    report = workspace / "reports" / name
    report.mkdir(parents=True)
    for file in (REPORT_MD, REPORT_HTML):
        (report / file).write_text("report")
    card = registered.export_dir / "README.md"
    card.write_text("card")
    scores = {"candidate": {"rougeL": 30.0}, "base": {"rougeL": 20.0}}
    evaluation = {"outcome": Outcome.PROMOTE, "reasons": ["better"], "path": str(report), "scores": scores,
                  "intervals": {"candidate": {"rougeL": [28.0, 32.0]}, "base": {"rougeL": [18.0, 22.0]}},
                  "champion_version": champion, "promote": True,
                  "candidate": {"path": str(registered.adapter_dir), "fingerprint": name,
                                "instructions": {"abstract": "Summarize."}}}
    export = {"path": str(registered.export_dir), "base_model": "tiny", "dataset_version": "d1.dir",
              "card": str(card)}
    return evaluation, export


def _promote(workspace, name: str, champion: str | None) -> dict:
    evaluation, export = _evaluation(workspace, name, champion)
    output = promoted_model(dg.build_asset_context(partition_key="baseline"), workspace=Workspace(),
                            registry=ModelRegistry(), base_model={"sha256": "abc", "path": "unused"},
                            evaluation_report=evaluation, merged_export=export)
    return output.value


def test_canary_rollout_keeps_the_champion_and_starts_a_canary(workspace):
    (workspace / "tuneforge.yaml").write_text("promotion: {rollout: canary}\n")
    first = _promote(workspace, "first", None)  # no champion yet: promoted directly
    assert first["promoted"] and first["canary_version"] is None
    second = _promote(workspace, "second", first["champion_version"])
    assert not second["promoted"] and second["champion_version"] == first["champion_version"]
    assert second["canary_version"] is not None
    assert any("started canary version" in reason for reason in second["reasons"])
    champions = ModelRegistry().open()
    assert champions.canary().version == second["canary_version"]
    assert champions.champion().version == first["champion_version"]


def test_direct_rollout_promotes(workspace):
    first = _promote(workspace, "first", None)
    second = _promote(workspace, "second", first["champion_version"])
    assert second["promoted"] and second["canary_version"] is None
    assert ModelRegistry().open().canary() is None
