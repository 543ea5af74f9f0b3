"""Cleaning: normalize text, filter by length, drop exact duplicates, and count what each step did.

Each step is a small function over one example; ``clean_examples`` runs them in order and keeps a funnel
(rows in, rows out, and how many each step removed or changed). Removed rows are returned with their reason,
so callers can keep them instead of dropping them silently.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from tuneforge.corpus.records import Example
from tuneforge.profiles import CleaningConfig

_SPACE_BEFORE_PUNCT = re.compile(r"\s+([,.;:!?%)\]}])")
_SPACE_AFTER_OPEN = re.compile(r"([(\[{])\s+")
_WHITESPACE = re.compile(r"\s+")


def normalize_text(text: str) -> str:
    """NFKC, no control characters, tokenizer-style spacing undone (``word , word`` → ``word, word``)."""
    text = unicodedata.normalize("NFKC", text)
    text = "".join(ch if ch.isprintable() or ch.isspace() else " " for ch in text)
    text = _WHITESPACE.sub(" ", text).strip()
    text = _SPACE_BEFORE_PUNCT.sub(r"\1", text)
    return _SPACE_AFTER_OPEN.sub(r"\1", text)


@dataclass
class Funnel:
    rows_in: int = 0
    rows_out: int = 0
    changed: dict[str, int] = field(default_factory=dict)
    removed: dict[str, int] = field(default_factory=dict)

    def as_rows(self) -> list[dict[str, int | str]]:
        steps = ["normalize", *self.removed]
        return [
            {"step": step, "changed": self.changed.get(step, 0), "removed": self.removed.get(step, 0)}
            for step in steps
        ]


@dataclass
class CleanResult:
    kept: list[Example]
    rejected: list[tuple[Example, str]]
    funnel: Funnel


def _length_reason(example: Example, config: CleaningConfig) -> tuple[str, str] | None:
    doc_words = len(example.document.split())
    summary_words = len(example.summary.split())
    if not example.document or not example.summary:
        return "empty", "document or summary is empty"
    if doc_words < config.min_document_words:
        return "document_too_short", f"document has {doc_words} words (< {config.min_document_words})"
    if doc_words > config.max_document_words:
        return "document_too_long", f"document has {doc_words} words (> {config.max_document_words})"
    if summary_words < config.min_summary_words:
        return "summary_too_short", f"summary has {summary_words} words (< {config.min_summary_words})"
    if summary_words > config.max_summary_words:
        return "summary_too_long", f"summary has {summary_words} words (> {config.max_summary_words})"
    return None


def clean_examples(examples: list[Example], config: CleaningConfig) -> CleanResult:
    funnel = Funnel(rows_in=len(examples))
    funnel.removed = dict.fromkeys(
        ["empty", "document_too_short", "document_too_long", "summary_too_short", "summary_too_long",
         "exact_duplicate"], 0
    )
    kept: list[Example] = []
    rejected: list[tuple[Example, str]] = []
    seen: dict[tuple[str, str], str] = {}
    for example in examples:
        normalized = example.model_copy(
            update={"document": normalize_text(example.document), "summary": normalize_text(example.summary)}
        )
        if normalized != example:
            funnel.changed["normalize"] = funnel.changed.get("normalize", 0) + 1
        problem = _length_reason(normalized, config)
        if problem is None:
            key = (normalized.document, normalized.summary)
            if key in seen:
                problem = ("exact_duplicate", f"same document and summary as {seen[key]}")
            else:
                seen[key] = normalized.id
        if problem:
            funnel.removed[problem[0]] += 1
            rejected.append((normalized, problem[1]))
        else:
            kept.append(normalized)
    funnel.rows_out = len(kept)
    return CleanResult(kept=kept, rejected=rejected, funnel=funnel)
