"""Length bounds learned from a source's own distribution, so that what counts as too short or too long is an
outlier *of that source* (a one-line question, a dialogue, a bill) rather than a fixed word count.

Word counts are compared on a log scale, where text lengths are roughly symmetric. A length is an outlier beyond
Tukey's far-out fences, ``fence`` interquartile ranges outside the quartiles (3 by default), and never within a
factor of ``MIN_SPREAD`` of the quartiles, so a source whose texts all have nearly the same length does not lose a
well-formed row that is merely twice as long. The summary-to-document ratio gets a ceiling of twice its 95th
percentile (and at least 0.9). A bound the configuration sets explicitly wins over the learned one; with fewer than
``MIN_ROWS_TO_LEARN`` rows nothing is learned and only explicit bounds apply.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tuneforge.profiles import CleaningConfig

MIN_ROWS_TO_LEARN = 30
MIN_SPREAD = 4.0
# A summary longer than this share of its document is suspect (a swapped field mapping, a copy) unless the source's
# own summaries often are: the learned ceiling is never below it.
MIN_RATIO_CEILING = 0.9
RATIO_MARGIN = 2.0
UNBOUNDED = 10**9  # words; stands in for "no upper bound" where an integer is needed


@dataclass(frozen=True)
class Bound:
    """One column's accepted word-count range, with where each end came from and the statistics behind it."""

    low: int
    high: int
    low_from: str  # "learned", "configured" or "none"
    high_from: str
    quartiles: tuple[float, float, float] | None = None  # q1, median, q3 of the word counts

    def describe(self) -> str:
        stats = ""
        if self.quartiles:
            q1, median, q3 = self.quartiles
            stats = f"; quartiles {q1:g} / {median:g} / {q3:g}"
        high = "no limit" if self.high >= UNBOUNDED else f"{self.high} ({self.high_from})"
        return f"{self.low} ({self.low_from}) to {high}{stats}"


@dataclass(frozen=True)
class LengthBounds:
    document: Bound
    summary: Bound
    rows: int  # rows the bounds were learned from
    max_ratio: float = MIN_RATIO_CEILING  # summary words / document words
    max_ratio_from: str = "none"

    def apply(self, config: CleaningConfig) -> CleaningConfig:
        """``config`` with every length bound set (learned where it was None)."""
        return config.model_copy(update={
            "min_document_words": self.document.low, "max_document_words": self.document.high,
            "min_summary_words": self.summary.low, "max_summary_words": self.summary.high,
            "max_summary_document_ratio": self.max_ratio,
        })

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LengthBounds:
        def bound(values: dict[str, Any]) -> Bound:
            quartiles = values.get("quartiles")
            return Bound(**{**values, "quartiles": tuple(quartiles) if quartiles else None})

        return cls(document=bound(data["document"]), summary=bound(data["summary"]), rows=data["rows"],
                   max_ratio=data.get("max_ratio", MIN_RATIO_CEILING),
                   max_ratio_from=data.get("max_ratio_from", "none"))

    def as_markdown(self) -> str:
        return "\n".join([
            "| text | words kept | from |", "|---|---|---|",
            f"| document | {self.document.describe()} | {self.rows} rows |",
            f"| summary | {self.summary.describe()} | {self.rows} rows |",
            f"| summary / document | at most {self.max_ratio:.2f} ({self.max_ratio_from}) | {self.rows} rows |",
        ])

    @classmethod
    def union(cls, bounds: Iterable[LengthBounds]) -> LengthBounds | None:
        """The widest bounds that every one of ``bounds`` lies within (for data pooled from several sources)."""
        bounds = list(bounds)
        if not bounds:
            return None

        def widest(parts: list[Bound]) -> Bound:
            return Bound(min(p.low for p in parts), max(p.high for p in parts), "union", "union")

        documents, summaries = widest([b.document for b in bounds]), widest([b.summary for b in bounds])
        return cls(documents, summaries, sum(b.rows for b in bounds), max(b.max_ratio for b in bounds), "union")


def fences(counts: np.ndarray, fence: float) -> tuple[int, int, tuple[float, float, float]]:
    """Far-out fences of word counts on a log scale, at least ``MIN_SPREAD`` times beyond the quartiles."""
    logs = np.log(np.maximum(counts, 1))
    q1, median, q3 = np.percentile(logs, [25, 50, 75])
    spread = fence * (q3 - q1)
    low = min(q1 - spread, q1 - math.log(MIN_SPREAD))
    high = max(q3 + spread, q3 + math.log(MIN_SPREAD))
    quartiles = tuple(round(float(math.exp(value)), 1) for value in (q1, median, q3))
    return max(1, math.floor(math.exp(low))), math.ceil(math.exp(high)), quartiles  # type: ignore[return-value]


def learn_bounds(document_words: np.ndarray, summary_words: np.ndarray, config: CleaningConfig) -> LengthBounds:
    """Bounds for one source from its rows' word counts; explicit settings in ``config`` win."""
    rows = len(document_words)

    def bound(counts: np.ndarray, configured_low: int | None, configured_high: int | None) -> Bound:
        low, high, low_from, high_from, quartiles = 1, UNBOUNDED, "none", "none", None
        if rows >= MIN_ROWS_TO_LEARN:
            low, high, quartiles = fences(counts, config.length_fence)
            low_from = high_from = "learned"
        if configured_low is not None:
            low, low_from = configured_low, "configured"
        if configured_high is not None:
            high, high_from = configured_high, "configured"
        return Bound(low, max(low, high), low_from, high_from, quartiles)

    max_ratio, max_ratio_from = MIN_RATIO_CEILING, "none"
    if config.max_summary_document_ratio is not None:
        max_ratio, max_ratio_from = config.max_summary_document_ratio, "configured"
    elif rows >= MIN_ROWS_TO_LEARN:
        max_ratio = max(MIN_RATIO_CEILING, ratio_ceiling(summary_words, document_words))
        max_ratio_from = "learned"
    return LengthBounds(
        document=bound(document_words, config.min_document_words, config.max_document_words),
        summary=bound(summary_words, config.min_summary_words, config.max_summary_words),
        rows=rows, max_ratio=round(max_ratio, 3), max_ratio_from=max_ratio_from,
    )


def ratio_ceiling(summary_words: np.ndarray, document_words: np.ndarray) -> float:
    """Twice the 95th percentile of the summary-to-document length ratio. Not a quartile fence: ratios are often
    bimodal (one-line labels and full notes of the same dialogues), which widens quartile fences past any use."""
    ratios = np.maximum(summary_words, 1) / np.maximum(document_words, 1)
    return float(RATIO_MARGIN * np.percentile(ratios, 95))


def word_counts(rows_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Whitespace word counts of each ingested row's document and summary (before cleaning repairs the text: the
    fences are far enough out that repair does not move a row across them)."""
    documents: list[int] = []
    summaries: list[int] = []
    with rows_path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                row = json.loads(line)
                documents.append(len(str(row.get("document") or "").split()))
                summaries.append(len(str(row.get("summary") or "").split()))
    return np.array(documents, dtype=np.int64), np.array(summaries, dtype=np.int64)


def source_bounds(rows_path: Path, config: CleaningConfig) -> LengthBounds:
    """The length bounds of the source whose ingested rows are in ``rows_path``."""
    documents, summaries = word_counts(rows_path)
    return learn_bounds(documents, summaries, config)
