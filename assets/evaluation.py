"""The evaluation report: base model, candidate adapter and current champion scored on the same test rows."""


from pathlib import Path

import dagster as dg

from resources import ModelRegistry, Workspace
from resources.registry import RegisteredAdapter
from tuneforge.atomic import atomic_directory
from tuneforge.corpus.records import file_md5, read_examples
from tuneforge.evaluation.report import (
    REPORT_MD,
    EvaluationReport,
    ModelUnderTest,
    evaluate,
    fixed_sample,
    render_markdown,
)
from tuneforge.evaluation.rouge import metric_spec
from tuneforge.fingerprint import fingerprint


@dg.asset(group_name="evaluation", kinds={"mlflow"})
def evaluation_report(
    context: dg.AssetExecutionContext,
    workspace: Workspace,
    registry: ModelRegistry,
    base_model: dict,
    lora_adapter: dict,
) -> dg.Output[dict]:
    """Greedy summaries of the test split by each model, scored with ROUGE-1/2/L/Lsum (stemmed)."""
    layout, profile = workspace.layout, workspace.load_profile()
    test_path = layout.curated / "test.jsonl"
    test_rows = read_examples(test_path)
    instructions = lora_adapter["instructions"]
    models = [
        ModelUnderTest("base", None, instructions),
        ModelUnderTest("candidate", Path(lora_adapter["path"]), instructions),
    ]
    champion = registry.champion()
    comparable = (
        champion is not None
        and champion.adapter_dir != lora_adapter["path"]
        and champion.tags.get("base_sha256") == base_model["sha256"]
        and Path(champion.adapter_dir).is_dir()
    )
    if comparable:
        models.append(ModelUnderTest("champion", Path(champion.adapter_dir), instructions))
    key = fingerprint(
        base=base_model["sha256"], test=file_md5(test_path), evaluation=profile.evaluation.model_dump(),
        metric=metric_spec(), models=[(m.label, str(m.adapter_dir)) for m in models],
    )
    report_dir = layout.reports / key
    if (report_dir / REPORT_MD).exists():
        context.log.info(f"reusing evaluation {report_dir}: the same models on the same test rows")
        report = EvaluationReport.load(report_dir)
    else:
        report = evaluate(Path(base_model["path"]), models, test_rows, profile.evaluation, log=context.log.info)
        sample = fixed_sample(test_rows, profile.evaluation.max_test_rows)
        with atomic_directory(report_dir) as staging:
            report.save(staging)
            (staging / REPORT_MD).write_text(render_markdown(report, sample))
    scores = {label: m.scores for label, m in report.models.items()}
    return dg.Output(
        {"path": str(report_dir), "scores": scores, "candidate": lora_adapter, "base_sha256": base_model["sha256"],
         "champion_version": champion.version if champion else None,
         "champion_recorded_score": _recorded_score(champion, profile.promotion.primary_metric)},
        metadata={
            "report": dg.MetadataValue.md((report_dir / REPORT_MD).read_text()),
            "path": dg.MetadataValue.path(str(report_dir / REPORT_MD)),
            "test_rows": report.test_rows,
            "sample": report.sample_note,
            **{f"{label}_{metric}": value for label, s in scores.items() for metric, value in s.items()},
            "metric_spec": dg.MetadataValue.json(report.metric),
        },
        data_version=dg.DataVersion(key),
    )


def _recorded_score(champion: RegisteredAdapter | None, metric: str) -> float | None:
    """The champion's score as recorded at its promotion, for when it cannot be re-evaluated on these rows."""
    if champion is None or metric not in champion.tags:
        return None
    return float(champion.tags[metric])
