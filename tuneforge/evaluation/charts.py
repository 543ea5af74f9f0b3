"""Small PNG charts of an evaluation report, sized to be embedded as data URIs in Markdown or HTML.

Figures are built with ``matplotlib.figure.Figure`` (rendered by Agg when saved), never through pyplot, so rendering
a chart neither changes the process-wide backend nor leaves figures registered with pyplot.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from tuneforge.corpus.ngrams import words
from tuneforge.evaluation.metrics import METRICS

if TYPE_CHECKING:
    from tuneforge.evaluation.report import EvaluationReport

MODEL_ORDER = ("lead", "base", "champion", "candidate")
METRIC_NAMES = {"rouge1": "ROUGE-1", "rouge2": "ROUGE-2", "rougeL": "ROUGE-L", "rougeLsum": "ROUGE-Lsum",
                "bleu": "BLEU", "chrf": "chrF"}
MODEL_COLOURS = {"lead": "#8c8c8c", "base": "#4c72b0", "champion": "#dd8452", "candidate": "#55a868"}
OTHER_COLOURS = ("#c44e52", "#8172b3", "#937860", "#da8bc3")
REFERENCE_COLOUR = "#222222"
WIDTH_INCHES = 7.0
DPI = 100
PNG_METADATA = {"Software": None}  # no matplotlib version stamp, so the same report gives the same bytes


def metric_name(metric: str) -> str:
    return METRIC_NAMES.get(metric, metric)


def ordered_labels(labels: Sequence[str]) -> list[str]:
    """Known models in a fixed order (weakest reference point first, the candidate last), then any others."""
    known = [label for label in MODEL_ORDER if label in labels]
    return known + [label for label in labels if label not in MODEL_ORDER]


def model_colour(label: str, labels: Sequence[str]) -> str:
    if label in MODEL_COLOURS:
        return MODEL_COLOURS[label]
    others = [name for name in labels if name not in MODEL_COLOURS]
    return OTHER_COLOURS[others.index(label) % len(OTHER_COLOURS)] if label in others else OTHER_COLOURS[0]


def word_count(text: str) -> int:
    """Words as the report counts them (``reference_lengths`` and ``ModelScores.lengths``)."""
    return len(words(text))


def report_metrics(report: EvaluationReport) -> list[str]:
    """The metrics every model was scored on, in METRICS order (ROUGE, then BLEU and chrF)."""
    models = list(report.models.values())
    return [metric for metric in METRICS if models and all(metric in model.scores for model in models)]


def interval_chart(report: EvaluationReport) -> bytes:
    """Each model's mean per ROUGE metric with its bootstrap confidence interval as error bars."""
    labels = ordered_labels(list(report.models))
    metrics = report_metrics(report)
    figure = Figure(figsize=(WIDTH_INCHES, 3.4), dpi=DPI, layout="constrained")
    axes = figure.subplots()
    if not labels or not metrics:
        return empty_chart(figure, axes, "no scores")
    spread = 0.7
    step = spread / len(labels)
    positions = np.arange(len(metrics), dtype=float)
    for offset_index, label in enumerate(labels):
        model = report.models[label]
        means = np.array([model.scores[metric] for metric in metrics], dtype=float)
        below, above = interval_extents(means, [model.intervals.get(metric) for metric in metrics])
        x = positions - spread / 2 + step * (offset_index + 0.5)
        axes.errorbar(x, means, yerr=[below, above], fmt="o", capsize=3, markersize=5, linewidth=1.4,
                      color=model_colour(label, labels), label=label)
    axes.set_xticks(positions, [metric_name(metric) for metric in metrics])
    axes.set_ylabel("F1 x 100")
    axes.set_title("Mean score with bootstrap confidence interval", fontsize=10)
    axes.grid(axis="y", alpha=0.3)
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncols=len(labels), frameon=False, fontsize=9)
    return png_bytes(figure)


def interval_extents(
    means: np.ndarray, intervals: Sequence[Sequence[float] | None]
) -> tuple[np.ndarray, np.ndarray]:
    """Error-bar lengths below and above each mean; zero where the interval is missing."""
    lows = np.array([interval[0] if interval else mean for mean, interval in zip(means, intervals, strict=True)])
    highs = np.array([interval[1] if interval else mean for mean, interval in zip(means, intervals, strict=True)])
    return np.clip(means - lows, 0, None), np.clip(highs - means, 0, None)


def length_histograms(report: EvaluationReport) -> bytes:
    """Words per output, one panel per model, each with the reference lengths outlined for comparison."""
    labels = ordered_labels(list(report.models))
    lengths = {label: [word_count(text) for text in report.models[label].predictions] for label in labels}
    references = [float(value) for value in report.reference_lengths]
    panels = max(len(labels), 1)
    figure = Figure(figsize=(WIDTH_INCHES, 0.45 + 1.05 * panels), dpi=DPI, layout="constrained")
    axes_list = np.atleast_1d(figure.subplots(panels, 1, sharex=True, squeeze=False)[:, 0])
    everything = [value for values in lengths.values() for value in values] + references
    if not labels or not everything:
        return empty_chart(figure, axes_list[0], "no outputs")
    bins = histogram_bins(everything)
    for axes, label in zip(axes_list, labels, strict=True):
        axes.hist(lengths[label], bins=bins, color=model_colour(label, labels), alpha=0.75, label=label)
        if references:
            axes.hist(references, bins=bins, histtype="step", color=REFERENCE_COLOUR, linewidth=1.2,
                      label="references")
        axes.set_ylabel("outputs", fontsize=8)
        axes.yaxis.set_major_locator(MaxNLocator(integer=True, nbins=3))
        axes.tick_params(labelsize=8)
        axes.legend(loc="upper right", fontsize=8, frameon=False)
    axes_list[0].set_title("Words per output (references outlined)", fontsize=10)
    axes_list[-1].set_xlabel("words")
    return png_bytes(figure)


def histogram_bins(values: Sequence[float], most: int = 24) -> np.ndarray:
    """Shared bin edges of at most ``most`` whole-word-or-wider bins covering every value."""
    low, high = float(min(values)), float(max(values))
    count = int(min(most, max(1, np.ceil(high - low))))
    if high == low:
        return np.array([low - 0.5, high + 0.5])
    return np.linspace(low, high, count + 1)


def empty_chart(figure: Figure, axes: Axes, message: str) -> bytes:
    axes.text(0.5, 0.5, message, ha="center", va="center", transform=axes.transAxes)
    axes.set_axis_off()
    return png_bytes(figure)


def png_bytes(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, metadata=PNG_METADATA)
    return buffer.getvalue()
