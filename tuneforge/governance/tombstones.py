"""Tombstones: the records an erasure removed, as hashes, so ingestion skips them when a file brings them back.

A record is tombstoned by its id and by its content (document and summary, whitespace-collapsed): a re-dropped file
holding the same record under another id, or the same id with its content edited, is skipped as well.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from tuneforge.corpus.records import Example


@dataclass(frozen=True)
class Tombstone:
    request: str  # the erasure request that wrote it
    id_sha256: str
    content_sha256: str


def id_digest(example_id: str) -> str:
    return hashlib.sha256(f"id\x1f{example_id}".encode()).hexdigest()


def content_digest(document: str, summary: str) -> str:
    text = " ".join(document.split()) + "\x1f" + " ".join(summary.split())
    return hashlib.sha256(f"content\x1f{text}".encode()).hexdigest()


def tombstone_for(example: Example, request: str) -> Tombstone:
    return Tombstone(request, id_digest(example.id), content_digest(example.document, example.summary))


class Tombstones:
    """The tombstones in force; ``erases`` says which request removed a record, or None."""

    def __init__(self, entries: list[Tombstone]) -> None:
        self._by_id = {entry.id_sha256: entry.request for entry in entries}
        self._by_content = {entry.content_sha256: entry.request for entry in entries}
        self.requests = sorted({entry.request for entry in entries})

    @classmethod
    def load(cls, path: Path) -> Tombstones:
        if not path.exists():
            return cls([])
        entries = []
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                entries.append(Tombstone(**json.loads(line)))
            except (ValueError, TypeError) as error:
                raise ValueError(f"{path}:{number} is not a tombstone ({error}); restore the file from version "
                                 "control: without it erased records could come back") from None
        return cls(entries)

    def __len__(self) -> int:
        return len(self._by_id)

    def erases(self, example: Example) -> str | None:
        return self._by_id.get(id_digest(example.id)) or self._by_content.get(
            content_digest(example.document, example.summary))


def append_tombstones(path: Path, entries: list[Tombstone]) -> int:
    """Append the entries not yet present (a rerun appends nothing twice), durably; returns how many were new."""
    present = Tombstones.load(path)
    new = [entry for entry in entries if present._by_id.get(entry.id_sha256) != entry.request]
    if not new:
        return 0
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as handle:
        for entry in new:
            handle.write(json.dumps(asdict(entry), sort_keys=True) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    return len(new)
