"""Evaluate models on one fixed test sample and write the report (Markdown for people, JSON for machines)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from tuneforge.corpus.ngrams import words
from tuneforge.corpus.records import Example
from tuneforge.evaluation.bias import counterfactual_gaps, load_bias_probes
from tuneforge.evaluation.metrics import (
    mean_scores,
    mean_scores_by,
    metric_spec,
    score_examples,
    scored_metrics,
)
from tuneforge.evaluation.output_checks import degenerate_rates, faithfulness, lead_summary, length_stats
from tuneforge.evaluation.safety import SafetyProbeSet, load_probes, scan
from tuneforge.evaluation.stats import bootstrap_interval, paired_comparison
from tuneforge.profiles import VARIANT_PREFIX, EvaluationConfig, PiiConfig

if TYPE_CHECKING:
    from tuneforge.pii.redactor import Redactor

REPORT_JSON = "report.json"
REPORT_MD = "report.md"
REPORT_HTML = "report.html"


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
    faithfulness: dict[str, float]  # unsupported_number_share, unsupported_entity_share, pii_leak_rate
    safety: dict  # probes, flagged, rate, flagged_outputs [{probe, output, terms}]
    bias: dict = field(default_factory=dict)  # counterfactual pairs, differing, rate, by_axis, examples (bias.py)
    judge: dict = field(default_factory=dict)  # the LLM judge's scores, with its model and prompt (judge.py)


@dataclass
class EvaluationReport:
    test_rows: int
    test_rows_available: int
    sample_note: str
    metric: dict
    models: dict[str, ModelScores] = field(default_factory=dict)
    ids: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)  # of each row in ids
    reference_lengths: list[int] = field(default_factory=list)  # words of each row's first reference
    comparisons: list[Comparison] = field(default_factory=list)
    # The faithfulness proxies of the reference summaries themselves: how much the data's own summaries add to their
    # documents (titles naming a method the abstract does not, notes adding a date), the level a model trained on
    # them is not faulted for.
    reference_faithfulness: dict[str, float] = field(default_factory=dict)

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / REPORT_JSON).write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, directory: Path) -> EvaluationReport:
        data = json.loads((directory / REPORT_JSON).read_text())
        data["models"] = {label: ModelScores(**scores) for label, scores in data["models"].items()}
        data["comparisons"] = [Comparison(**comparison) for comparison in data["comparisons"]]
        return cls(**data)


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
    pii: PiiConfig | None = None,
) -> EvaluationReport:
    """Generate with every model on one fixed sample and the safety probes, score, and compare them pairwise.
    Outputs are scanned for personal data and secrets with the cleaning step's detectors (``pii``, its defaults when
    None)."""
    from tuneforge.modeling.generate import Prompt, generate, load_for_inference
    from tuneforge.pii.redactor import redactor_for

    if not test_rows:
        raise ValueError("the test split is empty; add data or raise split.test_share")
    if config.max_new_tokens is None or config.max_prompt_tokens is None:
        raise ValueError("evaluation.max_new_tokens or max_prompt_tokens is unresolved: pass the config through "
                         "tuneforge.evaluation.budget.resolve_generation_budget first")
    sample = fixed_sample(test_rows, config.max_test_rows)
    note = (
        f"fixed sample of {len(sample)} of {len(test_rows)} test rows, spread evenly over sources"
        if len(sample) < len(test_rows) else f"all {len(sample)} test rows"
    )
    probes, bias_probes = load_probes(), load_bias_probes()
    report = EvaluationReport(
        test_rows=len(sample), test_rows_available=len(test_rows), sample_note=note,
        metric={**metric_spec(), "interval": f"{config.confidence:.0%} bootstrap of the mean, "
                f"{config.bootstrap_resamples} resamples", "decoding": config.decoding.model_dump(),
                "precision": config.precision, "max_new_tokens": config.max_new_tokens,
                "max_prompt_tokens": config.max_prompt_tokens,
                "safety_probes": probes.version, "bias_probes": bias_probes.version,
                **({"judge": {"model": config.judge.model, "base_url": config.judge.base_url}}
                   if config.judge.enabled else {})},
        ids=[row.id for row in sample], sources=[row.source for row in sample],
        reference_lengths=[len(words(row.summary)) for row in sample],
        reference_faithfulness=faithfulness([row.summary for row in sample], [row.document for row in sample]),
    )
    lead = [lead_summary(row.document, config.lead_sentences) for row in sample]
    # The cleaning step's detectors and settings: `ner: all` would read Title Case outputs as names.
    redactor = redactor_for(pii or PiiConfig())
    report.models["lead"] = score_model("lead", None, lead, [True] * len(lead), sample, None, probes, config,
                                        redactor)
    for entry in models:
        log(f"generating {len(sample)} summaries, {len(probes.probes)} safety probes and {bias_probes.prompts} "
            f"counterfactual bias probes with the {entry.label} model")
        model, tokenizer = load_for_inference(base_dir, entry.adapter_dir)
        prompts = [Prompt(entry.instructions.get(row.source, ""), row.document) for row in sample]
        prompts += [Prompt(probe.instruction, probe.document) for probe in probes.probes]
        prompts += [Prompt(bias_probes.instruction, document) for probe in bias_probes.probes
                    for document in probe.documents()]
        outputs = generate(model, tokenizer, prompts, config.max_prompt_tokens, config.max_new_tokens,
                           config.batch_size, log, config.decoding, precision=config.precision,
                           batch_tokens=config.batch_tokens)
        safety_end = len(sample) + len(probes.probes)
        summaries, probe_outputs, bias_outputs = outputs[: len(sample)], outputs[len(sample):safety_end], \
            outputs[safety_end:]
        report.models[entry.label] = score_model(
            entry.label, entry.adapter_dir, [o.text for o in summaries], [o.finished for o in summaries], sample,
            [o.text for o in probe_outputs], probes, config, redactor,
            bias=counterfactual_gaps([o.text for o in bias_outputs], bias_probes),
        )
    if config.judge.enabled:
        from tuneforge.evaluation.judge import judge_scores

        documents = [row.document for row in sample]
        for label, scores in report.models.items():
            log(f"judging the {label} model's {len(sample)} summaries with {config.judge.model}")
            scores.judge = judge_scores(config, documents, scores.predictions)
    report.comparisons = compare_all(report, config)
    return report


def score_model(
    label: str,
    adapter_dir: Path | None,
    predictions: list[str],
    finished: list[bool],
    sample: list[Example],
    probe_outputs: list[str] | None,
    probes: SafetyProbeSet,
    config: EvaluationConfig,
    redactor: Redactor | None = None,
    bias: dict | None = None,
) -> ModelScores:
    per_example = score_examples(predictions, [row.all_references for row in sample])
    intervals = {
        metric: bootstrap_interval([s[metric] for s in per_example], config.confidence, config.bootstrap_resamples,
                                   config.seed)
        for metric in scored_metrics(per_example)
    }
    safety = ({"probes": 0, "flagged": 0, "rate": 0.0, "flagged_outputs": []} if probe_outputs is None
              else scan(probe_outputs, probes, redactor))
    return ModelScores(
        label=label,
        adapter_dir=str(adapter_dir) if adapter_dir else None,
        scores=mean_scores(per_example),
        intervals=intervals,
        by_source=mean_scores_by(per_example, [row.source for row in sample]),
        per_example=per_example,
        predictions=predictions,
        finished=finished,
        lengths=length_stats(predictions),
        degenerate=degenerate_rates(predictions, finished, config.repeated_ngram),
        faithfulness=faithfulness(predictions, [row.document for row in sample], redactor),
        safety=safety,
        bias=bias or {},
    )


def compare_all(report: EvaluationReport, config: EvaluationConfig) -> list[Comparison]:
    """The candidate against every other model (prompt variants of the base model included), and the champion against
    the base model, on every metric."""
    variants = sorted(label for label in report.models if label.startswith(VARIANT_PREFIX))
    pairs = [("candidate", other) for other in ("champion", "base", "lead", *variants)] + [("champion", "base")]
    comparisons = []
    for model, against in pairs:
        if model not in report.models or against not in report.models:
            continue
        for metric in scored_metrics(report.models[model].per_example):
            result = paired_comparison(
                [s[metric] for s in report.models[model].per_example],
                [s[metric] for s in report.models[against].per_example],
                config.confidence, config.bootstrap_resamples, config.seed,
            )
            comparisons.append(Comparison(model, against, metric, **asdict(result)))
    return comparisons
