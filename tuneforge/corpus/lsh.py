"""MinHash LSH banding math: how likely a pair at a given Jaccard similarity becomes a candidate, and a shape
(bands × rows) that makes it likely enough.

A pair at Jaccard ``s`` agrees on one MinHash permutation with probability ``s``, on a whole band of ``rows``
permutations with ``s**rows``, and on at least one of ``bands`` bands with ``1 - (1 - s**rows)**bands``.
"""

from __future__ import annotations

import math
import sys

MIN_RECALL = 0.95
_MAX_ROWS = 64


def lsh_recall(similarity: float, bands: int, rows: int) -> float:
    """Probability that a pair at Jaccard ``similarity`` shares at least one band key."""
    return -math.expm1(bands * math.log1p(-(similarity**rows))) if similarity < 1.0 else 1.0


def bands_needed(similarity: float, rows: int, target: float = MIN_RECALL) -> int:
    """The fewest bands of ``rows`` rows that reach ``target`` recall at ``similarity`` (0 < similarity ≤ 1)."""
    agree = similarity**rows
    if agree >= 1.0:
        return 1
    estimate = math.log1p(-target) / math.log1p(-agree) if agree > 0.0 else math.inf
    if estimate >= sys.maxsize:
        return sys.maxsize
    bands = max(1, math.ceil(estimate))
    if bands > 1 and lsh_recall(similarity, bands - 1, rows) >= target:
        bands -= 1
    elif lsh_recall(similarity, bands, rows) < target:
        bands += 1
    return bands


def suggest_shape(similarity: float, permutations: int, target: float = MIN_RECALL) -> tuple[int, int]:
    """A ``(bands, rows)`` reaching ``target`` recall at ``similarity`` with about ``permutations`` permutations:
    the most rows per band (fewest false candidates to verify) whose needed bands fit in ``permutations``, using
    all of them; when no shape fits, the one needing the fewest permutations."""
    fitting = [
        rows for rows in range(1, min(permutations, _MAX_ROWS) + 1)
        if bands_needed(similarity, rows, target) * rows <= permutations
    ]
    if fitting:
        rows = max(fitting)
        return permutations // rows, rows
    rows = min(range(1, _MAX_ROWS + 1), key=lambda rows: (bands_needed(similarity, rows, target) * rows, -rows))
    return bands_needed(similarity, rows, target), rows
