"""Length bounds learned from a source's own distribution, so that what counts as too short or too long is an
outlier *of that source* (a one-line question, a dialogue, a bill) rather than a fixed word count.

Word counts are compared on a log scale, where text lengths are roughly symmetric. A length is an outlier beyond
Tukey's far-out fences, ``fence`` interquartile ranges outside the quartiles (3 by default), and never within a
factor of ``MIN_SPREAD`` of the quartiles, so a source whose texts all have nearly the same length does not lose a
well-formed row that is merely twice as long. A bound the configuration sets explicitly wins over the learned one;
with fewer than ``MIN_ROWS_TO_LEARN`` rows nothing is learned and only explicit bounds apply.
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

    def apply(self, config: CleaningConfig) -> CleaningConfig:
        """``config`` with every length bound set (learned where it was None)."""
        return config.model_copy(update={
            "min_document_words": self.document.low, "max_document_words": self.document.high,
            "min_summary_words": self.summary.low, "max_summary_words": self.summary.high,
        })

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LengthBounds:
        def bound(values: dict[str, Any]) -> Bound:
            quartiles = values.get("quartiles")
            return Bound(**{**values, "quartiles": tuple(quartiles) if quartiles else None})

        return cls(document=bound(data["document"]), summary=bound(data["summary"]), rows=data["rows"])

    def as_markdown(self) -> str:
        return "\n".join([
            "| text | words kept | from |", "|---|---|---|",
            f"| document | {self.document.describe()} | {self.rows} rows |",
            f"| summary | {self.summary.describe()} | {self.rows} rows |",
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
        return cls(documents, summaries, sum(b.rows for b in bounds))


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

    return LengthBounds(
        document=bound(document_words, config.min_document_words, config.max_document_words),
        summary=bound(summary_words, config.min_summary_words, config.max_summary_words),
        rows=rows,
    )


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
