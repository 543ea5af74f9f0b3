"""The evaluation report renderers: Markdown for the Dagster UI, standalone HTML, and their PNG charts."""

from __future__ import annotations

import base64
import re

import pytest

from tuneforge.corpus.records import Example
from tuneforge.evaluation.charts import interval_chart, length_histograms
from tuneforge.evaluation.render import render_html, render_markdown
from tuneforge.evaluation.report import Comparison, EvaluationReport, ModelScores
from tuneforge.evaluation.rouge import ROUGE_TYPES

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
DATA_URI = re.compile(r"data:image/png;base64,([A-Za-z0-9+/=]+)")
UNESCAPED_PIPE = re.compile(r"(?<!\\)\|")

IDS = ["r1", "r2", "r3", "r4", "r5", "r6"]
SOURCES = ["news", "news", "news", "science", "science", "science"]
TRICKY = "Revenue | profit\nrose 5% C:\\ |"
SCRIPT = "<script>alert('x')</script> the findings"
# ROUGE-L per row; candidate minus champion: +10, -5, +30, +2, -20, 0
ROUGE_L = {
    "lead": [20.0, 22.0, 18.0, 25.0, 24.0, 21.0],
    "base": [25.0, 30.0, 20.0, 28.0, 35.0, 26.0],
    "champion": [30.0, 40.0, 15.0, 33.0, 50.0, 31.0],
    "candidate": [40.0, 35.0, 45.0, 35.0, 30.0, 31.0],
}
LARGEST_WIN, LARGEST_LOSS = "r3", "r5"


def example_rows() -> dict[str, Example]:
    return {
        row_id: Example(id=row_id, source=source, group=row_id, document=f"Document {row_id} with 12 facts.",
                        summary=f"Reference summary of {row_id} | with a pipe")
        for row_id, source in zip(IDS, SOURCES, strict=True)
    }


def predictions(label: str) -> list[str]:
    texts = [f"{label} summary of row {row_id} about the topic" for row_id in IDS]
    if label == "candidate":
        texts[0], texts[2] = TRICKY, SCRIPT
    return texts


def model_scores(label: str, ids: list[str]) -> ModelScores:
    rouge_l = ROUGE_L[label][: len(ids)]
    per_example = [{"rouge1": s + 5, "rouge2": s - 10, "rougeL": s, "rougeLsum": s + 1} for s in rouge_l]
    scores = {metric: round(sum(row[metric] for row in per_example) / len(per_example), 3) for metric in ROUGE_TYPES}
    sources = SOURCES[: len(ids)]
    by_source = {
        source: {metric: sum(row[metric] for row, s in zip(per_example, sources, strict=True) if s == source)
                 / sources.count(source) for metric in ROUGE_TYPES}
        for source in sorted(set(sources))
    }
    flagged = [{"probe": "self-harm", "output": "how to | hurt\nyourself", "terms": ["hurt"]}] \
        if label == "base" else []
    return ModelScores(
        label=label,
        adapter_dir=None if label in ("lead", "base") else f"/adapters/{label}",
        scores=scores,
        intervals={metric: (value - 3.25, value + 2.75) for metric, value in scores.items()},
        by_source=by_source,
        per_example=per_example,
        predictions=predictions(label)[: len(ids)],
        finished=[True] * len(ids),
        lengths={"mean": 8.5, "median": 8.0, "min": 3, "max": 14},
        degenerate={"empty": 0.0, "truncated": 1 / 6, "repetitive": 0.0, "any": 1 / 6},
        faithfulness={"unsupported_number_share": 0.125, "unsupported_entity_share": 0.25, "numbers": 8,
                      "unsupported_numbers": 1, "entities": 12, "unsupported_entities": 3},
        safety={"probes": 0, "flagged": 0, "rate": 0.0, "flagged_outputs": []} if label == "lead"
        else {"probes": 10, "flagged": len(flagged), "rate": len(flagged) / 10, "flagged_outputs": flagged},
    )


def make_report(labels: tuple[str, ...] = ("lead", "base", "champion", "candidate"), rows: int = 6) -> EvaluationReport:
    ids = IDS[:rows]
    comparisons = [
        Comparison("candidate", "champion", "rougeL", 2.8333, (-8.5, 14.25), 0.0123, 3, 2, 1),
        Comparison("candidate", "base", "rougeL", 7.5, (1.0, 14.0), 0.0004, 5, 1, 0),
    ]
    return EvaluationReport(
        test_rows=rows, test_rows_available=40, sample_note=f"fixed sample of {rows} of 40 test rows",
        metric={"implementation": "rouge-score", "version": "0.1.2", "stemming": True, "measure": "F1 x 100",
                "references": "best F1 over a row's references", "aggregation": "mean over examples",
                "interval": "95% bootstrap of the mean, 1000 resamples"},
        models={label: model_scores(label, ids) for label in labels},
        ids=ids, sources=SOURCES[:rows], reference_lengths=[6, 9, 7, 12, 5, 8][:rows],
        comparisons=[c for c in comparisons if c.model in labels and c.against in labels],
    )


@pytest.fixture(scope="module")
def markdown() -> str:
    return render_markdown(make_report(), example_rows())


def table_blocks(text: str) -> list[list[str]]:
    blocks: list[list[str]] = []
    previous_was_row = False
    for line in text.splitlines():
        is_row = line.startswith("|")
        if is_row:
            if not previous_was_row:
                blocks.append([])
            blocks[-1].append(line)
        previous_was_row = is_row
    return blocks


def column_count(row: str) -> int:
    return len(UNESCAPED_PIPE.findall(row)) - 1


def row_starting(text: str, *cells: str) -> str:
    prefix = "| " + " | ".join(cells) + " |"
    matches = [line for line in text.splitlines() if line.startswith(prefix)]
    assert matches, f"no table row starts with {prefix!r}"
    return matches[0]


def test_every_model_has_its_mean_and_interval(markdown):
    report = make_report()
    for label, model in report.models.items():
        low, high = model.intervals["rougeL"]
        assert f"{model.scores['rougeL']:.2f} [{low:.2f}, {high:.2f}]" in row_starting(markdown, label)


def test_comparisons_show_difference_interval_and_p_value(markdown):
    row = row_starting(markdown, "candidate", "champion", "ROUGE-L")
    assert "+2.83 [-8.50, 14.25]" in row
    assert "| 0.012 |" in row
    assert "| 3 | 2 | 1 |" in row
    assert "< 0.001" in row_starting(markdown, "candidate", "base", "ROUGE-L")


def test_quality_checks_show_rates_and_counts(markdown):
    assert row_starting(markdown, "candidate", "0.0%", "16.7%", "0.0%", "16.7%")
    assert row_starting(markdown, "candidate", "12.5% (1 of 8)", "25.0% (3 of 12)")
    assert row_starting(markdown, "base", "10", "1", "10.0%")
    assert row_starting(markdown, "references", "7.8", "7.5", "5", "12")


def test_every_source_has_a_row(markdown):
    assert "| 20.00 | 25.00 | 28.33 | 40.00 |" in row_starting(markdown, "news", "3")
    row_starting(markdown, "science", "3")


def test_charts_are_decodable_png_data_uris(markdown):
    images = [base64.b64decode(match, validate=True) for match in DATA_URI.findall(markdown)]
    assert len(images) == 2
    for png in images:
        assert png.startswith(PNG_MAGIC)
        assert len(png) < 60_000


def test_largest_win_and_loss_are_first_in_their_sections(markdown):
    wins_at = markdown.index("Largest wins: candidate vs champion")
    losses_at = markdown.index("Largest losses: candidate vs champion")
    assert wins_at < markdown.index(f"Row {LARGEST_WIN} ") < losses_at
    assert markdown.index(f"Row {LARGEST_LOSS} ") > losses_at
    wins = re.findall(r"Row (r\d) ", markdown[wins_at:losses_at])
    losses = re.findall(r"Row (r\d) ", markdown[losses_at:])
    assert wins == ["r3", "r1", "r4"]
    assert losses == ["r5", "r2"]
    assert "candidate 45.00 vs champion 15.00 (+30.00)" in markdown


def test_pipes_and_newlines_in_text_cannot_break_a_table(markdown):
    blocks = table_blocks(markdown)
    assert len(blocks) >= 10
    for block in blocks:
        header_columns = column_count(block[0])
        assert all(column_count(row) == header_columns for row in block), block
    row = row_starting(markdown, "candidate", "40.00")
    assert "Revenue \\| profit ↵ rose 5% C:\\\\ \\|" in row
    assert "how to \\| hurt ↵ yourself" in row_starting(markdown, "base", "self-harm")


def test_html_is_standalone_and_escapes_outputs():
    html = render_html(make_report(), example_rows())
    assert html.startswith("<!DOCTYPE html>")
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; the findings" in html
    assert "Revenue | profit\nrose 5%" in html
    assert len(DATA_URI.findall(html)) == 2
    assert "0.012" in html and "science" in html


def test_without_champion_candidate_is_compared_with_base():
    text = render_markdown(make_report(("lead", "base", "candidate")), example_rows())
    assert "champion" not in text
    assert "Largest wins: candidate vs base" in text
    assert "Largest losses: candidate vs base" in text


def test_without_candidate_base_is_compared_with_lead():
    text = render_markdown(make_report(("lead", "base")), example_rows(), samples_shown=2)
    assert "candidate" not in text
    assert "No paired comparisons" in text
    assert "Largest wins: base vs lead" in text
    assert len(re.findall(r"Row r\d ", text)) == 2  # base beats lead on every row: two wins shown, no losses
    assert "No row where base scored lower." in text


def test_single_row_report():
    report = make_report(rows=1)
    text = render_markdown(report, example_rows())
    assert "Row r1 " in text
    assert "science" not in text
    assert all(base64.b64decode(match).startswith(PNG_MAGIC) for match in DATA_URI.findall(text))
    assert "<!DOCTYPE html>" in render_html(report, example_rows())


def test_charts_are_small_pngs():
    report = make_report()
    for png in (interval_chart(report), length_histograms(report)):
        assert png.startswith(PNG_MAGIC)
        assert len(png) < 60_000
