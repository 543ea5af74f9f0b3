"""Deterministic train/validation/test assignment by a salted hash of each row's group.

A row's split depends only on its group key and the salt, never on which other rows exist, so adding data
never moves existing rows between splits, and rows sharing a group always land together.
"""

from __future__ import annotations

import hashlib
from collections import Counter

from tuneforge.corpus.records import SPLITS, Example
from tuneforge.profiles import SplitConfig


def split_of(group: str, config: SplitConfig) -> str:
    digest = hashlib.sha256(f"{config.salt}\x1f{group}".encode()).digest()
    position = int.from_bytes(digest[:8], "big") / 2**64
    if position < config.test_share:
        return "test"
    if position < config.test_share + config.validation_share:
        return "validation"
    return "train"


def assign_splits(examples: list[Example], config: SplitConfig) -> dict[str, list[Example]]:
    """Rows per split, each split sorted by id so the files are byte-stable."""
    ids = Counter(example.id for example in examples)
    duplicated = [example_id for example_id, count in ids.items() if count > 1]
    if duplicated:
        raise ValueError(f"{len(duplicated)} ids occur more than once across sources, e.g. {duplicated[0]!r}")
    splits: dict[str, list[Example]] = {name: [] for name in SPLITS}
    for example in examples:
        splits[split_of(example.group, config)].append(example)
    return {name: sorted(rows, key=lambda row: row.id) for name, rows in splits.items()}
