"""The promoted model: the candidate adapter becomes champion in the MLflow registry only if it wins."""


from pathlib import Path

import dagster as dg

from resources import ModelRegistry, Workspace
from tuneforge.promotion import decide


@dg.asset(group_name="promotion", kinds={"mlflow"})
def promoted_model(
    context: dg.AssetExecutionContext, workspace: Workspace, registry: ModelRegistry, evaluation_report: dict
) -> dg.Output[dict]:
    """The registry's ``champion`` alias: moved to the candidate when it beats the base model and the champion."""
    config = workspace.load_profile().promotion
    metric = config.primary_metric
    scores = evaluation_report["scores"]
    candidate = evaluation_report["candidate"]
    champion = registry.champion()
    if champion is not None and champion.adapter_dir == candidate["path"]:
        decision_promote, reasons = False, ["the candidate is already the champion"]
    else:
        champion_score = scores.get("champion", {}).get(metric, evaluation_report["champion_recorded_score"])
        decision = decide(metric, scores["candidate"][metric], scores["base"][metric], champion_score,
                          config.min_improvement)
        decision_promote, reasons = decision.promote, decision.reasons
        if decision.promote:
            registry.promote(
                Path(candidate["path"]),
                params={"fingerprint": candidate["fingerprint"], **candidate["instructions"]},
                metrics={f"{label}_{name}": value for label, s in scores.items() for name, value in s.items()},
                tags={metric: str(scores["candidate"][metric]), "base_sha256": evaluation_report["base_sha256"],
                      "report": evaluation_report["path"]},
            )
    for reason in reasons:
        context.log.info(reason)
    champion_after = registry.champion()
    summary = {
        "promoted": decision_promote,
        "reasons": reasons,
        "champion_version": champion_after.version if champion_after else None,
        "champion_adapter": champion_after.adapter_dir if champion_after else None,
        "candidate": scores["candidate"],
        "base": scores["base"],
    }
    return dg.Output(
        summary,
        metadata={
            "promoted": decision_promote,
            "decision": dg.MetadataValue.md("\n".join(f"- {reason}" for reason in reasons)),
            "registered_model": registry.model_name,
            "champion_version": str(summary["champion_version"]),
            "champion_adapter": dg.MetadataValue.path(str(summary["champion_adapter"])),
            f"candidate_{metric}": scores["candidate"][metric],
            f"base_{metric}": scores["base"][metric],
        },
        data_version=dg.DataVersion(f"{summary['champion_version']}"),
    )
