"""Read a raw source directory (``data/raw/<source>/``) into canonical examples.

A source is a directory of ``*.jsonl`` files, one JSON object per line, with the fields ``document`` and
``summary`` and optionally ``id`` and ``group``. Other field names are mapped by a ``source.yaml`` beside the
files::

    fields:            # canonical name: the name in your files
      document: abstract
      summary: tldr
      id: paper_id
      group: paper_id

Records that cannot be parsed or mapped are never dropped silently: each goes to the quarantine with its file,
line and reason, and a source whose bad share exceeds the threshold fails as a whole.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tuneforge.corpus.records import Example, stable_id

SOURCE_CONFIG = "source.yaml"
CANONICAL_FIELDS = ("id", "group", "document", "summary")
REQUIRED_FIELDS = ("document", "summary")


class SourceError(ValueError):
    """A raw source that cannot be used at all; the message says what is wrong and how to fix it."""


@dataclass
class Quarantined:
    file: str
    line: int
    reason: str
    record: str

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "reason": self.reason, "record": self.record}


@dataclass
class IngestResult:
    source: str
    examples: list[Example] = field(default_factory=list)
    quarantined: list[Quarantined] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    @property
    def bad_share(self) -> float:
        total = len(self.examples) + len(self.quarantined)
        return len(self.quarantined) / total if total else 0.0


def list_sources(raw_dir: Path) -> list[str]:
    """Source names: the sub-directories of ``raw_dir`` that hold at least one data file."""
    if not raw_dir.is_dir():
        return []
    return sorted(p.name for p in raw_dir.iterdir() if p.is_dir() and not p.name.startswith(".") and _data_files(p))


def require_sources(raw_dir: Path) -> list[str]:
    sources = list_sources(raw_dir)
    if not sources:
        state = "does not exist" if not raw_dir.exists() else "has no source directories with *.jsonl files"
        raise SourceError(
            f"{raw_dir} {state}. Put each source's JSONL files under {raw_dir}/<source>/ "
            "(fields: document, summary; optional id, group), or run `make demo` to place the embedded ACLSum corpus."
        )
    return sources


def load_field_mapping(source_dir: Path) -> dict[str, str]:
    config_path = source_dir / SOURCE_CONFIG
    mapping = {name: name for name in CANONICAL_FIELDS}
    if not config_path.exists():
        return mapping
    config = yaml.safe_load(config_path.read_text()) or {}
    fields = config.get("fields", {}) or {}
    unknown = sorted(set(fields) - set(CANONICAL_FIELDS))
    if unknown:
        raise SourceError(
            f"{config_path}: unknown canonical field(s) {unknown} under 'fields'; "
            f"map only {', '.join(CANONICAL_FIELDS)} to your field names"
        )
    mapping.update({key: str(value) for key, value in fields.items()})
    return mapping


def ingest_source(source_dir: Path, max_bad_share: float = 0.1) -> IngestResult:
    """Parse every data file of one source; raise ``SourceError`` when the source is unusable."""
    source = source_dir.name
    if not source_dir.is_dir():
        raise SourceError(f"Source directory {source_dir} does not exist; create it and put *.jsonl files in it.")
    mapping = load_field_mapping(source_dir)
    result = IngestResult(source=source)
    for path in _data_files(source_dir):
        result.files.append(path.name)
        with path.open(encoding="utf-8", errors="replace") as handle:
            for line_no, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                example, reason = _parse_line(line, mapping, source, f"{path.name}:{line_no}")
                if example is None:
                    result.quarantined.append(Quarantined(path.name, line_no, reason, line.rstrip("\n")[:2000]))
                else:
                    result.examples.append(example)
    if not result.examples:
        detail = f"; first problem: {_where(result.quarantined[0])}" if result.quarantined else ""
        raise SourceError(
            f"Source {source!r} ({source_dir}) has no readable rows{detail}. Each line must be a JSON object with "
            f"'document' and 'summary' (or map your field names in {source_dir / SOURCE_CONFIG})."
        )
    if result.bad_share > max_bad_share:
        first = result.quarantined[0]
        raise SourceError(
            f"Source {source!r}: {len(result.quarantined)} of {len(result.quarantined) + len(result.examples)} records "
            f"({result.bad_share:.0%}) could not be read, above the {max_bad_share:.0%} limit; "
            f"first at {_where(first)}"
        )
    return result


def _where(item: Quarantined) -> str:
    return f"{item.file}:{item.line}: {item.reason}"


def _data_files(source_dir: Path) -> list[Path]:
    return sorted(p for p in source_dir.glob("*.jsonl") if p.is_file())


def _parse_line(line: str, mapping: dict[str, str], source: str, where: str) -> tuple[Example | None, str]:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        return None, f"invalid JSON: {error.msg} at column {error.colno}"
    if not isinstance(record, dict):
        return None, f"expected a JSON object, got {type(record).__name__}"
    values: dict[str, str] = {}
    for name in CANONICAL_FIELDS:
        raw = record.get(mapping[name])
        if raw is None:
            if name in REQUIRED_FIELDS:
                return None, f"missing field {mapping[name]!r} (mapped to {name!r})"
            continue
        if isinstance(raw, list) and name == "document" and all(isinstance(item, str) for item in raw):
            raw = " ".join(raw)
        if not isinstance(raw, str | int):
            return None, f"field {mapping[name]!r} must be a string, got {type(raw).__name__}"
        values[name] = str(raw)
    example_id = values.get("id") or stable_id(source, values["document"], values["summary"])
    return Example(
        id=f"{source}/{example_id}",
        source=source,
        group=values.get("group") or example_id,
        document=values["document"],
        summary=values["summary"],
    ), ""
