"""One day of served traffic, measured: volume and errors, latency, output quality, users' ratings, and drift of the
live documents from the training data. Reads the request log and the feedback log (``tuneforge/serving``); each
figure is judged against ``LiveConfig`` only when the day holds enough of what it counts.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from tuneforge.corpus.records import read_examples
from tuneforge.evaluation.output_checks import degenerate_flags, unsupported_content
from tuneforge.monitoring.drift import Measure, SampledDocument, compare
from tuneforge.profiles import DriftConfig, LiveConfig

ERROR = "error"


@dataclass(frozen=True)
class Judged:
    name: str
    value: float | None  # None: too little traffic to judge
    threshold: float
    breached: bool
    detail: str


@dataclass
class LiveReport:
    day: str
    requests: int  # answered, failed (5xx) or turned away (429); requests with a 4xx of their own are not counted
    answered: int
    errors: int
    error_rate: float | None
    latency_p50: float | None
    latency_p95: float | None
    latency_p99: float | None
    first_token_p50: float | None
    tokens_per_second: float | None
    degenerate_rate: float | None
    unsupported_number_share: float | None
    ratings: int
    mean_rating: float | None
    low_rating_share: float | None
    corrections: int
    versions: dict[str, int]
    drift: list[Measure] = field(default_factory=list)
    judged: list[Judged] = field(default_factory=list)

    def breached(self, *names: str) -> list[Judged]:
        return [j for j in self.judged if j.breached and (not names or j.name in names)]

    def as_dict(self) -> dict:
        return asdict(self)


def _quantile(values: list[float], q: float) -> float | None:
    return float(np.quantile(values, q)) if values else None


def measure_live(day: str, requests: Iterable[dict], feedback: Iterable[dict], train_path: Path | None,
                 config: LiveConfig, drift: DriftConfig) -> LiveReport:
    logged = list(requests)
    # a request refused for its own fault (a 4xx other than 429) says nothing of the service
    entries = [e for e in logged if not (400 <= e.get("status", 200) < 500 and e.get("status") != 429)]
    answered = [e for e in entries if e.get("status", 200) == 200 and e.get("output") is not None]
    errors = len(entries) - len(answered)
    seconds = [e["seconds"] for e in answered if e.get("seconds") is not None]
    first = [e["first_token_seconds"] for e in answered if e.get("first_token_seconds") is not None]
    tokens = sum(e.get("completion_tokens") or 0 for e in answered)
    degenerate = [any(degenerate_flags(e["output"], e.get("finish_reason") == "stop").values()) for e in answered]
    grounded = [unsupported_content(e["output"], e["document"]) for e in answered if e.get("document")]
    numbers = sum(g.numbers for g in grounded)
    rated = [f["rating"] for f in feedback if f.get("rating") is not None]
    corrections = sum(1 for f in feedback if f.get("correction"))
    report = LiveReport(
        day=day, requests=len(entries), answered=len(answered), errors=errors,
        error_rate=errors / len(entries) if entries else None,
        latency_p50=_quantile(seconds, 0.5), latency_p95=_quantile(seconds, 0.95),
        latency_p99=_quantile(seconds, 0.99), first_token_p50=_quantile(first, 0.5),
        tokens_per_second=tokens / sum(seconds) if seconds and sum(seconds) > 0 else None,
        degenerate_rate=sum(degenerate) / len(degenerate) if degenerate else None,
        unsupported_number_share=(sum(g.unsupported_numbers for g in grounded) / numbers) if numbers else None,
        ratings=len(rated), mean_rating=float(np.mean(rated)) if rated else None,
        low_rating_share=sum(r <= config.low_rating for r in rated) / len(rated) if rated else None,
        corrections=corrections, versions=dict(Counter(str(e.get("version")) for e in answered)),
    )
    documents = [e["document"] for e in answered if e.get("document")]
    if train_path is not None and train_path.is_file():
        report.drift = _document_drift(documents, train_path, drift)
    report.judged = judge(report, config)
    return report


def _document_drift(documents: list[str], train_path: Path, config: DriftConfig) -> list[Measure]:
    def sampled(texts: list[str], prefix: str) -> list[SampledDocument]:
        return [SampledDocument(f"{prefix}{i}", "live", len(text.split()), text[:config.max_document_chars], i)
                for i, text in enumerate(texts[:config.max_rows])]

    training = [row.document for row in read_examples(train_path)]
    return compare(sampled(training, "train-"), sampled(documents, "live-"), config)


def judge(report: LiveReport, config: LiveConfig) -> list[Judged]:
    enough = report.requests >= config.min_requests
    few = f"too few requests to judge ({report.requests}, at least {config.min_requests})"

    def judged(name: str, value: float | None, threshold: float, above_is_bad: bool, counted: bool,
               why_not: str, unit: str = "") -> Judged:
        if value is None or not counted:
            return Judged(name, None, threshold, False, why_not)
        bad = value > threshold if above_is_bad else value < threshold
        relation = (">" if bad else "<=") if above_is_bad else ("<" if bad else ">=")
        return Judged(name, value, threshold, bad, f"{value:.3g}{unit} {relation} {threshold:g}{unit}")

    drifted = [m.name for m in report.drift if m.drifted]
    judged_drift = [m for m in report.drift if m.value is not None]
    return [
        judged("error_rate", report.error_rate, config.max_error_rate, True, enough, few),
        judged("latency_p95", report.latency_p95, config.max_latency_p95_seconds, True, enough, few, " s"),
        judged("degenerate_rate", report.degenerate_rate, config.max_degenerate_rate, True, enough, few),
        judged("mean_rating", report.mean_rating, config.min_mean_rating, False, report.ratings >= config.min_ratings,
               f"too few ratings to judge ({report.ratings}, at least {config.min_ratings})"),
        Judged("document_drift", float(len(drifted)), 0, bool(drifted),
               ("drifted: " + ", ".join(drifted)) if drifted else
               ("no measure beyond its threshold" if judged_drift else "too few documents or no training data")),
    ]


def read_day(directory: Path, day: str) -> list[dict]:
    """The entries of one day's JSONL log under ``directory`` (none when there is no file)."""
    path = directory / f"{day}.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
