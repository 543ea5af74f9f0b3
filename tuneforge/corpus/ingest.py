"""Read a raw source directory (``data/raw/<source>/``) into canonical examples, streaming.

A source is a directory of data files, read recursively in sorted order; the format follows the extension:
``.jsonl`` (one JSON object per line: the streaming format, use it for big sources), ``.json`` (an array of
objects, or one object; loaded whole), ``.csv`` (a header row, then one record per row), ``.parquet`` (read in
batches) and ``.txt`` (one document per file, its summary in ``<stem>.summary.txt`` beside it, its id the file's
path without the extension). Records carry the fields ``document`` and ``summary`` and optionally ``id`` and
``group``; other names, nested fields and the format are set in a ``source.yaml`` beside the files. SciTLDR-A,
for example, keeps each abstract as a list of sentences and several reference summaries per paper::

    fields:            # canonical name: the name in your files (a dotted path reaches into objects: meta.title)
      document: source # a string, or a list of strings joined with spaces
      summary: target  # a string, or a list: the first is the training target, all are kept as references
      id: paper_id     # a string or an integer; without it the id is a hash of document and summary
      group: paper_id  # rows of one group stay in one split; defaults to the id
    format: jsonl      # optional: read every file in this format (jsonl, json, csv, parquet, text)
    text:
      summary_suffix: .summary.txt   # plain text only: where a document's summary is

Nothing is dropped silently. A record that cannot be read or mapped goes to the quarantine file, one JSON object
per line: ``{"file", "line", "reason", "detail", "record"}`` (``line`` is null for a whole file: empty, binary,
a symlink leading outside ``data/raw``, an unsupported type...). Hidden files and README/LICENSE-style
documentation are skipped and listed in the report. A source whose quarantined share of records exceeds
``max_bad_share`` fails with ``SourceError``; its quarantine file is still written so it can be inspected.

Memory stays flat whatever the source size: rows are written as they are read, only the ids seen so far are kept
(to quarantine duplicates), and both output files are written to temporary names and renamed into place.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tuneforge.atomic import AtomicFile
from tuneforge.corpus import readers
from tuneforge.corpus.readers import (
    DEFAULT_SUMMARY_SUFFIX,
    MAX_RECORD_BYTES,
    DataFile,
    Problem,
    RawRecord,
    ReadOptions,
    Skipped,
)
from tuneforge.corpus.records import Example, stable_id

SOURCE_CONFIG = readers.CONFIG_NAME
CANONICAL_FIELDS = ("id", "group", "document", "summary")
REQUIRED_FIELDS = ("document", "summary")
SUPPORTED = ".jsonl, .json, .csv, .parquet or .txt"
SOURCE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
__all__ = ["MAX_RECORD_BYTES", "SOURCE_CONFIG", "IngestReport", "SourceConfig", "SourceError", "check_source_name",
           "ingest_source", "list_sources", "load_source_config", "require_sources", "to_example"]


class SourceError(ValueError):
    """A raw source that cannot be used at all; the message says what is wrong, where, and how to fix it."""


# --- source.yaml ----------------------------------------------------------------------------------------------


class FieldMapping(BaseModel):
    """Canonical field name -> the name (or dotted path) in the source's files."""

    model_config = ConfigDict(extra="forbid")
    id: str = Field("id", min_length=1)
    group: str = Field("group", min_length=1)
    document: str = Field("document", min_length=1)
    summary: str = Field("summary", min_length=1)


class TextSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    summary_suffix: str = Field(DEFAULT_SUMMARY_SUFFIX, min_length=2)

    @field_validator("summary_suffix")
    @classmethod
    def _names_a_sidecar(cls, value: str) -> str:
        if "/" in value or value == ".txt":
            raise ValueError("must be a file-name ending other than '.txt', such as '.summary.txt'")
        return value


class SourceConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    fields: FieldMapping = FieldMapping()
    format: Literal["jsonl", "json", "csv", "parquet", "text"] | None = None
    text: TextSettings = TextSettings()


ALLOWED_KEYS = {(): ("fields", "format", "text"), ("fields",): CANONICAL_FIELDS, ("text",): ("summary_suffix",)}


def load_source_config(source_dir: Path) -> SourceConfig:
    """The source's ``source.yaml`` (defaults when there is none); ``SourceError`` naming the bad key otherwise."""
    path = source_dir / SOURCE_CONFIG
    if not path.exists():
        return SourceConfig()
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError) as error:
        raise SourceError(f"{path} is not valid UTF-8 YAML: {error}") from error
    if config is None:
        return SourceConfig()
    if not isinstance(config, dict):
        raise SourceError(f"{path} must be a mapping with the keys fields, format and text, not a "
                          f"{type(config).__name__}")
    try:
        return SourceConfig.model_validate(config)
    except ValidationError as error:
        raise SourceError(f"{path}: {'; '.join(_config_problem(item) for item in error.errors())}") from error


def _config_problem(item: Any) -> str:
    location = tuple(str(part) for part in item["loc"])
    key = ".".join(location)
    if item["type"] == "extra_forbidden":
        allowed = ALLOWED_KEYS.get(location[:-1], ())
        return f"unknown key {key!r} (allowed: {', '.join(allowed)})"
    return f"key {key!r}: {item['msg']}"


# --- sources --------------------------------------------------------------------------------------------------


def check_source_name(name: str) -> str:
    """``name`` if it is a plain directory name that keeps the source inside ``data/raw``; ``SourceError`` if not."""
    if not name:
        why = "it is empty"
    elif "/" in name or "\\" in name or name in (".", ".."):
        why = "it is a path, which could lead outside data/raw"
    elif name.startswith("."):
        why = "it starts with '.' (hidden, or a path such as '..')"
    elif not SOURCE_NAME.fullmatch(name):
        why = "it has characters other than letters, digits, '.', '_' and '-' (or is over 100 characters)"
    else:
        return name
    raise SourceError(f"Source name {name!r} is not allowed: {why}. Name the directory under data/raw/ with letters, "
                      "digits, '.', '_' and '-' (starting with a letter or digit).")


def list_sources(raw_dir: Path) -> list[str]:
    """Source names: the sub-directories of ``raw_dir`` that hold at least one data file (any supported format)."""
    if not raw_dir.is_dir():
        return []
    return sorted(path.name for path in raw_dir.iterdir()
                  if path.is_dir() and not path.name.startswith(".") and _holds_data(path))


def _holds_data(source_dir: Path) -> bool:
    try:
        format_override = load_source_config(source_dir).format
    except SourceError:
        format_override = None  # listed if it has data files; ingesting it then reports the config error
    return readers.has_data_files(source_dir, format_override)


def require_sources(raw_dir: Path) -> list[str]:
    sources = list_sources(raw_dir)
    if not sources:
        state = "does not exist" if not raw_dir.exists() else f"has no source directories with {SUPPORTED} files"
        raise SourceError(
            f"{raw_dir} {state}. Put each source's files under {raw_dir}/<source>/ "
            "(fields: document, summary; optional id, group), or run `make demo` to place the embedded ACLSum corpus."
        )
    return sources


def _check_source_dir(source_dir: Path) -> str:
    source = check_source_name(source_dir.name)
    if ".." in source_dir.parts:
        raise SourceError(f"Source path {source_dir} contains '..'; pass data/raw/<source> with a plain source name.")
    if not source_dir.is_dir():
        raise SourceError(f"Source directory {source_dir} does not exist; create it and put {SUPPORTED} files in it.")
    raw_root, real = Path(os.path.realpath(source_dir.parent)), Path(os.path.realpath(source_dir))
    if real == raw_root or not real.is_relative_to(raw_root):
        raise SourceError(f"Source directory {source_dir} is a symlink to {real}, outside {raw_root}; copy the data "
                          f"into {source_dir} instead.")
    return source


# --- mapping --------------------------------------------------------------------------------------------------


class _BadField(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason, self.detail = reason, detail


_MISSING = object()
IDENTITY = FieldMapping()


def to_example(record: RawRecord, mapping: FieldMapping, source: str) -> Example | Problem:
    """The canonical example for one raw record, or the ``Problem`` that sends it to the quarantine."""
    if record.canonical:
        mapping = IDENTITY
    try:
        document = _document(_required(record.data, mapping.document, "document"), mapping.document)
        summary, references = _summary(_required(record.data, mapping.summary, "summary"), mapping.summary)
        key = _optional_key(record.data, mapping.id, "id")
        group = _optional_key(record.data, mapping.group, "group")
    except _BadField as bad:
        return Problem(record.file, record.line, bad.reason, record.label + bad.detail, record.preview())
    key = key or stable_id(source, document, summary)
    return Example(id=f"{source}/{key}", source=source, group=group or key, document=document, summary=summary,
                   references=references)


def _has_id(record: RawRecord, mapping: FieldMapping) -> bool:
    return record.canonical or _lookup(record.data, mapping.id) not in (_MISSING, None, "")


def _lookup(data: dict[str, Any], path: str) -> Any:
    if path in data:
        return data[path]
    value: Any = data
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return value


def _required(data: dict[str, Any], path: str, name: str) -> Any:
    value = _lookup(data, path)
    if value is _MISSING:
        raise _BadField("missing_field", f"missing field {path!r} (mapped to {name!r})")
    if value is None:
        raise _BadField("missing_field", f"field {path!r} (mapped to {name!r}) is null")
    return value


def _is_string_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(item, str) for item in value)


def _describe(value: Any) -> str:
    if isinstance(value, list):
        if not value:
            return "an empty list"
        return "a list containing " + next(type(item).__name__ for item in value if not isinstance(item, str))
    return type(value).__name__


def _not_text(path: str, name: str, value: Any) -> _BadField:
    return _BadField("wrong_type", f"field {path!r} (mapped to {name!r}) must be a string or a list of strings, "
                                   f"got {_describe(value)}")


def _unicode(text: str, path: str, name: str) -> str:
    """``text`` if it can be written as UTF-8 (a JSON escape such as ``\\ud800`` gives a lone surrogate: it cannot)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise _BadField("invalid_unicode", f"field {path!r} (mapped to {name!r}) holds an unpaired surrogate "
                                           f"{error.object[error.start]!r} (from a JSON escape), which is not valid "
                                           "Unicode; fix the escape") from error
    return text


def _document(value: Any, path: str) -> str:
    if isinstance(value, str):
        return _unicode(value, path, "document")
    if _is_string_list(value):
        return _unicode(" ".join(value), path, "document")
    raise _not_text(path, "document", value)


def _summary(value: Any, path: str) -> tuple[str, list[str]]:
    """The training target and, when there are several distinct ones, every reference summary."""
    if isinstance(value, str):
        return _unicode(value, path, "summary"), []
    if _is_string_list(value):
        distinct = [_unicode(text, path, "summary") for text in dict.fromkeys(value)]
        return value[0], distinct if len(distinct) > 1 else []
    raise _not_text(path, "summary", value)


def _optional_key(data: dict[str, Any], path: str, name: str) -> str | None:
    value = _lookup(data, path)
    if value is _MISSING or value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise _BadField("wrong_type", f"field {path!r} (mapped to {name!r}) must be a string or an integer, "
                                      f"got {_describe(value)}")
    return _unicode(str(value), path, name)


# --- ingestion ------------------------------------------------------------------------------------------------


@dataclass
class IngestReport:
    """What ingesting one source read, kept and quarantined. Every record read is either a row or quarantined."""

    source: str
    files: list[str] = field(default_factory=list)
    rows: int = 0
    quarantined: int = 0
    quarantine_reasons: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # file -> why it is not data (hidden, documentation)

    @property
    def records_read(self) -> int:
        return self.rows + self.quarantined

    @property
    def bad_share(self) -> float:
        return self.quarantined / self.records_read if self.records_read else 0.0

    def as_dict(self) -> dict[str, Any]:
        reasons = dict(sorted(self.quarantine_reasons.items(), key=lambda item: (-item[1], item[0])))
        return {"source": self.source, "files": list(self.files), "records_read": self.records_read,
                "rows": self.rows, "quarantined": self.quarantined, "bad_share": round(self.bad_share, 4),
                "quarantine_reasons": reasons, "skipped": dict(self.skipped)}


class _Ingestion:
    """Routes each record of one source to the rows or the quarantine, and counts."""

    def __init__(self, source: str, mapping: FieldMapping, rows: AtomicFile, quarantine: AtomicFile) -> None:
        self.report = IngestReport(source=source)
        self.first_problem: Problem | None = None
        self._mapping, self._rows, self._quarantine = mapping, rows, quarantine
        # id -> where it was first read, packed as file index << 32 | line, to stay small at millions of rows.
        self._seen: dict[str, int] = {}

    def run(self, source_dir: Path, options: ReadOptions) -> None:
        for entry in readers.discover(source_dir, options):
            if isinstance(entry, Skipped):
                self.report.skipped[entry.name] = entry.why
            elif isinstance(entry, Problem):
                self.quarantine(entry)
            else:
                self._read(entry, options)

    def _read(self, data_file: DataFile, options: ReadOptions) -> None:
        self.report.files.append(data_file.name)
        for item in readers.read_file(data_file, options):
            if isinstance(item, Problem):
                self.quarantine(item)
            else:
                self._accept(item)

    def _accept(self, record: RawRecord) -> None:
        example = to_example(record, self._mapping, self.report.source)
        if isinstance(example, Problem):
            self.quarantine(example)
            return
        if (first := self._seen.get(example.id)) is not None:
            derived = "" if _has_id(record, self._mapping) else (
                " (records without an id get a hash of source, document and summary: this pair appears twice)")
            self.quarantine(Problem(record.file, record.line, "duplicate_id", f"{record.label}id {example.id!r} was "
                                    f"already read at {self._location(first)}{derived}", record.preview()))
            return
        line = json.dumps(example.model_dump(), ensure_ascii=False, sort_keys=True).encode("utf-8")
        self._seen[example.id] = (len(self.report.files) - 1) << 32 | (record.line or 0)
        self._rows.write(line + b"\n")
        self.report.rows += 1

    def _location(self, packed: int) -> str:
        file, line = self.report.files[packed >> 32], packed & 0xFFFFFFFF
        return f"{file}:{line}" if line else file

    def quarantine(self, problem: Problem) -> None:
        entry = json.dumps(problem.as_dict(), ensure_ascii=False) + "\n"
        self._quarantine.write(entry.encode("utf-8", "backslashreplace"))  # a lone surrogate stays a JSON escape
        self.report.quarantined += 1
        self.report.quarantine_reasons[problem.reason] = self.report.quarantine_reasons.get(problem.reason, 0) + 1
        self.first_problem = self.first_problem or problem


def ingest_source(
    source_dir: Path,
    rows_path: Path,
    quarantine_path: Path,
    max_bad_share: float = 0.1,
    *,
    max_record_bytes: int = MAX_RECORD_BYTES,
) -> IngestReport:
    """Stream every data file of one source into ``rows_path`` (canonical examples, JSONL) and
    ``quarantine_path`` (what could not be read, and why). Raise ``SourceError`` when the source is unusable:
    missing, unsafely named, misconfigured, without readable rows, or with more than ``max_bad_share`` of its
    records quarantined. The rows file is replaced only on success; the quarantine file is written either way
    once reading has begun."""
    if not 0.0 <= max_bad_share <= 1.0:
        raise ValueError(f"max_bad_share must be between 0 and 1, got {max_bad_share}")
    source = _check_source_dir(source_dir)
    config = load_source_config(source_dir)
    options = ReadOptions(raw_root=Path(os.path.realpath(source_dir.parent)), format=config.format,
                          summary_suffix=config.text.summary_suffix, max_record_bytes=max_record_bytes,
                          columns=frozenset(_columns(config.fields)))
    with AtomicFile(rows_path, "wb") as rows, AtomicFile(quarantine_path, "wb") as quarantine:
        ingestion = _Ingestion(source, config.fields, rows, quarantine)
        ingestion.run(source_dir, options)
        quarantine.commit()
        _check_outcome(ingestion, source_dir, quarantine_path, config.fields, max_bad_share)
        rows.commit()
    return ingestion.report


def _columns(mapping: FieldMapping) -> Iterator[str]:
    """The top-level columns a mapping reads (a Parquet file's other columns are not loaded)."""
    for path in (mapping.id, mapping.group, mapping.document, mapping.summary):
        yield path
        yield path.split(".")[0]


def _check_outcome(ingestion: _Ingestion, source_dir: Path, quarantine_path: Path, mapping: FieldMapping,
                   max_bad_share: float) -> None:
    report, first = ingestion.report, ingestion.first_problem
    first_at = f"first at {first.where}: {first.detail}" if first else ""
    if report.rows == 0:
        found = (f"{report.quarantined} record(s) quarantined to {quarantine_path}, {first_at}" if first
                 else f"it holds no {SUPPORTED} files")
        raise SourceError(
            f"Source {report.source!r} ({source_dir}) has no readable rows ({found}). Each record needs the fields "
            f"'document' and 'summary' (read from {mapping.document!r} and {mapping.summary!r}); map your field "
            f"names under 'fields:' in {source_dir / SOURCE_CONFIG}."
        )
    if report.bad_share > max_bad_share:
        reasons = ", ".join(f"{reason} {count}" for reason, count in report.as_dict()["quarantine_reasons"].items())
        raise SourceError(
            f"Source {report.source!r}: {report.quarantined} of {report.records_read} records "
            f"({_percent(report.bad_share)}) could not be read, above the {_percent(max_bad_share)} limit; "
            f"{first_at}. All are in {quarantine_path} ({reasons}); fix them, or raise max_bad_share."
        )


def _percent(share: float) -> str:
    return f"{share * 100:.1f}".removesuffix(".0") + "%"
