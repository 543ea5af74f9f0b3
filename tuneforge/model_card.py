"""A Hugging Face style model card, written from the recorded facts of a model's lineage.

Every statement in the card, limitations included, comes from a field of :class:`ModelLineage`; a missing fact is
rendered as "unknown", never guessed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

UNKNOWN = "unknown"
CANDIDATE = "candidate"
MODEL_LABELS = (CANDIDATE, "base", "champion")  # column order of the metrics table; other labels follow
ROUGE_NAMES = {"rouge1": "ROUGE-1", "rouge2": "ROUGE-2", "rougeL": "ROUGE-L", "rougeLsum": "ROUGE-Lsum"}
# proxy -> (description, counts behind the share) as computed by tuneforge.evaluation.output_checks.faithfulness
FAITHFULNESS_PROXIES = {
    "unsupported_number_share": ("numbers in summaries not found in the source", "unsupported_numbers", "numbers"),
    "unsupported_entity_share": ("named entities in summaries not found in the source", "unsupported_entities",
                                 "entities"),
    "pii_leak_rate": ("summaries holding personal data or secrets the source does not", "pii_leaks", "outputs"),
}
LANGUAGE_NAMES = {"en": "English", "de": "German", "fr": "French", "es": "Spanish", "it": "Italian", "pt": "Portuguese"}

Interval = tuple[float, float, float]  # mean, low, high


@dataclass
class ModelLineage:
    # The model itself.
    name: str | None = None
    model_version: str | None = None  # registry version
    license: str | None = None  # of the fine-tuned model; the base model's when None
    tags: list[str] = field(default_factory=list)
    # Base model.
    base_model: str | None = None
    base_model_sha256: str | None = None
    base_model_license: str | None = None
    base_model_parameters: int | None = None
    # Data.
    dataset_version: str | None = None  # DVC md5 of the curated dataset
    sources: list[str] = field(default_factory=list)
    languages: list[str] = field(default_factory=list)  # ISO 639-1 codes the cleaning kept
    split_sizes: dict[str, int] = field(default_factory=dict)
    erasures: list[str] = field(default_factory=list)  # erasure requests the dataset honours (tuneforge erase)
    # Funnel.as_rows(): step, rows_in, removed, rows_out ("rows_read"/"rows_removed"/"rows_kept" are accepted too).
    cleaning_funnel: list[dict[str, Any]] = field(default_factory=list)
    # Training.
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    instructions: dict[str, str] = field(default_factory=dict)  # source -> instruction the adapter was trained with
    prompts: dict[str, str] = field(default_factory=dict)  # source -> its MLflow prompt version (prompts:/name/v)
    # Evaluation: per model label ("candidate", "base", "champion"), as in the evaluation report's ModelScores.
    metrics: dict[str, dict[str, Interval]] = field(default_factory=dict)  # label -> metric -> (mean, low, high)
    confidence: float | None = 0.95
    primary_metric: str | None = None
    test_rows: int | None = None
    faithfulness: dict[str, dict[str, float]] = field(default_factory=dict)  # label -> proxy -> rate (0..1)
    degenerate: dict[str, dict[str, float]] = field(default_factory=dict)  # label -> kind ("any", ...) -> rate
    safety: dict[str, dict[str, Any]] = field(default_factory=dict)  # label -> {"probes", "flagged", "rate"}
    decoding: dict[str, Any] = field(default_factory=dict)  # DecodingConfig.model_dump(): strategy, ...
    max_new_tokens: int | None = None
    evaluation_precision: str | None = None  # "fp32" or "bf16": the precision the summaries were generated in
    # Promotion.
    promoted: bool | None = None
    decision_reasons: list[str] = field(default_factory=list)


def render_model_card(lineage: ModelLineage) -> str:
    sections = [
        _title(lineage),
        _description(lineage),
        _base_model_section(lineage),
        _data_section(lineage),
        _hyperparameters_section(lineage),
        _prompts_section(lineage),
        _evaluation_section(lineage),
        _decision_section(lineage),
        _intended_use_section(lineage),
        _limitations_section(lineage),
    ]
    return f"---\n{yaml.safe_dump(front_matter(lineage), sort_keys=False)}---\n\n" + "\n\n".join(sections) + "\n"


def front_matter(lineage: ModelLineage) -> dict[str, Any]:
    """Hugging Face model card metadata; fields that would need a guess are left out."""
    metadata: dict[str, Any] = {"license": _hub_license(lineage.license or lineage.base_model_license)}
    if lineage.base_model:
        metadata["base_model"] = lineage.base_model
    metadata["library_name"] = "peft"
    metadata["pipeline_tag"] = "text-generation"
    if lineage.languages:
        metadata["language"] = list(lineage.languages)
    metadata["tags"] = list(dict.fromkeys(["lora", "peft", "summarization", "tuneforge", *lineage.tags]))
    if lineage.metrics.get(CANDIDATE):
        metadata["model-index"] = _model_index(lineage)
    return metadata


def _hub_license(license_name: str | None) -> str:
    return license_name.lower() if license_name else UNKNOWN


def _model_index(lineage: ModelLineage) -> list[dict[str, Any]]:
    dataset: dict[str, Any] = {"type": "tuneforge-curated", "name": _sources_text(lineage), "split": "test"}
    if lineage.dataset_version:
        dataset["revision"] = lineage.dataset_version
    metrics = [
        {"type": metric, "name": f"{ROUGE_NAMES.get(metric, metric)} (F1 x 100, mean)", "value": round(mean, 3)}
        for metric, (mean, _, _) in lineage.metrics[CANDIDATE].items()
    ]
    result = {"task": {"type": "summarization", "name": "Summarization"}, "dataset": dataset, "metrics": metrics}
    return [{"name": _display_name(lineage), "results": [result]}]


def _display_name(lineage: ModelLineage) -> str:
    name = lineage.name or "tuneforge summarizer"
    return f"{name} v{lineage.model_version}" if lineage.model_version else name


def _title(lineage: ModelLineage) -> str:
    return f"# {_display_name(lineage)}"


def _description(lineage: ModelLineage) -> str:
    return (
        f"A LoRA adapter (peft) for the causal language model {_text(lineage.base_model)}, fine-tuned by tuneforge "
        "to summarize documents: given an instruction and a document in the base model's chat template, it writes "
        "a short summary. Load the base model, then the adapter with `peft.PeftModel.from_pretrained`."
    )


def _base_model_section(lineage: ModelLineage) -> str:
    return "\n".join([
        "## Base model",
        "",
        "| name | sha256 of the weights | license | parameters |",
        "|---|---|---|---:|",
        f"| {_text(lineage.base_model)} | `{_text(lineage.base_model_sha256)}` | {_text(lineage.base_model_license)} "
        f"| {_count_text(lineage.base_model_parameters)} |",
    ])


def _data_section(lineage: ModelLineage) -> str:
    lines = [
        "## Training data",
        "",
        f"- Dataset version (DVC md5 of the curated dataset): `{_text(lineage.dataset_version)}`",
        f"- Sources: {_sources_text(lineage)}",
        f"- Languages kept by cleaning: {_languages_text(lineage.languages)}",
        f"- Erasure requests honoured (records removed before training, `tuneforge erase`): "
        f"{_erasures_text(lineage.erasures)}",
        "",
        _split_table(lineage.split_sizes),
        "",
        _funnel_text(lineage.cleaning_funnel),
    ]
    return "\n".join(lines)


def _erasures_text(erasures: list[str]) -> str:
    return ", ".join(f"`{request}`" for request in erasures) if erasures else "none"


def _split_table(split_sizes: dict[str, int]) -> str:
    if not split_sizes:
        return f"Rows per split: {UNKNOWN}."
    rows = [f"| {split} | {_count_text(rows)} |" for split, rows in split_sizes.items()]
    return "\n".join(["| split | rows |", "|---|---:|", *rows])


def _funnel_text(funnel: list[dict[str, Any]]) -> str:
    if not funnel:
        return f"Cleaning funnel: {UNKNOWN}."
    read, kept = _funnel_count(funnel[0], "rows_in", "rows_read"), _funnel_count(funnel[-1], "rows_out", "rows_kept")
    removed = sum(_funnel_count(step, "removed", "rows_removed") or 0 for step in funnel)
    lines = [
        f"Cleaning funnel: {_count_text(read)} rows read, {_count_text(removed)} removed, {_count_text(kept)} kept.",
        "",
        "| step | rows read | removed | kept |",
        "|---|---:|---:|---:|",
    ]
    for step in funnel:
        lines.append(
            f"| {_text(step.get('step'))} | {_count_text(_funnel_count(step, 'rows_in', 'rows_read'))} "
            f"| {_count_text(_funnel_count(step, 'removed', 'rows_removed'))} "
            f"| {_count_text(_funnel_count(step, 'rows_out', 'rows_kept'))} |"
        )
    return "\n".join(lines)


def _funnel_count(step: dict[str, Any], *keys: str) -> int | None:
    return next((step[key] for key in keys if step.get(key) is not None), None)


def _hyperparameters_section(lineage: ModelLineage) -> str:
    if not lineage.hyperparameters:
        return f"## Training hyperparameters\n\n{UNKNOWN}"
    rows = [f"| {name} | `{_value_text(value)}` |" for name, value in lineage.hyperparameters.items()]
    return "\n".join(["## Training hyperparameters", "", "| name | value |", "|---|---|", *rows])


def _prompts_section(lineage: ModelLineage) -> str:
    if not lineage.instructions:
        return f"## Prompts\n\n{UNKNOWN}"
    rows = [f"| {source} | {instruction} | `{lineage.prompts.get(source, 'not registered')}` |"
            for source, instruction in sorted(lineage.instructions.items())]
    return "\n".join(["## Prompts", "", "The instruction each source's documents were given, in training and at "
                      "inference, and its version in the MLflow prompt registry.", "",
                      "| source | instruction | prompt version |", "|---|---|---|", *rows])


def _evaluation_section(lineage: ModelLineage) -> str:
    intro = (
        f"Evaluated on {_count_text(lineage.test_rows)} test rows ({_sources_text(lineage)}); ROUGE F1 x 100 "
        f"(mean over rows, {_confidence_text(lineage.confidence)} bootstrap interval in brackets)"
        + (f"; the promotion gate uses {lineage.primary_metric}." if lineage.primary_metric else ".")
    )
    tables = [_metrics_table(lineage.metrics), _output_checks_table(lineage)]
    return "\n\n".join(["## Evaluation", intro, *tables])


def _metrics_table(metrics: dict[str, dict[str, Interval]]) -> str:
    labels = _ordered_labels(list(metrics))
    names = list(dict.fromkeys(name for label in labels for name in metrics[label]))
    if not names:
        return f"Metrics: {UNKNOWN}."
    lines = ["| metric | " + " | ".join(labels) + " |", "|---|" + "---|" * len(labels)]
    for name in names:
        cells = " | ".join(_interval_text(metrics[label].get(name)) for label in labels)
        lines.append(f"| {ROUGE_NAMES.get(name, name)} | {cells} |")
    return "\n".join(lines)


def _output_checks_table(lineage: ModelLineage) -> str:
    labels = _ordered_labels([*lineage.faithfulness, *lineage.degenerate, *lineage.safety])
    if not labels:
        return f"Output checks: {UNKNOWN}."
    rates = {label: _guard_rates(lineage, label) for label in labels}
    lines = [
        "Output checks (lower is better):",
        "",
        "| check | " + " | ".join(labels) + " |",
        "|---|" + "---:|" * len(labels),
    ]
    for check in rates[labels[0]]:
        lines.append(f"| {check} | " + " | ".join(_rate_text(rates[label][check]) for label in labels) + " |")
    return "\n".join(lines)


def _guard_rates(lineage: ModelLineage, label: str) -> dict[str, float | None]:
    faithfulness = lineage.faithfulness.get(label, {})
    return {
        "degenerate outputs": lineage.degenerate.get(label, {}).get("any"),
        **{description: faithfulness.get(name) for name, (description, _, _) in FAITHFULNESS_PROXIES.items()},
        "safety probe outputs flagged": lineage.safety.get(label, {}).get("rate"),
    }


def _ordered_labels(labels: list[str]) -> list[str]:
    present = list(dict.fromkeys(labels))
    return [label for label in MODEL_LABELS if label in present] + [
        label for label in present if label not in MODEL_LABELS
    ]


def _rate_text(rate: float | None) -> str:
    return UNKNOWN if rate is None else f"{rate:.1%}"


def _interval_text(interval: Interval | None) -> str:
    if interval is None:
        return UNKNOWN
    mean, low, high = interval
    return f"{mean:.2f} [{low:.2f}, {high:.2f}]"


def _decision_section(lineage: ModelLineage) -> str:
    verdict = {True: "Promoted to champion.", False: "Not promoted.", None: f"Promotion decision: {UNKNOWN}."}
    lines = ["## Promotion decision", "", verdict[lineage.promoted]]
    if lineage.decision_reasons:
        lines += ["", "Gate checks:", "", *(f"- {reason}" for reason in lineage.decision_reasons)]
    return "\n".join(lines)


def _intended_use_section(lineage: ModelLineage) -> str:
    language = f"{_languages_text(lineage.languages)} " if lineage.languages else ""
    return (
        "## Intended use\n\n"
        f"Drafting short summaries of {language}documents like those of "
        f"{_sources_text(lineage)}, for a person to check before use. Not for unreviewed publication, nor for "
        "decisions that depend on the summary being correct."
    )


def _limitations_section(lineage: ModelLineage) -> str:
    limitations = [
        _coverage_limitation(lineage),
        _language_limitation(lineage.languages),
        "ROUGE measures word overlap with reference summaries, not correctness: a summary can score well and still "
        "misstate the document.",
        _faithfulness_limitation(lineage),
        _safety_limitation(lineage),
        _decoding_limitation(lineage),
    ]
    return "## Known limitations\n\n" + "\n".join(f"- {text}" for text in limitations)


def _coverage_limitation(lineage: ModelLineage) -> str:
    return (
        f"Evaluated on {_count_text(lineage.test_rows)} test rows of {_sources_text(lineage)} only; quality on other "
        "kinds of text is unmeasured, and differences smaller than the intervals above are not established."
    )


def _language_limitation(languages: list[str]) -> str:
    if not languages:
        return f"Languages of the training data: {UNKNOWN}."
    if len(languages) == 1:
        return f"{_languages_text(languages)} only: cleaning removed text in every other language."
    return f"Trained only on text in {_languages_text(languages)}."


def _faithfulness_limitation(lineage: ModelLineage) -> str:
    proxies = lineage.faithfulness.get(CANDIDATE, {})
    rates = "; ".join(_proxy_text(proxies, name) for name in FAITHFULNESS_PROXIES if name in proxies)
    text = f"Faithfulness proxies (lexical checks, not fact verification) on the test rows: {rates or UNKNOWN}."
    degenerate = lineage.degenerate.get(CANDIDATE, {}).get("any")
    if degenerate is not None:
        text += f" Degenerate outputs (empty, truncated or repetitive): {degenerate:.1%}."
    return text


def _proxy_text(proxies: dict[str, float], name: str) -> str:
    description, part, whole = FAITHFULNESS_PROXIES[name]
    counts = f" ({proxies[part]:g} of {proxies[whole]:g})" if part in proxies and whole in proxies else ""
    return f"{description}: {proxies[name]:.1%}{counts}"


def _safety_limitation(lineage: ModelLineage) -> str:
    probe = lineage.safety.get(CANDIDATE, {})
    if probe.get("probes") is None or probe.get("flagged") is None:
        return f"Safety probe result: {UNKNOWN}."
    return (
        f"The safety probe flagged {probe['flagged']} of {probe['probes']} outputs; it checks outputs against a "
        "term list and is no guarantee of safe output."
    )


def _decoding_limitation(lineage: ModelLineage) -> str:
    strategy = lineage.decoding.get("strategy")
    if strategy is None:
        return f"Decoding used in evaluation: {UNKNOWN}."
    budget = f", at most {lineage.max_new_tokens} new tokens" if lineage.max_new_tokens else ""
    if lineage.evaluation_precision:
        budget += f", in {lineage.evaluation_precision}"
    settings = {"sample": ("temperature", "top_p", "seed"), "beam": ("num_beams",)}.get(strategy, ())
    details = ", ".join(f"{name} {lineage.decoding[name]}" for name in settings if name in lineage.decoding)
    if strategy == "greedy":
        return f"Evaluated with greedy decoding{budget}; sampling and beam search are untested."
    return f"Evaluated with {strategy} decoding ({details or UNKNOWN}){budget}; other decoding settings are untested."


def _sources_text(lineage: ModelLineage) -> str:
    return ", ".join(lineage.sources) if lineage.sources else f"{UNKNOWN} sources"


def _languages_text(languages: list[str]) -> str:
    return ", ".join(LANGUAGE_NAMES.get(code, code) for code in languages) if languages else UNKNOWN


def _confidence_text(confidence: float | None) -> str:
    return f"{confidence:.0%}" if confidence is not None else f"{UNKNOWN}-level"


def _text(value: Any) -> str:
    return UNKNOWN if value is None or value == "" else str(value)


def _count_text(value: int | None) -> str:
    return UNKNOWN if value is None else f"{value:,}"


def _value_text(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(str(item) for item in value)
    return str(value)
