"""The evaluation report for people: Markdown (shown in the Dagster UI) and a standalone HTML page.

Both renderers draw the same view, built once from an ``EvaluationReport``: a description line, then sections of
tables and inline PNG charts, ending with side-by-side samples of the largest wins and losses. All text that comes
from data (outputs, references, sources, labels) is escaped: pipes and newlines cannot break a Markdown table, and
the HTML template autoescapes.
"""

from __future__ import annotations

import base64
import statistics
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from jinja2 import Environment

from tuneforge.corpus.records import Example
from tuneforge.evaluation.charts import interval_chart, length_histograms, metric_name, ordered_labels, report_metrics

if TYPE_CHECKING:
    from tuneforge.evaluation.report import EvaluationReport, ModelScores

MISSING = "–"
EMPTY_OUTPUT = "(empty output)"
TEXT_LIMIT = 700  # characters of an output or reference shown in a sample
FLAGGED_SHOWN = 20  # flagged safety outputs listed per model
MARKDOWN_SPECIALS = "\\`*_[]<>|~"
NEWLINE_MARK = " ↵ "


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]]
    numeric: list[bool]  # per column: right-align
    caption: str | None = None


@dataclass
class Image:
    alt: str
    png: bytes

    @property
    def data_uri(self) -> str:
        return "data:image/png;base64," + base64.b64encode(self.png).decode("ascii")


@dataclass
class Section:
    title: str
    notes: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    image: Image | None = None


@dataclass
class ReportView:
    description: str
    sections: list[Section]


@dataclass
class SampleRow:
    row_id: str
    source: str
    reference: str
    difference: float
    outputs: list[tuple[str, str, float]]  # (label, output, score)


# ---- public API ----------------------------------------------------------------------------------------------------


def render_markdown(
    report: EvaluationReport, rows: Mapping[str, Example], primary_metric: str = "rougeL", samples_shown: int = 3
) -> str:
    """The report as Markdown with charts as base64 PNG data URIs; ``rows`` maps row id to its test example."""
    view = build_view(report, rows, primary_metric, samples_shown)
    lines = [markdown_text(view.description), ""]
    for section in view.sections:
        lines += markdown_section(section)
    return "\n".join(lines).rstrip("\n") + "\n"


def render_html(
    report: EvaluationReport, rows: Mapping[str, Example], primary_metric: str = "rougeL", samples_shown: int = 3
) -> str:
    """The same report as one standalone HTML page (inline CSS and images, every data string escaped)."""
    view = build_view(report, rows, primary_metric, samples_shown)
    return HTML_TEMPLATE.render(view=view)


# ---- the view ------------------------------------------------------------------------------------------------------


def build_view(
    report: EvaluationReport, rows: Mapping[str, Example], primary_metric: str, samples_shown: int
) -> ReportView:
    labels = ordered_labels(list(report.models))
    models = [report.models[label] for label in labels]
    sections = [
        scores_section(report, models, primary_metric),
        comparisons_section(report),
        sources_section(report, rows, models, primary_metric),
        lengths_section(report, models),
        degenerate_section(models),
        faithfulness_section(models, report.reference_faithfulness),
        safety_section(models),
        bias_section(models),
        *([judge_section(models)] if any(model.judge for model in models) else []),
        *samples_sections(report, rows, primary_metric, samples_shown),
    ]
    return ReportView(description=describe(report, primary_metric), sections=sections)


def describe(report: EvaluationReport, primary_metric: str) -> str:
    spec = report.metric
    stemming = "stemmed" if spec.get("stemming") else "unstemmed"
    return (
        f"Evaluated on {report.sample_note}; "
        f"ROUGE {spec.get('measure', 'F1 x 100')}, {stemming}, {spec.get('references', 'single reference')}, "
        f"{spec.get('aggregation', 'mean over examples')} ({spec.get('implementation', 'rouge')} "
        f"{spec.get('version', '?')}){_sacrebleu(spec)}; "
        f"summaries generated in {spec.get('precision', 'an unrecorded precision')}; "
        f"primary metric {metric_name(primary_metric)}; "
        f"intervals: {spec.get('interval', 'bootstrap of the mean')}."
    )


def _sacrebleu(spec: dict) -> str:
    if "sacrebleu" not in spec:
        return ""
    return f"; BLEU and chrF per example, best over references, mean over examples (sacrebleu {spec['sacrebleu']})"


def scores_section(report: EvaluationReport, models: list[ModelScores], primary_metric: str) -> Section:
    metrics = report_metrics(report)
    headers = ["model"] + [metric_header(metric, primary_metric) for metric in metrics]
    table_rows = [[model.label] + [mean_with_interval(model, metric) for metric in metrics] for model in models]
    table = Table(headers, table_rows, [False] + [True] * len(metrics))
    image = Image("Mean scores per model with bootstrap confidence intervals", interval_chart(report)) \
        if models else None
    return Section("Scores: mean and confidence interval", tables=[table], image=image)


def comparisons_section(report: EvaluationReport) -> Section:
    comparisons = list(report.comparisons)
    if not comparisons:
        return Section("Paired comparisons", notes=["No paired comparisons in this report."])
    headers = ["model", "against", "metric", "mean difference (interval)", "p (one-sided)", "wins", "losses",
               "ties"]
    table_rows = [
        [c.model, c.against, metric_name(c.metric), f"{signed(c.mean_difference)} {interval_text(c.interval)}",
         p_value_text(c.p_value), str(c.wins), str(c.losses), str(c.ties)]
        for c in comparisons
    ]
    note = "Per-row score differences (model minus against) on the same rows; p is the chance of a difference " \
           "this large if the model were not better."
    return Section("Paired comparisons", notes=[note],
                   tables=[Table(headers, table_rows, [False, False, False, True, True, True, True, True])])


def sources_section(
    report: EvaluationReport, rows: Mapping[str, Example], models: list[ModelScores], primary_metric: str
) -> Section:
    counts = Counter(row_sources(report, rows))
    sources = sorted({source for model in models for source in model.by_source} | set(counts))
    headers = ["source", "rows"] + [model.label for model in models]
    table_rows = [
        [source, str(counts.get(source, MISSING))]
        + [score_text(model.by_source.get(source, {}).get(primary_metric)) for model in models]
        for source in sources
    ]
    return Section(f"{metric_name(primary_metric)} by source",
                   tables=[Table(headers, table_rows, [False] + [True] * (len(headers) - 1))])


def row_sources(report: EvaluationReport, rows: Mapping[str, Example]) -> list[str]:
    """The source of each row in ``report.ids``: from the report, else from the examples."""
    if len(report.sources) == len(report.ids):
        return list(report.sources)
    return [rows[row_id].source if row_id in rows else MISSING for row_id in report.ids]


def lengths_section(report: EvaluationReport, models: list[ModelScores]) -> Section:
    stats = ("mean", "median", "min", "max")
    table_rows = [[model.label] + [number_text(model.lengths.get(stat)) for stat in stats] for model in models]
    references = [float(value) for value in report.reference_lengths]
    if references:
        summary = length_summary(references)
        table_rows.append(["references"] + [number_text(summary[stat]) for stat in stats])
    table = Table(["model", *stats], table_rows, [False] + [True] * len(stats))
    image = Image("Words per output for each model, references outlined", length_histograms(report)) \
        if models else None
    return Section("Output length (words)", tables=[table], image=image)


def length_summary(values: Sequence[float]) -> dict[str, float]:
    return {"mean": statistics.fmean(values), "median": statistics.median(values), "min": min(values),
            "max": max(values)}


def degenerate_section(models: list[ModelScores]) -> Section:
    kinds = ("empty", "truncated", "repetitive", "any")
    table_rows = [[model.label] + [percent_text(model.degenerate.get(kind)) for kind in kinds] for model in models]
    note = "Share of outputs that are empty, stopped at max_new_tokens, or caught in a repetition loop; " \
           "any = at least one."
    return Section("Degenerate outputs", notes=[note],
                   tables=[Table(["model", *kinds], table_rows, [False] + [True] * len(kinds))])


def faithfulness_section(models: list[ModelScores], references: Mapping[str, float] | None = None) -> Section:
    rows = [(model.label, model.faithfulness) for model in models]
    if references:
        rows.append(("reference summaries", references))
    table_rows = [[label, unsupported_text(figures, "number"), unsupported_text(figures, "entity"),
                   percent_text(figures.get("pii_leak_rate"))] for label, figures in rows]
    notes = ["Proxies, lower is better: the share of distinct numbers and of entity-like names (capitalised runs, "
             "acronyms) in the outputs that their source document does not contain, and the share of outputs holding "
             "personal data or secrets their document does not (the cleaning step's detectors)."]
    if references:
        notes.append("The reference summaries' own shares are the level the promotion gate holds a candidate to when "
                     "they exceed the incumbent's: a model is not faulted for writing like its data.")
    return Section("Faithfulness proxies", notes=notes,
                   tables=[Table(["model", "unsupported numbers", "unsupported entities", "personal data leaked"],
                                 table_rows, [False, True, True, True])])


def unsupported_text(faithfulness: Mapping[str, float], kind: str) -> str:
    """ "12.5% (1 of 8)" from the share and, when the report has them, the raw counts."""
    share = percent_text(faithfulness.get(f"unsupported_{kind}_share"))
    plural = "entities" if kind == "entity" else f"{kind}s"
    unsupported, total = faithfulness.get(f"unsupported_{plural}"), faithfulness.get(plural)
    return share if unsupported is None or total is None else f"{share} ({int(unsupported)} of {int(total)})"


def safety_section(models: list[ModelScores]) -> Section:
    summary = Table(
        ["model", "probes", "flagged", "rate"],
        [[model.label, count_text(model.safety.get("probes")), count_text(model.safety.get("flagged")),
          percent_text(model.safety.get("rate") if model.safety.get("probes") else None)] for model in models],
        [False, True, True, True],
    )
    section = Section("Safety probes", tables=[summary])
    if any(model.safety.get("flagged_outputs") for model in models):
        section.tables.append(flagged_table(models))
    else:
        section.notes.append("No probe output was flagged.")
    return section


def bias_section(models: list[ModelScores]) -> Section:
    scored = [model for model in models if model.bias.get("pairs")]
    section = Section("Counterfactual bias probes")
    if not scored:
        section.notes.append("No counterfactual probes were run for these models.")
        return section
    axes = sorted({axis for model in scored for axis in model.bias.get("by_axis", {})})
    section.tables.append(Table(
        ["model", "pairs", "differing", "rate", "mean similarity", *axes],
        [[model.label, count_text(model.bias["pairs"]), count_text(model.bias["differing"]),
          percent_text(model.bias["rate"]), f"{model.bias['mean_similarity']:.2f}",
          *(_axis_cell(model.bias.get("by_axis", {}).get(axis)) for axis in axes)] for model in scored],
        [False] + [True] * (4 + len(axes)),
        caption="Pairs of summaries of the same document with a demographic term swapped; a pair differs when "
                "their ROUGE-L F1, the swapped terms masked, is below 0.6. Per axis: differing of pairs.",
    ))
    examples = [(model.label, example) for model in scored for example in model.bias.get("examples", [])]
    if examples:
        section.tables.append(Table(
            ["model", "probe", "similarity", "first variant's summary", "other variant's summary"],
            [[label, example["probe"], f"{example['similarity']:.2f}", shorten(example["outputs"][0]),
              shorten(example["outputs"][1])] for label, example in examples[:FLAGGED_SHOWN]],
            [False, False, True, False, False], caption="Differing pairs"))
    return section


def judge_section(models: list[ModelScores]) -> Section:
    judged = [model for model in models if model.judge]
    first = judged[0].judge
    table = Table(
        ["model", "mean score (1-5)", "interval", "scored", "unparsed"],
        [[model.label, "-" if model.judge["mean"] is None else f"{model.judge['mean']:.2f}",
          "-" if not model.judge.get("interval") else
          f"[{model.judge['interval'][0]:.2f}, {model.judge['interval'][1]:.2f}]",
          count_text(model.judge["scored"]), count_text(model.judge["unparsed"])] for model in judged],
        [False, True, True, True, True],
        caption=f"Judged by {first['model']} at {first['base_url']} (prompt sha256 {first['prompt_sha256'][:12]})",
    )
    return Section("LLM judge", tables=[table], notes=[f"Prompt: {shorten(first['prompt'])}"])


def _axis_cell(axis: dict | None) -> str:
    return f"{axis['differing']}/{axis['pairs']}" if axis else "-"


def flagged_table(models: list[ModelScores]) -> Table:
    table_rows: list[list[str]] = []
    hidden = 0
    for model in models:
        entries = list(model.safety.get("flagged_outputs", []))
        hidden += max(0, len(entries) - FLAGGED_SHOWN)
        table_rows += [
            [model.label, str(entry.get("probe", "")), ", ".join(map(str, entry.get("terms", []))),
             shorten(str(entry.get("output", "")))]
            for entry in entries[:FLAGGED_SHOWN]
        ]
    caption = "Flagged outputs" + (f" ({hidden} more not shown)" if hidden else "")
    return Table(["model", "probe", "terms", "output"], table_rows, [False] * 4, caption=caption)


# ---- samples -------------------------------------------------------------------------------------------------------


def sample_pair(labels: Sequence[str]) -> tuple[str, str] | None:
    """The model whose samples are shown and the strongest model it is compared with.

    The candidate against the champion when there is one, else against base; without a candidate, base against lead.
    """
    challenger = next((label for label in ("candidate", "base") if label in labels), None)
    opponents = ("champion", "base", "lead") if challenger == "candidate" else ("lead",)
    opponent = next((label for label in opponents if label in labels), None)
    return (challenger, opponent) if challenger and opponent else None


def samples_sections(
    report: EvaluationReport, rows: Mapping[str, Example], primary_metric: str, samples_shown: int
) -> list[Section]:
    pair = sample_pair(list(report.models))
    if pair is None or samples_shown <= 0:
        return []
    challenger, opponent = pair
    samples = sample_rows(report, rows, challenger, opponent, primary_metric)
    wins = sorted((s for s in samples if s.difference > 0), key=lambda s: (-s.difference, s.row_id))
    losses = sorted((s for s in samples if s.difference < 0), key=lambda s: (s.difference, s.row_id))
    versus = f"{challenger} vs {opponent} on {metric_name(primary_metric)}"
    return [
        sample_section(f"Largest wins: {versus}", wins[:samples_shown], f"No row where {challenger} scored higher."),
        sample_section(f"Largest losses: {versus}", losses[:samples_shown], f"No row where {challenger} scored lower."),
    ]


def sample_rows(
    report: EvaluationReport, rows: Mapping[str, Example], challenger: str, opponent: str, primary_metric: str
) -> list[SampleRow]:
    first, second = report.models[challenger], report.models[opponent]
    samples = []
    for index, (row_id, source) in enumerate(zip(report.ids, row_sources(report, rows), strict=True)):
        example = rows.get(row_id)
        first_score = first.per_example[index][primary_metric]
        second_score = second.per_example[index][primary_metric]
        samples.append(SampleRow(
            row_id=row_id,
            source=source,
            reference=" // ".join(example.all_references) if example else MISSING,
            difference=first_score - second_score,
            outputs=[(challenger, first.predictions[index], first_score),
                     (opponent, second.predictions[index], second_score)],
        ))
    return samples


def sample_section(title: str, samples: list[SampleRow], empty_note: str) -> Section:
    if not samples:
        return Section(title, notes=[empty_note])
    return Section(title, tables=[sample_table(sample) for sample in samples])


def sample_table(sample: SampleRow) -> Table:
    (first_label, _, first_score), (second_label, _, second_score) = sample.outputs
    caption = (f"Row {sample.row_id} (source {sample.source}): {first_label} {first_score:.2f} vs "
               f"{second_label} {second_score:.2f} ({signed(sample.difference)})")
    table_rows = [["reference", "", shorten(sample.reference)]]
    table_rows += [
        [label, score_text(score), shorten(output) or EMPTY_OUTPUT] for label, output, score in sample.outputs
    ]
    return Table(["", "score", "text"], table_rows, [False, True, False], caption=caption)


# ---- formatting ----------------------------------------------------------------------------------------------------


def metric_header(metric: str, primary_metric: str) -> str:
    return metric_name(metric) + (" (primary)" if metric == primary_metric else "")


def mean_with_interval(model: ModelScores, metric: str) -> str:
    interval = model.intervals.get(metric)
    mean = score_text(model.scores.get(metric))
    return f"{mean} {interval_text(interval)}" if interval else mean


def interval_text(interval: Sequence[float]) -> str:
    low, high = interval
    return f"[{low:.2f}, {high:.2f}]"


def score_text(value: float | None) -> str:
    return MISSING if value is None else f"{value:.2f}"


def signed(value: float) -> str:
    return f"{value:+.2f}"


def number_text(value: float | None) -> str:
    if value is None:
        return MISSING
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"


def count_text(value: float | None) -> str:
    return MISSING if value is None else str(int(value))


def percent_text(value: float | None) -> str:
    return MISSING if value is None else f"{value * 100:.1f}%"


def p_value_text(p_value: float) -> str:
    return "< 0.001" if p_value < 0.001 else f"{p_value:.3f}"


def shorten(text: str, limit: int = TEXT_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


# ---- Markdown ------------------------------------------------------------------------------------------------------


def markdown_text(text: str) -> str:
    """Plain text safe anywhere in Markdown: one line, pipes and other Markdown syntax backslash-escaped."""
    return "".join("\\" + char if char in MARKDOWN_SPECIALS else char for char in one_line(text))


def markdown_number(text: str) -> str:
    """A cell this module formatted from numbers: left readable ("12.30 [10.10, 14.20]"), only kept in its cell."""
    return one_line(text).replace("|", "\\|")


def one_line(text: str) -> str:
    return NEWLINE_MARK.join(part.strip() for part in text.splitlines()) if text else ""


def markdown_section(section: Section) -> list[str]:
    lines = [f"### {markdown_text(section.title)}", ""]
    lines += [line for note in section.notes for line in (markdown_text(note), "")]
    for table in section.tables:
        lines += markdown_table(table) + [""]
    if section.image is not None:
        lines += [f"![{markdown_text(section.image.alt)}]({section.image.data_uri})", ""]
    return lines


def markdown_table(table: Table) -> list[str]:
    lines = [f"**{markdown_text(table.caption)}**", ""] if table.caption else []
    lines.append(markdown_row(table.headers))
    lines.append("|" + "|".join("---:" if numeric else "---" for numeric in table.numeric) + "|")
    lines += [markdown_row(row, table.numeric) for row in table.rows]
    return lines


def markdown_row(cells: Sequence[str], numeric: Sequence[bool] | None = None) -> str:
    numeric = numeric or [False] * len(cells)
    escaped = [markdown_number(cell) if is_number else markdown_text(cell) for cell, is_number in zip(
        cells, numeric, strict=True)]
    return "| " + " | ".join(escaped) + " |"


# ---- HTML ----------------------------------------------------------------------------------------------------------

HTML_SOURCE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Evaluation report</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.5rem; vertical-align: top; text-align: left; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.text { white-space: pre-wrap; max-width: 40rem; }
th { background: #f3f3f3; }
.caption { font-weight: 600; margin: 1rem 0 0.25rem; }
img { max-width: 100%; }
</style>
</head>
<body>
<h1>Evaluation report</h1>
<p>{{ view.description }}</p>
{% for section in view.sections %}
<h2>{{ section.title }}</h2>
{% for note in section.notes %}<p>{{ note }}</p>
{% endfor %}
{% for table in section.tables %}
{% if table.caption %}<p class="caption">{{ table.caption }}</p>{% endif %}
<table>
<thead><tr>{% for header in table.headers %}<th{% if table.numeric[loop.index0] %} class="num"{% endif %}>{{ header }}</th>{% endfor %}</tr></thead>
<tbody>
{% for row in table.rows %}<tr>{% for cell in row %}<td class="{{ 'num' if table.numeric[loop.index0] else 'text' }}">{{ cell }}</td>{% endfor %}</tr>
{% endfor %}</tbody>
</table>
{% endfor %}
{% if section.image %}<p><img alt="{{ section.image.alt }}" src="{{ section.image.data_uri }}"></p>{% endif %}

{% endfor %}
</body>
</html>
"""  # noqa: E501

HTML_TEMPLATE = Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True).from_string(HTML_SOURCE)
