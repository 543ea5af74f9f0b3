"""Evaluation figures as one typed table, and the one flat form MLflow keeps them in.

A ``ScoreTable`` maps a model label ("candidate", "base", "champion", "lead") to each metric's mean and interval
bounds. MLflow metrics are flat names: ``candidate_rougeL``, ``candidate_rougeL_low``, ``candidate_rougeL_high``.
``flatten`` writes that form and ``parse`` reads it back; nothing else builds or splits those names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tuneforge.evaluation.report import EvaluationReport

Figure = tuple[float, float, float]  # mean, interval low, interval high
BOUNDS = ("low", "high")


@dataclass
class ScoreTable:
    figures: dict[str, dict[str, Figure]] = field(default_factory=dict)  # label -> metric -> figure

    @classmethod
    def from_report(cls, report: EvaluationReport) -> ScoreTable:
        return cls({label: {metric: (model.scores[metric], *model.intervals[metric]) for metric in model.scores}
                    for label, model in report.models.items()})

    @classmethod
    def from_means(cls, means: dict[str, dict[str, float]], intervals: dict[str, dict[str, list[float]]]) -> ScoreTable:
        """From the per-label means and ``(low, high)`` intervals the evaluation asset outputs."""
        return cls({label: {metric: (mean, *intervals[label][metric]) for metric, mean in by_metric.items()}
                    for label, by_metric in means.items()})

    def figure(self, label: str, metric: str) -> Figure | None:
        return self.figures.get(label, {}).get(metric)

    def flatten(self, bounds: bool = True) -> dict[str, float]:
        flat: dict[str, float] = {}
        for label, by_metric in self.figures.items():
            for metric, (mean, low, high) in by_metric.items():
                flat[f"{label}_{metric}"] = mean
                if bounds:
                    flat |= {f"{label}_{metric}_low": low, f"{label}_{metric}_high": high}
        return flat

    @classmethod
    def parse(cls, flat: dict[str, float]) -> ScoreTable:
        """The figures of ``flatten``'s output; other metrics in ``flat`` (names without both bounds) are ignored."""
        table = cls()
        for name, mean in flat.items():
            label, _, metric = name.partition("_")
            if not metric or name.endswith(tuple(f"_{bound}" for bound in BOUNDS)):
                continue
            low, high = (flat.get(f"{name}_{bound}") for bound in BOUNDS)
            if low is not None and high is not None:
                table.figures.setdefault(label, {})[metric] = (mean, low, high)
        return table


def mlflow_metrics(report: EvaluationReport) -> dict[str, float]:
    """What an evaluation logs: every figure with its bounds, and each model's guard rates."""
    metrics = ScoreTable.from_report(report).flatten()
    for label, model in report.models.items():
        metrics[f"{label}_degenerate_rate"] = model.degenerate["any"]
        metrics[f"{label}_safety_flag_rate"] = model.safety["rate"]
    return metrics
