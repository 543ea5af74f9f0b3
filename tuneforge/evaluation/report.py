"""Evaluate models on one fixed test sample and write the report (Markdown for people, JSON for machines)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tuneforge.corpus.records import Example
from tuneforge.evaluation.rouge import ROUGE_TYPES, mean_scores, mean_scores_by, metric_spec, score_examples
from tuneforge.profiles import EvaluationConfig

REPORT_JSON = "report.json"
REPORT_MD = "report.md"


@dataclass
class ModelUnderTest:
    label: str  # "base", "candidate", "champion"
    adapter_dir: Path | None
    instructions: dict[str, str]


@dataclass
class Comparison:
    """A paired comparison of two models' per-example scores on the same rows (``model`` minus ``against``)."""

    model: str
    against: str
    metric: str
    mean_difference: float
    interval: tuple[float, float]
    p_value: float  # one-sided: the chance of a difference this large if ``model`` were not better
    wins: int
    losses: int
    ties: int


@dataclass
class ModelScores:
    label: str  # "base", "candidate", "champion", or "lead" (the extractive baseline)
    adapter_dir: str | None
    scores: dict[str, float]  # metric -> mean over rows
    intervals: dict[str, tuple[float, float]]  # metric -> bootstrap confidence interval of the mean
    by_source: dict[str, dict[str, float]]  # source -> metric -> mean
    per_example: list[dict[str, float]]  # in the order of EvaluationReport.ids
    predictions: list[str]
    finished: list[bool]  # False where generation stopped at max_new_tokens
    lengths: dict[str, float]  # words per output: mean, median, min, max
    degenerate: dict[str, float]  # rates of empty, truncated, repetitive and any
    faithfulness: dict[str, float]  # unsupported_number_share, unsupported_entity_share
    safety: dict  # probes, flagged, rate, flagged_outputs [{probe, output, terms}]


def fixed_sample(rows: list[Example], limit: int | None) -> list[Example]:
    """A deterministic sample spread evenly over sources (round-robin in id-hash order)."""
    if limit is None or limit >= len(rows):
        return sorted(rows, key=lambda row: row.id)
    by_source: dict[str, list[Example]] = {}
    for row in sorted(rows, key=lambda r: hashlib.sha256(r.id.encode()).hexdigest()):
        by_source.setdefault(row.source, []).append(row)
    queues = [by_source[source] for source in sorted(by_source)]
    sample: list[Example] = []
    while len(sample) < limit:
        for queue in queues:
            if queue and len(sample) < limit:
                sample.append(queue.pop(0))
    return sorted(sample, key=lambda row: row.id)


def evaluate(
    base_dir: Path,
    models: list[ModelUnderTest],
    test_rows: list[Example],
    config: EvaluationConfig,
    log: Callable[[str], None] = print,
) -> EvaluationReport:
    from tuneforge.modeling.generate import Prompt, generate, load_for_inference

    if not test_rows:
        raise ValueError("the test split is empty; add data or raise split.test_share")
    sample = fixed_sample(test_rows, config.max_test_rows)
    note = (
        f"fixed sample of {len(sample)} of {len(test_rows)} test rows, spread evenly over sources"
        if len(sample) < len(test_rows) else f"all {len(sample)} test rows"
    )
    report = EvaluationReport(
        test_rows=len(sample), test_rows_available=len(test_rows), sample_note=note,
        metric=metric_spec(), ids=[row.id for row in sample],
    )
    references = [row.all_references for row in sample]
    for entry in models:
        log(f"generating {len(sample)} summaries with the {entry.label} model")
        model, tokenizer = load_for_inference(base_dir, entry.adapter_dir)
        prompts = [Prompt(entry.instructions.get(row.source, ""), row.document) for row in sample]
        predictions = generate(
            model, tokenizer, prompts, config.max_prompt_tokens, config.max_new_tokens, config.batch_size, log
        )
        per_example = score_examples(predictions, references)
        report.models[entry.label] = ModelScores(
            label=entry.label,
            adapter_dir=str(entry.adapter_dir) if entry.adapter_dir else None,
            scores=mean_scores(per_example),
            by_source=mean_scores_by(per_example, [row.source for row in sample]),
            per_example=per_example,
            predictions=predictions,
        )
    return report


def render_markdown(report: EvaluationReport, sample: list[Example], samples_shown: int = 3) -> str:
    labels = list(report.models)
    lines = [
        f"Evaluated on {report.sample_note}; ROUGE F1 x 100, stemmed ({report.metric['implementation']} "
        f"{report.metric['version']}).",
        "",
        "| model | " + " | ".join(ROUGE_TYPES) + " |",
        "|---|" + "---|" * len(ROUGE_TYPES),
    ]
    for label in labels:
        scores = report.models[label].scores
        lines.append(f"| {label} | " + " | ".join(f"{scores[m]:.2f}" for m in ROUGE_TYPES) + " |")
    sources = sorted(next(iter(report.models.values())).by_source) if report.models else []
    lines += ["", "ROUGE-L by source:", "", "| source | " + " | ".join(labels) + " |", "|---|" + "---|" * len(labels)]
    for source in sources:
        cells = " | ".join(f"{report.models[label].by_source[source]['rougeL']:.2f}" for label in labels)
        lines.append(f"| {source} | {cells} |")
    lines += ["", "Samples:", ""]
    for index, row in enumerate(sample[:samples_shown]):
        lines.append(f"- **{row.id}** reference: {row.summary}")
        for label in labels:
            lines.append(f"  - {label}: {report.models[label].predictions[index]}")
    return "\n".join(lines) + "\n"
