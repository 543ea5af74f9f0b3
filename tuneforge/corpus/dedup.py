"""Exact and near-duplicate detection over a stream of rows, in memory proportional to the row count only.

Each row contributes a 64-bit exact key (its document and summary) and a MinHash signature of its document's word
n-grams, folded into ``bands`` band keys of ``rows`` permutations each. The n, bands and rows come from
:class:`~tuneforge.profiles.CleaningConfig`, which refuses a shape unlikely to find pairs at its threshold
(:mod:`tuneforge.corpus.lsh`; the default 20 × 5 catches a pair at Jaccard 0.8 with probability 0.9996). Rows
sharing a band key are candidates; every candidate pair is verified on the real texts before it counts, so LSH
false positives never remove a row. Verified pairs are merged with union-find and each cluster keeps its earliest
row.

A row is a near duplicate only when its document *and* its summary are similar: one paper with two different
summaries (ACLSum's aspects) is two rows, not a duplicate.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import rensa

from tuneforge.corpus.ngrams import jaccard, mix64, ngram_hashes, word_hashes, words
from tuneforge.corpus.rowfiles import RowFiles

_SEED = 20240601


def exact_key(document: str, summary: str) -> int:
    digest = hashlib.blake2b(f"{document}\x1f{summary}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def shingles(text: str, ngram: int) -> np.ndarray:
    return ngram_hashes(word_hashes([words(text)])[0], ngram)


@lru_cache
def _band_multipliers(rows: int) -> np.ndarray:
    return np.random.default_rng(_SEED).integers(1, 2**63, size=rows, dtype=np.uint64) * 2 + 1


def band_keys(shingle_sets: list[np.ndarray], *, bands: int, rows: int) -> np.ndarray:
    """``(len(shingle_sets), bands)`` uint64 LSH keys, each from ``rows`` MinHash permutations; a row without
    shingles gets keys that match nothing."""
    if not shingle_sets:
        return np.zeros((0, bands), dtype=np.uint64)
    lengths = np.fromiter(map(len, shingle_sets), dtype=np.uint64, count=len(shingle_sets))
    offsets = np.concatenate([np.zeros(1, dtype=np.uint64), np.cumsum(lengths, dtype=np.uint64)])
    matrix = rensa.RMinHash.digest_matrix_from_flat_token_hashes(
        np.concatenate(shingle_sets).astype(np.uint64, copy=False), offsets, bands * rows, _SEED
    )
    digests = np.array(matrix.to_rows(), dtype=np.uint64).reshape(len(shingle_sets), bands, rows)
    keys = mix64((digests * _band_multipliers(rows)).sum(axis=2, dtype=np.uint64))
    empty = lengths == 0
    if empty.any():
        keys[empty] = np.random.default_rng().integers(0, 2**63, size=(int(empty.sum()), bands), dtype=np.uint64)
    return keys


@dataclass(frozen=True)
class Duplicate:
    kept: int  # the cluster's earliest row, which stays
    reason: str  # "exact_duplicate" or "near_duplicate"
    partner: int  # the row this one was matched with (``kept`` itself, or a row chained to it)
    similarity: str

    @property
    def step(self) -> str:
        return "exact_dedup" if self.reason == "exact_duplicate" else "near_dedup"

    def fields(self, ids: Mapping[int, str]) -> dict[str, str]:
        """What a removed row records about its removal, with row numbers turned into ids."""
        return {
            "step": self.step,
            "reason": self.reason,
            "detail": f"{self.similarity} as {ids[self.partner]}"
            if self.reason == "exact_duplicate"
            else f"near duplicate of {ids[self.partner]}: {self.similarity}",
            "duplicate_of": ids[self.kept],
        }

    @staticmethod
    def referenced(duplicates: Mapping[int, Duplicate]) -> set[int]:
        """Rows whose ids the removed rows' records need."""
        return {index for duplicate in duplicates.values() for index in (duplicate.kept, duplicate.partner)}


# verify(earlier, later) -> a description of the similarity when the pair is a near duplicate, else None.
Verifier = Callable[[int, int], str | None]


class DuplicateFinder:
    """Collects keys chunk by chunk (row indices continue across chunks), then finds every row's kept original."""

    def __init__(self) -> None:
        self._exact: list[np.ndarray] = []
        self._bands: list[np.ndarray] = []
        self.rows = 0

    def add(self, exact_keys: np.ndarray, bands: np.ndarray) -> None:
        if len(exact_keys) != len(bands):
            raise ValueError(f"{len(exact_keys)} exact keys but {len(bands)} band-key rows")
        self._exact.append(np.asarray(exact_keys, dtype=np.uint64))
        self._bands.append(np.asarray(bands, dtype=np.uint64))
        self.rows += len(exact_keys)

    def find(self, verify: Verifier) -> dict[int, Duplicate]:
        """Removed row index → its duplicate record; rows not in the result are kept."""
        duplicates = self._exact_duplicates()
        bands = np.concatenate(self._bands) if self._bands else np.zeros((0, 0), dtype=np.uint64)
        self._bands.clear()
        active = np.ones(self.rows, dtype=bool)
        active[list(duplicates)] = False
        duplicates.update(_near_duplicates(bands, np.flatnonzero(active), verify))
        return duplicates

    def _exact_duplicates(self) -> dict[int, Duplicate]:
        keys = np.concatenate(self._exact) if self._exact else np.zeros(0, dtype=np.uint64)
        self._exact.clear()
        order = np.argsort(keys, kind="stable")
        ordered = keys[order]
        repeats = np.flatnonzero(ordered[1:] == ordered[:-1]) + 1
        run_start = np.maximum.accumulate(np.where(np.r_[True, ordered[1:] != ordered[:-1]], np.arange(len(keys)), 0))
        return {
            int(order[position]): Duplicate(kept, "exact_duplicate", kept, "same document and summary")
            for position in repeats
            for kept in [int(order[run_start[position]])]
        }


def _near_duplicates(bands: np.ndarray, active: np.ndarray, verify: Verifier) -> dict[int, Duplicate]:
    return cluster_pairs(_candidate_pairs(bands, active), verify)


def cluster_pairs(pairs: np.ndarray, verify: Verifier) -> dict[int, Duplicate]:
    """Union-find over candidate (earlier, later) pairs sorted by later then earlier, verifying each pair whose rows
    are not yet in one cluster; every cluster keeps its earliest row."""
    parent: dict[int, int] = {}
    matched: dict[int, tuple[int, str]] = {}

    def root(index: int) -> int:
        while index in parent:
            index = parent[index]
        return index

    for earlier, later in pairs.tolist():
        left, right = root(earlier), root(later)
        if left == right:
            continue
        similarity = verify(earlier, later)
        if similarity is None:
            continue
        parent[max(left, right)] = min(left, right)
        matched.setdefault(later, (earlier, similarity))
    duplicates = {}
    for index in sorted(parent):
        kept = root(index)
        partner, similarity = matched.get(index, (kept, "in the same cluster"))
        duplicates[index] = Duplicate(kept, "near_duplicate", partner, similarity)
    return duplicates


def _candidate_pairs(bands: np.ndarray, active: np.ndarray) -> np.ndarray:
    """Unique (earlier, later) index pairs sharing a band key, sorted; each bucket pairs its earliest row with the
    rest, which is all union-find needs."""
    found = []
    for band in range(bands.shape[1] if len(active) else 0):
        keys = bands[active, band]
        order = np.argsort(keys, kind="stable")
        ordered = keys[order]
        same = ordered[1:] == ordered[:-1]
        if not same.any():
            continue
        starts = np.maximum.accumulate(np.where(np.r_[True, ~same], np.arange(len(keys)), 0))
        later = np.flatnonzero(same) + 1
        found.append(np.stack([active[order[starts[later]]], active[order[later]]], axis=1))
    if not found:
        return np.zeros((0, 2), dtype=np.int64)
    pairs = np.unique(np.concatenate(found), axis=0)
    return pairs[np.lexsort((pairs[:, 0], pairs[:, 1]))]


class NearDuplicateCheck:
    """A :data:`Verifier` over rows in files: the document word ``ngram``-gram Jaccard and the summary word Jaccard
    must both reach their thresholds."""

    def __init__(self, rows: RowFiles, document_threshold: float, summary_threshold: float, ngram: int) -> None:
        self._rows = rows
        self._document_threshold = document_threshold
        self._summary_threshold = summary_threshold
        self._ngram = ngram
        self._shingles = lru_cache(maxsize=4096)(lambda row: shingles(self._rows.read(row)["document"], ngram))

    def __call__(self, earlier: int, later: int) -> str | None:
        document = jaccard(self._shingles(earlier), self._shingles(later))
        if document < self._document_threshold:
            return None
        summaries = word_hashes([words(self._rows.read(row)["summary"]) for row in (earlier, later)])
        summary = jaccard(*summaries)
        if summary < self._summary_threshold:
            return None
        return f"document {self._ngram}-gram Jaccard {document:.2f}, summary word Jaccard {summary:.2f}"
