"""Deterministic train/validation/test assignment by a salted hash of each row's group.

A row's split depends only on its group key and the salt, never on which other rows exist, so adding data
never moves existing rows between splits, and rows sharing a group always land together.
"""

from __future__ import annotations

import hashlib

from tuneforge.profiles import SplitConfig


def split_of(group: str, config: SplitConfig) -> str:
    digest = hashlib.sha256(f"{config.salt}\x1f{group}".encode()).digest()
    position = int.from_bytes(digest[:8], "big") / 2**64
    if position < config.test_share:
        return "test"
    if position < config.test_share + config.validation_share:
        return "validation"
    return "train"
