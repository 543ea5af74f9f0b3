"""Monitoring: has the raw data drifted from the training data, and does the champion still score what it did?

Both assets read files and the registry, not other assets' outputs, so they can run on their own every night and
stay out of the selections built from the data assets' downstream.
"""

import dagster as dg

from resources import ModelRegistry, Workspace
from tuneforge.monitoring import champion_check
from tuneforge.monitoring.drift import DriftReport, measure_drift, render_markdown

DRIFT_CHECK = "drift_within_threshold"


@dg.asset(
    group_name="monitoring",
    check_specs=[dg.AssetCheckSpec(
        DRIFT_CHECK, asset="raw_data_drift",
        description="Document length, vocabulary and language mix of the raw data are within the drift thresholds "
                    "of the training data (a warning: it does not block anything).",
    )],
)
def raw_data_drift(context: dg.AssetExecutionContext, workspace: Workspace) -> dg.MaterializeResult:
    """The raw sources (data/raw) against the training split (data/curated/train.jsonl): length KS and PSI, OOV rate,
    unigram Jensen-Shannon divergence and language mix, overall and per source."""
    layout, profile = workspace.layout, workspace.load_profile()
    config = profile.drift
    report = measure_drift(layout.raw, layout.curated / "train.jsonl", config)
    table = render_markdown(report)
    context.log.info(table.splitlines()[0])
    return dg.MaterializeResult(
        metadata={
            "drifted": report.drifted,
            "measures": dg.MetadataValue.md(table),
            "training_rows": report.training_rows,
            "training_sampled": report.training_sampled,
            "raw_rows": report.raw_rows,
            "raw_sampled": report.raw_sampled,
            "languages": dg.MetadataValue.json(report.languages),
            **_values(report),
            "report": dg.MetadataValue.json(report.as_dict()),
        },
        check_results=[dg.AssetCheckResult(
            check_name=DRIFT_CHECK,
            passed=not report.drifted,
            severity=dg.AssetCheckSeverity.WARN,
            description=("drift: " + ", ".join(report.drifted_measures())) if report.drifted
            else "no measure beyond its threshold",
            metadata={
                "drifted_measures": ", ".join(report.drifted_measures()) or "none",
                **_values(report),
                **{f"{m.name}_threshold": m.threshold for m in report.measures},
                "by_source": dg.MetadataValue.json({
                    s.source: {m.name: m.value for m in s.measures} | {"drifted": s.drifted}
                    for s in report.sources.values()
                }),
            },
        )],
    )


def _values(report: DriftReport) -> dict[str, float]:
    """Each overall measure as a number, so the UI plots it across materializations."""
    return {m.name: m.value for m in report.measures if m.value is not None}


@dg.asset(group_name="monitoring", kinds={"mlflow"})
def champion_monitor(
    context: dg.AssetExecutionContext, workspace: Workspace, registry: ModelRegistry
) -> dg.MaterializeResult:
    """The champion re-evaluated on the current test split, next to the figures it was promoted with."""
    check = champion_check.check_champion(registry.open(), workspace.layout, workspace.load_profile(),
                                          log=context.log.info)
    context.log.info(check.summary)
    metadata = {"status": check.status, "summary": check.summary}
    if check.version is not None:
        metadata |= {"champion_version": check.version, "metric": check.metric}
    if check.status == champion_check.EVALUATED:
        score, recorded = check.score, check.recorded_score
        metadata |= {
            "scores": dg.MetadataValue.md(champion_check.render_markdown(check)),
            "evaluated": check.evaluated,
            "test_rows": check.test_rows,
            "test_rows_available": check.test_rows_available,
            "same_test_rows": str(check.same_rows) if check.same_rows is not None else "unknown",
            "below_recorded": check.below_recorded,
            "safety_flag_rate": check.safety_flag_rate,
            **({"score": score[0], "score_low": score[1], "score_high": score[2]} if score else {}),
            **({"recorded_score": recorded[0], "recorded_low": recorded[1], "recorded_high": recorded[2]}
               if recorded else {}),
        }
    return dg.MaterializeResult(metadata=metadata)
