"""Decontamination: find training and validation rows that share long word n-grams with a test row.

The test rows' n-gram hashes go into one sorted NumPy array (with the test row each came from), so a lookup is a
binary search and memory is 12 bytes per test n-gram. A row is contaminated when, for some test row, the share of
n-grams they have in common reaches the threshold; the share is taken of the smaller of the two n-gram sets, so
a short test summary pasted inside a long training document counts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from tuneforge.corpus.ngrams import ngram_hashes, word_hashes, words


def row_ngrams(document: str, summary: str, n: int) -> np.ndarray:
    """Unique hashes of the word n-grams of the document and of the summary (never spanning the two)."""
    parts = [words for words in (words(document), words(summary)) if len(words) >= n]
    if not parts:
        return np.zeros(0, dtype=np.uint64)
    return np.unique(np.concatenate([ngram_hashes(hashes, n) for hashes in word_hashes(parts)]))


@dataclass(frozen=True)
class Contamination:
    test_id: str
    shared: int
    share: float


class HeldOutNgrams:
    """The n-grams of the test split, searchable by any other row."""

    def __init__(self, rows: Iterable[tuple[str, str, str]], n: int) -> None:
        """``rows``: (id, document, summary) of every test row."""
        self.n = n
        self.ids: list[str] = []
        sizes: list[int] = []
        hashes: list[np.ndarray] = []
        for test_id, document, summary in rows:
            ngrams = row_ngrams(document, summary, n)
            hashes.append(ngrams)
            sizes.append(len(ngrams))
            self.ids.append(test_id)
        self._sizes = np.array(sizes, dtype=np.int64)
        flat = np.concatenate(hashes) if hashes else np.zeros(0, dtype=np.uint64)
        owners = np.repeat(np.arange(len(hashes), dtype=np.int32), self._sizes)
        order = np.argsort(flat, kind="stable")
        self._hashes, self._owners = flat[order], owners[order]

    def __len__(self) -> int:
        return len(self.ids)

    def match(self, document: str, summary: str, threshold: float) -> Contamination | None:
        """The test row this row overlaps most, when the overlap share reaches ``threshold``."""
        ngrams = row_ngrams(document, summary, self.n)
        if not len(ngrams) or not len(self._hashes):
            return None
        start = np.searchsorted(self._hashes, ngrams, side="left")
        end = np.searchsorted(self._hashes, ngrams, side="right")
        hit = end > start
        if not hit.any():
            return None
        # Every (n-gram, test row) occurrence: an n-gram shared by several test rows counts for each of them.
        owners = np.concatenate([self._owners[s:e] for s, e in zip(start[hit], end[hit], strict=True)])
        rows, shared = np.unique(owners, return_counts=True)
        shares = shared / np.minimum(self._sizes[rows], len(ngrams))
        best = int(np.argmax(shares))
        if shares[best] < threshold:
            return None
        return Contamination(self.ids[rows[best]], int(shared[best]), float(shares[best]))
