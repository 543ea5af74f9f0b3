"""The evaluation report, and the promotion gate as its blocking check: nothing downstream of a refused candidate
runs."""

from pathlib import Path

import dagster as dg

from resources import ModelRegistry, Workspace
from resources.compute import GPU_POOL
from stages.automation import FOLLOW_PASSING_INPUTS
from stages.model.assets import experiments
from tuneforge.atomic import atomic_directory
from tuneforge.corpus.records import read_examples
from tuneforge.evaluation.bias import load_bias_probes
from tuneforge.evaluation.budget import resolve_generation_budget, with_budget
from tuneforge.evaluation.metrics import metric_spec
from tuneforge.evaluation.render import render_html, render_markdown
from tuneforge.evaluation.report import REPORT_HTML, REPORT_JSON, REPORT_MD, EvaluationReport, ModelUnderTest, evaluate
from tuneforge.evaluation.safety import load_probes
from tuneforge.evaluation.summary import ScoreTable, mlflow_metrics
from tuneforge.fingerprint import fingerprint
from tuneforge.hashing import file_digest
from tuneforge.profiles import VARIANT_PREFIX, variant_instructions
from tuneforge.promotion import decide, is_champion, is_comparable

PROMOTION_GATE = "promotion_gate"


@dg.asset(
    group_name="evaluation",
    kinds={"mlflow"},
    partitions_def=experiments,
    pool=GPU_POOL,
    automation_condition=FOLLOW_PASSING_INPUTS,  # a new adapter is evaluated
    check_specs=[dg.AssetCheckSpec(
        PROMOTION_GATE, asset="evaluation_report", blocking=True,
        description="The candidate beats the champion significantly and regresses no guard.",
    )],
)
def evaluation_report(
    context: dg.AssetExecutionContext,
    workspace: Workspace,
    registry: ModelRegistry,
    base_model: dict,
    lora_adapter: dict,
):
    """Summaries of a fixed test sample by the candidate, the base model, the champion and a lead baseline: ROUGE
    with bootstrap intervals and paired tests, slices, lengths, degenerate outputs, faithfulness and safety probes."""
    layout, profile = workspace.layout, workspace.load_profile()
    champions = registry.open()
    test_path = layout.curated / "test.jsonl"
    test_rows = read_examples(test_path)
    instructions = lora_adapter["instructions"]
    models = [
        ModelUnderTest("base", None, instructions),
        *(ModelUnderTest(VARIANT_PREFIX + name, None, variant_instructions(variant, instructions))
          for name, variant in sorted(profile.evaluation.prompt_variants.items())),
        ModelUnderTest("candidate", Path(lora_adapter["path"]), instructions),
    ]
    champion = champions.champion()
    if not is_champion(champion, lora_adapter["path"]) and is_comparable(champion, base_model["sha256"]):
        champion_adapter = champions.local_adapter(champion)  # None when gone from disk and MLflow alike
        if champion_adapter is not None:
            models.append(ModelUnderTest("champion", champion_adapter, instructions))
    budget = resolve_generation_budget(profile.evaluation, Path(base_model["path"]), layout.curated / "train.jsonl",
                                       [text for m in models for text in m.instructions.values()])
    evaluation = with_budget(profile.evaluation, budget)
    context.log.info(f"prompts of at most {budget.max_prompt_tokens} tokens ({budget.prompt_from}); at most "
                     f"{budget.max_new_tokens} new tokens per summary ({budget.learned_from})")
    key = fingerprint(
        base=base_model["sha256"], test=file_digest(test_path, "md5"), evaluation=evaluation.model_dump(),
        metric=metric_spec(), models=[(m.label, str(m.adapter_dir)) for m in models],
        pii=profile.cleaning.pii.model_dump(), probes=load_probes().sha256, bias_probes=load_bias_probes().sha256,
    )
    report_dir = layout.reports / key
    if (report_dir / REPORT_JSON).exists():
        context.log.info(f"reusing evaluation {report_dir}: the same models on the same test rows")
        report = EvaluationReport.load(report_dir)
    else:
        report = evaluate(Path(base_model["path"]), models, test_rows, evaluation, log=context.log.info,
                          pii=profile.cleaning.pii)
        rows = {row.id: row for row in test_rows}
        metric, shown = profile.promotion.primary_metric, profile.evaluation.samples_shown
        with atomic_directory(report_dir) as staging:
            report.save(staging)
            (staging / REPORT_MD).write_text(render_markdown(report, rows, metric, shown))
            (staging / REPORT_HTML).write_text(render_html(report, rows, metric, shown))
        champions.log_evaluation(
            f"evaluate-{Path(lora_adapter['path']).name}",
            params={"report": str(report_dir), "adapter": lora_adapter["path"], "test_rows": str(report.test_rows)},
            metrics=mlflow_metrics(report),
            artifacts=[report_dir / REPORT_MD, report_dir / REPORT_HTML, report_dir / REPORT_JSON],
        )

    decision = decide(report, profile.promotion, champion)
    reasons = decision.reasons
    for reason in reasons:
        context.log.info(reason)
    yield dg.Output(
        {"path": str(report_dir), "scores": {label: m.scores for label, m in report.models.items()},
         "intervals": {label: m.intervals for label, m in report.models.items()},
         "candidate": lora_adapter, "base": {k: base_model[k] for k in ("path", "sha256")},
         "champion_version": champion.version if champion else None, "outcome": str(decision.outcome),
         "promote": decision.promote, "reasons": reasons, "ids": report.ids,
         "max_new_tokens": budget.max_new_tokens, "max_prompt_tokens": budget.max_prompt_tokens},
        metadata={
            "report": dg.MetadataValue.md((report_dir / REPORT_MD).read_text()),
            "html": dg.MetadataValue.path(str(report_dir / REPORT_HTML)),
            "test_rows": report.test_rows,
            "sample": report.sample_note,
            **ScoreTable.from_report(report).flatten(bounds=False),
            "metric_spec": dg.MetadataValue.json(report.metric),
            "max_new_tokens": budget.max_new_tokens,
            "max_new_tokens_from": budget.learned_from,
            "max_prompt_tokens": budget.max_prompt_tokens,
            "max_prompt_tokens_from": budget.prompt_from,
        },
        data_version=dg.DataVersion(key),
    )
    yield dg.AssetCheckResult(
        check_name=PROMOTION_GATE,
        passed=decision.passed,
        severity=dg.AssetCheckSeverity.ERROR,
        description="; ".join(reasons),
        metadata={
            "decision": str(decision.outcome),
            "compared_with": decision.against,
            "reasons": dg.MetadataValue.md("\n".join(f"- {reason}" for reason in reasons)),
        },
    )
