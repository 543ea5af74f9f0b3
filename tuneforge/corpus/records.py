"""The canonical row every stage after ingestion reads and writes, and JSONL helpers."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from tuneforge.atomic import AtomicFile

SPLITS = ("train", "validation", "test")


class Example(BaseModel):
    """One document → summary pair.

    ``group`` ties rows that must stay in one split (the three ACLSum aspects of one paper); it defaults to ``id``.
    ``summary`` is the training target; ``references`` holds every reference summary when a source has several
    (evaluation scores against the best of them) and is empty otherwise. ``language`` is set by cleaning.
    """

    id: str = Field(min_length=1)
    source: str = Field(min_length=1)
    group: str = Field(min_length=1)
    document: str
    summary: str
    references: list[str] = Field(default_factory=list)
    language: str | None = None

    @property
    def all_references(self) -> list[str]:
        return self.references or [self.summary]


def stable_id(*parts: str) -> str:
    return hashlib.sha1("\x1f".join(parts).encode()).hexdigest()[:16]


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)


def read_examples(path: Path) -> list[Example]:
    return [Example.model_validate(row) for row in read_jsonl(path)]


def write_jsonl(path: Path, rows: Iterable[BaseModel | dict[str, Any]]) -> int:
    """Write rows atomically (temp file, then rename) so readers never see half a file. Returns the row count."""
    count = 0
    with AtomicFile(path) as handle:
        for row in rows:
            data = row.model_dump() if isinstance(row, BaseModel) else row
            handle.write(json.dumps(data, ensure_ascii=False, sort_keys=True) + "\n")
            count += 1
        handle.commit()
    return count
