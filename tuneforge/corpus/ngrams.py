"""Stable 64-bit hashes of words and word n-grams, shared by the quality rules, MinHash and decontamination.

Words are hashed in Rust by rensa (the same value in every process, unlike Python's ``hash``); n-grams are
combined from word hashes with NumPy, so no n-gram string is ever built.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import rensa

# Odd multipliers, one per position in an n-gram (n ≤ 16), and a final avalanche so nearby n-grams spread out.
_POSITION_MULTIPLIERS = np.random.default_rng(0x7E57).integers(1, 2**63, size=16, dtype=np.uint64) * 2 + 1
_MIX_1 = np.uint64(0xFF51AFD7ED558CCD)
_MIX_2 = np.uint64(0xC4CEB9FE1A85EC53)
_SHIFT = np.uint64(33)


_WORD = re.compile(r"\w+")
# ASCII text: the word characters kept, every other byte a space, then split: the regex's tokens, several times faster.
_ASCII_WORDS = bytes.maketrans(bytes(range(256)), bytes(
    code if chr(code).isalnum() or code == ord("_") else 32 for code in range(128)) + b" " * 128)


def words(text: str) -> list[str]:
    """Lower-cased word tokens: case and punctuation never make two texts differ (``perception,`` is
    ``perception``), so an edit of a comma does not hide a near duplicate."""
    lowered = text.lower()
    if lowered.isascii():
        return lowered.encode().translate(_ASCII_WORDS).decode().split()
    return _WORD.findall(lowered)


def word_hashes(texts_words: Sequence[Sequence[str]]) -> list[np.ndarray]:
    """One uint64 array of word hashes per text, hashed in a single call for the whole batch."""
    hashed = rensa.RMinHash.hash_token_sets(texts_words)
    return [np.array(row, dtype=np.uint64) for row in hashed]


def ngram_hashes(hashes: np.ndarray, n: int) -> np.ndarray:
    """Hashes of every run of ``n`` consecutive words; a text shorter than ``n`` words gives one hash of all of it,
    and an empty text none."""
    if len(hashes) == 0:
        return hashes
    width = min(n, len(hashes))
    count = len(hashes) - width + 1
    combined = np.zeros(count, dtype=np.uint64)
    for position in range(width):
        combined += hashes[position : position + count] * _POSITION_MULTIPLIERS[position]
    return mix64(combined)


def mix64(values: np.ndarray) -> np.ndarray:
    """A 64-bit finalizer (MurmurHash3's), applied element-wise."""
    values = values ^ (values >> _SHIFT)
    values = values * _MIX_1
    values = values ^ (values >> _SHIFT)
    values = values * _MIX_2
    return values ^ (values >> _SHIFT)


def jaccard(left: np.ndarray, right: np.ndarray) -> float:
    """Jaccard similarity of two hash sets given as arrays (duplicates ignored); 1.0 for two empty sets."""
    left, right = np.unique(left), np.unique(right)
    union = len(np.union1d(left, right))
    return len(np.intersect1d(left, right, assume_unique=True)) / union if union else 1.0
