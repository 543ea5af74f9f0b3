"""Promotion: the candidate that passed the gate is merged into full weights, checked for parity with adapter
inference (a blocking check), and then made champion in the MLflow registry."""

import json
from pathlib import Path

import dagster as dg

from resources import ModelRegistry, Workspace
from stages.automation import FOLLOW_PASSING_INPUTS, MODEL_FRESHNESS
from stages.data.assets import curated_data_version
from stages.model.assets import experiments
from tuneforge.atomic import write_text_atomically
from tuneforge.corpus.curate import MANIFEST_FILE
from tuneforge.corpus.records import read_examples
from tuneforge.evaluation.budget import resolve_generation_budget, with_budget
from tuneforge.evaluation.report import REPORT_HTML, REPORT_MD, EvaluationReport
from tuneforge.evaluation.summary import ScoreTable
from tuneforge.model_card import ModelLineage, render_model_card
from tuneforge.modeling.export import check_parity, export_merged, load_export_result
from tuneforge.modeling.generate import Prompt
from tuneforge.modeling.records import load_training_result
from tuneforge.promotion import Outcome
from tuneforge.registry import Candidate, ChampionChanged

EXPORT_PARITY = "export_parity"
MODEL_CARD = "README.md"


@dg.asset(
    group_name="promotion",
    kinds={"safetensors"},
    partitions_def=experiments,
    automation_condition=FOLLOW_PASSING_INPUTS,
    check_specs=[dg.AssetCheckSpec(EXPORT_PARITY, asset="merged_export", blocking=True,
                                   description="Greedy outputs of the merged weights equal adapter inference.")],
)
def merged_export(context: dg.AssetExecutionContext, workspace: Workspace, base_model: dict, evaluation_report: dict):
    """The candidate's LoRA weights merged into the base model: full safetensors weights, tokenizer and model card."""
    layout, profile = workspace.layout, workspace.load_profile()
    adapter = evaluation_report["candidate"]
    adapter_dir, base_dir = Path(adapter["path"]), Path(base_model["path"])
    export_dir = layout.exports / adapter["fingerprint"]
    exported = load_export_result(export_dir)
    if exported is None:
        exported = export_merged(base_dir, adapter_dir, export_dir, log=context.log.info)
    else:
        context.log.info(f"reusing merged export {export_dir}")

    test_rows = {row.id: row for row in read_examples(layout.curated / "test.jsonl")}
    probes = [test_rows[row_id] for row_id in evaluation_report["ids"][: profile.promotion.parity_probes]]
    evaluation = profile.evaluation.model_copy(update={
        "max_new_tokens": evaluation_report["max_new_tokens"],
        "max_prompt_tokens": evaluation_report.get("max_prompt_tokens") or profile.evaluation.max_prompt_tokens})
    if evaluation.max_prompt_tokens is None:  # a report from before prompt lengths were recorded: learn it now
        evaluation = with_budget(evaluation, resolve_generation_budget(
            evaluation, base_dir, layout.curated / "train.jsonl", adapter["instructions"].values()))
    prompts = [Prompt(adapter["instructions"][row.source], row.document) for row in probes]
    parity = check_parity(
        base_dir, adapter_dir, export_dir, prompts, evaluation.max_prompt_tokens, evaluation.max_new_tokens,
        evaluation.batch_size, log=context.log.info,
    )
    lineage = _lineage(context, profile, base_model, adapter, evaluation_report, layout)
    card = render_model_card(lineage)
    write_text_atomically(export_dir / MODEL_CARD, card)
    yield dg.Output(
        {"path": str(export_dir), "parity": parity.passed, "card": str(export_dir / MODEL_CARD),
         "base_model": lineage.base_model, "dataset_version": lineage.dataset_version},
        metadata={
            "export_dir": dg.MetadataValue.path(str(export_dir)),
            "size_mb": round(exported.size_bytes / 1e6, 1),
            "parameters": exported.parameters,
            "files": dg.MetadataValue.json({f.name: f.sha256 for f in exported.files}),
            "model_card": dg.MetadataValue.md(card),
        },
        data_version=dg.DataVersion(adapter["fingerprint"]),
    )
    yield dg.AssetCheckResult(
        check_name=EXPORT_PARITY,
        passed=parity.passed,
        severity=dg.AssetCheckSeverity.ERROR,
        description=f"{parity.matches}/{parity.total} probe outputs identical",
        metadata={
            "matches": parity.matches,
            "probes": parity.total,
            "max_first_step_logit_difference": parity.max_logit_difference,
            "mismatches": dg.MetadataValue.json([dict(m) for m in parity.mismatches]),
        },
    )


@dg.asset(group_name="promotion", kinds={"mlflow"}, partitions_def=experiments,
          automation_condition=FOLLOW_PASSING_INPUTS, freshness_policy=MODEL_FRESHNESS)
def promoted_model(
    context: dg.AssetExecutionContext,
    workspace: Workspace,
    registry: ModelRegistry,
    base_model: dict,
    evaluation_report: dict,
    merged_export: dict,
) -> dg.Output[dict]:
    """The registry's ``champion`` alias, moved to the candidate (the former champion keeps ``previous``); with
    ``promotion.rollout: canary``, the ``canary`` alias instead, the champion staying until ``tuneforge canary
    promote``."""
    champions = registry.open()
    candidate = evaluation_report["candidate"]
    reasons, promoted, canary = list(evaluation_report["reasons"]), False, None
    if evaluation_report["outcome"] == Outcome.PROMOTE:
        report_dir = Path(evaluation_report["path"])
        scores = evaluation_report["scores"]
        registered = Candidate(
            adapter_dir=Path(candidate["path"]),
            export_dir=Path(merged_export["path"]),
            params={"fingerprint": candidate["fingerprint"], **candidate["instructions"]},
            metrics=ScoreTable.from_means(scores, evaluation_report["intervals"]).flatten(),
            tags={"base_sha256": base_model["sha256"], "base_model": merged_export["base_model"],
                  "dataset_version": str(merged_export["dataset_version"]), "report": str(report_dir),
                  "run_id": context.run_id,
                  **{name: str(value) for name, value in scores["candidate"].items()}},
            artifacts=[report_dir / REPORT_MD, report_dir / REPORT_HTML, Path(merged_export["card"])],
            prompts=candidate.get("prompts", {}),
        )
        expected = evaluation_report["champion_version"]
        try:
            if workspace.load_profile().promotion.rollout == "canary" and expected is not None:
                canary = champions.start_canary(registered, expected_champion=expected)
                reasons.append(f"started canary version {canary} beside champion version {expected}: it answers "
                               "serving.canary_share of served requests; compare them with `tuneforge canary report`, "
                               "then `tuneforge canary promote` or `tuneforge canary stop`")
            else:
                champions.promote(registered, expected_champion=expected)
                promoted = True
        except ChampionChanged as race:
            reasons.append(f"refused: {race}")
    for reason in reasons:
        context.log.info(reason)
    champion = champions.champion()
    summary = {
        "promoted": promoted,
        "reasons": reasons,
        "champion_version": champion.version if champion else None,
        "champion_adapter": champion.adapter_dir if champion else None,
        "champion_export": champion.export_dir if champion else None,
        "canary_version": canary,
        "candidate": evaluation_report["scores"]["candidate"],
        "base": evaluation_report["scores"]["base"],
        "intervals": evaluation_report["intervals"],
    }
    return dg.Output(
        summary,
        metadata={
            "promoted": promoted,
            "decision": dg.MetadataValue.md("\n".join(f"- {reason}" for reason in reasons)),
            "registered_model": registry.model_name,
            "champion_version": str(summary["champion_version"]),
            "canary_version": str(summary["canary_version"]),
            "champion_export": dg.MetadataValue.path(str(summary["champion_export"])),
        },
        data_version=dg.DataVersion(str(summary["champion_version"]) + (f"+canary{canary}" if canary else "")),
    )


def _lineage(context, profile, base_model: dict, adapter: dict, evaluation_report: dict, layout) -> ModelLineage:
    manifest_path = layout.curated / MANIFEST_FILE
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    dataset_version = curated_data_version(context.instance)
    training = load_training_result(Path(adapter["path"]))
    report = EvaluationReport.load(Path(evaluation_report["path"]))
    return ModelLineage(
        name=f"{profile.base_model.name} + tuneforge LoRA {adapter['fingerprint'][:12]}",
        base_model=profile.base_model.name,
        base_model_sha256=base_model["sha256"],
        base_model_license=profile.base_model.license,
        dataset_version=dataset_version,
        split_sizes=manifest.get("sizes", {}),
        erasures=manifest.get("erasures", []),
        cleaning_funnel=manifest.get("funnel", []),
        hyperparameters=training.config if training else {},
        instructions=adapter["instructions"],
        prompts=adapter.get("prompts", {}),
        metrics={label: {metric: (m.scores[metric], *m.intervals[metric]) for metric in m.scores}
                 for label, m in report.models.items()},
        confidence=profile.evaluation.confidence,
        primary_metric=profile.promotion.primary_metric,
        promoted=evaluation_report["promote"] or None,
        decision_reasons=evaluation_report["reasons"],
        test_rows=report.test_rows,
        sources=sorted(set(report.sources)),
        languages=profile.cleaning.languages,
        faithfulness={label: m.faithfulness for label, m in report.models.items()},
        degenerate={label: m.degenerate for label, m in report.models.items()},
        safety={label: m.safety for label, m in report.models.items()},
        decoding=report.metric.get("decoding", {}),
        max_new_tokens=report.metric.get("max_new_tokens"),
        evaluation_precision=report.metric.get("precision"),
    )
