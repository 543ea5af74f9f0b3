"""What a raw source is and how it is configured: its directory and name, its ``source.yaml``, and where its files
are read from.

A source is a directory of data files (``data/raw/<source>/``), read recursively in sorted order; the format follows
the extension: ``.jsonl`` (one JSON object per line: the streaming format, use it for big sources), ``.json`` (an
array of objects, or one object; loaded whole), ``.csv`` (a header row, then one record per row), ``.xlsx`` (one
sheet: a header row, then one record per row), ``.parquet`` (read in batches) and ``.txt`` (one document per file,
its summary in ``<stem>.summary.txt`` beside it, its id the file's path without the extension). ``.jsonl``,
``.json`` and ``.csv`` files may be compressed (``part-0.jsonl.gz``, ``.bz2``, ``.zst``) and are decompressed as
they are read. Records carry the fields ``document`` and ``summary`` and optionally ``id`` and ``group``; other
names, nested fields and the format are set in a ``source.yaml`` beside the files (``tuneforge.corpus.mapping``
applies the field names). SciTLDR-A, for example, keeps each abstract as a list of sentences and several reference
summaries per paper::

    fields:            # canonical name: the name in your files (a dotted path reaches into objects: meta.title)
      document: source # a string, or a list of strings joined with spaces
      summary: target  # a string, or a list: the first is the training target, all are kept as references
      id: paper_id     # a string or an integer; without it the id is a hash of document and summary
      group: paper_id  # rows of one group stay in one split; defaults to the id
    format: jsonl      # optional: read every file in this format (jsonl, json, csv, parquet, text)
    text:
      summary_suffix: .summary.txt   # plain text only: where a document's summary is
    csv:               # optional; without these each file's delimiter and encoding are detected (and reported)
      delimiter: ";"   # one character
      encoding: latin-1  # any ASCII-compatible codec Python knows: utf-8, cp1252, latin-1...
    xlsx:
      sheet: Data      # optional: the sheet to read (default: the first)

The files may also live on object storage: ``location: s3://bucket/prefix/`` (with optional ``storage_options:``
such as ``endpoint_url`` for an S3-compatible server; credentials come from the environment, never from this file)
makes the directory hold only its ``source.yaml`` while the objects under the location are listed and read, streaming,
by the same readers, with the same quarantine entries (each also naming the object's URL) and reports (which also
name the location and each data object's ETag). See ``tuneforge.corpus.objectstore`` and docs/object-storage.md.
"""

from __future__ import annotations

import codecs
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tuneforge.corpus import readers
from tuneforge.corpus.objectstore import (
    CREDENTIAL_KEYS,
    CREDENTIALS_HINT,
    ObjectStore,
    StorageOptions,
    normalized_location,
)
from tuneforge.corpus.readers import DEFAULT_SUMMARY_SUFFIX, MAX_RECORD_BYTES, Entry, ReadOptions
from tuneforge.profiles import CleaningConfig

SOURCE_CONFIG = readers.CONFIG_NAME
CANONICAL_FIELDS = ("id", "group", "document", "summary")
SUPPORTED = ".jsonl, .json, .csv, .xlsx, .parquet or .txt"
SOURCE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
__all__ = ["SOURCE_CONFIG", "SUPPORTED", "FieldMapping", "SourceConfig", "SourceError", "check_source_dir",
           "check_source_name", "list_sources", "load_source_config", "object_store", "read_options",
           "require_sources", "source_cleaning", "source_entries", "source_instruction"]


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


class CsvSettings(BaseModel):
    """CSV files' delimiter and encoding; one left out is detected per file, and reported."""

    model_config = ConfigDict(extra="forbid")
    delimiter: str | None = Field(None, min_length=1, max_length=1)
    encoding: str | None = None

    @field_validator("delimiter", mode="before")
    @classmethod
    def _escaped_tab(cls, value: Any) -> Any:
        return "\t" if value == "\\t" else value  # delimiter: '\t' (single-quoted YAML keeps the backslash)

    @field_validator("delimiter")
    @classmethod
    def _separates_fields(cls, value: str | None) -> str | None:
        if value is not None and (value in "\"\r\n" or value.isalnum()):
            raise ValueError("must be one character other than a quote, a line break, a letter or a digit, "
                             "such as ';' or '\\t'")
        return value

    @field_validator("encoding")
    @classmethod
    def _ascii_compatible(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            name = codecs.lookup(value).name
        except LookupError:
            raise ValueError(f"unknown encoding {value!r}; use e.g. utf-8, cp1252 or latin-1") from None
        sample = b"\n,;\t|\"abcXYZ019"
        try:
            compatible = sample.decode(name) == sample.decode("ascii")
        except (UnicodeDecodeError, LookupError):  # LookupError: a bytes-to-bytes codec such as 'hex'
            compatible = False
        if not compatible:
            raise ValueError(f"{value!r} is not ASCII-compatible (as UTF-16 and UTF-32 are not); convert the file "
                             "to UTF-8, e.g. with iconv")
        return name


class XlsxSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sheet: str | None = Field(None, min_length=1)  # None: the first sheet


class SourceConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    fields: FieldMapping = FieldMapping()
    # Not xlsx: workbooks always carry their extension, and the override is for files whose extension misleads.
    format: Literal["jsonl", "json", "csv", "parquet", "text"] | None = None
    text: TextSettings = TextSettings()
    csv: CsvSettings = CsvSettings()
    xlsx: XlsxSettings = XlsxSettings()
    instruction: str | None = Field(
        None, min_length=1, description="What the model is asked to do with this source's documents; the project's "
        "instructions.<source> (tuneforge.yaml) wins over it, and it wins over default_instruction.",
    )
    cleaning: dict[str, Any] = Field(
        default_factory=dict, description="Cleaning settings for this source only, over the project's (any key of "
        "the cleaning section, e.g. min_summary_words or languages).",
    )
    location: str | None = Field(
        None, description="Where the source's files are, when not beside this file: an object-storage prefix such as "
        "s3://bucket/prefix/ (tuneforge.corpus.objectstore).",
    )
    storage_options: StorageOptions = Field(
        default_factory=StorageOptions, description="How to reach the location's server (endpoint_url, region, ...); "
        "credentials come from the environment.",
    )

    @field_validator("location")
    @classmethod
    def _object_storage_url(cls, value: str | None) -> str | None:
        return None if value is None else normalized_location(value)

    @model_validator(mode="after")
    def _options_need_a_location(self) -> SourceConfig:
        if "storage_options" in self.model_fields_set and self.location is None:
            raise ValueError("storage_options is set but location is not: name the files' location "
                             "(location: s3://bucket/prefix/)")
        return self

    @field_validator("cleaning")
    @classmethod
    def _cleaning_settings(cls, overrides: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(overrides) - set(CleaningConfig.model_fields))
        if unknown:
            raise ValueError(f"unknown cleaning setting(s) {', '.join(unknown)} (allowed: "
                             f"{', '.join(CleaningConfig.model_fields)})")
        try:
            CleaningConfig.model_validate(overrides)
        except ValidationError as error:
            raise ValueError("; ".join(f"{'.'.join(map(str, item['loc']))}: {item['msg']}"
                                       for item in error.errors())) from None
        return overrides

    def cleaning_over(self, project: CleaningConfig, path: Path) -> CleaningConfig:
        """The project's cleaning settings with this source's overrides; ``SourceError`` naming ``path``."""
        if not self.cleaning:
            return project
        try:
            return CleaningConfig.model_validate({**project.model_dump(), **self.cleaning})
        except ValidationError as error:
            raise SourceError(f"{path}: the cleaning settings conflict with the project's: "
                              f"{'; '.join(item['msg'] for item in error.errors())}") from None


ALLOWED_KEYS = {(): ("fields", "format", "text", "csv", "xlsx", "instruction", "cleaning", "location",
                     "storage_options"),
                ("fields",): CANONICAL_FIELDS, ("text",): ("summary_suffix",), ("csv",): ("delimiter", "encoding"),
                ("xlsx",): ("sheet",), ("storage_options",): tuple(StorageOptions.model_fields)}


def source_cleaning(raw_dir: Path, source: str, project: CleaningConfig) -> CleaningConfig:
    """The cleaning settings of ``source``: the project's, with its ``source.yaml``'s ``cleaning`` overrides."""
    source_dir = raw_dir / source
    if not source_dir.is_dir():
        return project
    return load_source_config(source_dir).cleaning_over(project, source_dir / SOURCE_CONFIG)


def source_instruction(raw_dir: Path, source: str) -> str | None:
    """The ``instruction`` of ``raw_dir/<source>/source.yaml``, if the source is there and sets one."""
    source_dir = raw_dir / source
    return load_source_config(source_dir).instruction if source_dir.is_dir() else None


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
        raise SourceError(f"{path} must be a mapping with the keys {', '.join(ALLOWED_KEYS[()])}, not a "
                          f"{type(config).__name__}")
    try:
        return SourceConfig.model_validate(config)
    except ValidationError as error:
        # Not chained: pydantic's own message repeats the values, and one could be a credential written by mistake.
        raise SourceError(f"{path}: {'; '.join(_config_problem(item) for item in error.errors())}") from None


def _config_problem(item: Any) -> str:
    location = tuple(str(part) for part in item["loc"])
    key = ".".join(location)
    message = item["msg"].removeprefix("Value error, ")
    if not key:
        return message  # a rule over several keys
    if item["type"] == "extra_forbidden":
        if location[:1] == ("storage_options",) and location[-1].lower() in CREDENTIAL_KEYS:
            return f"key {key!r}: credentials are never read from {SOURCE_CONFIG}; {CREDENTIALS_HINT}"
        allowed = ALLOWED_KEYS.get(location[:-1], ())
        return f"unknown key {key!r} (allowed: {', '.join(allowed)})"
    return f"key {key!r}: {message}"


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
    """Data files in the directory, or a location they are at (not contacted here: listing stays cheap)."""
    try:
        config = load_source_config(source_dir)
    except SourceError:
        config = None  # listed if it has data files; ingesting it then reports the config error
    if config is not None and config.location:
        return True
    format_override = config.format if config else None
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


def check_source_dir(source_dir: Path) -> str:
    """The source's name, if ``source_dir`` is an existing source directory inside its raw directory; ``SourceError``
    if not."""
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


# --- where a source's files are read from ---------------------------------------------------------------------


def object_store(source_dir: Path, config: SourceConfig, *, strict: bool = False) -> ObjectStore | None:
    """The object store a source's ``location`` names (None for a source on disk). Nothing is contacted yet; a
    source directory holding data files as well fails: a source is read from one place. ``strict``: an object that
    may not be read fails the reading (``ObjectStoreError``) instead of being reported as unreadable."""
    if config.location is None:
        return None
    if readers.has_data_files(source_dir, config.format):
        raise SourceError(f"{source_dir / SOURCE_CONFIG} names location {config.location}, but {source_dir} holds "
                          f"data files as well; a source is read from one place: move the files to the location, or "
                          "remove location.")
    return ObjectStore(config.location, config.storage_options, strict=strict)


def source_entries(source_dir: Path, config: SourceConfig, options: ReadOptions,
                   store: ObjectStore | None = None) -> Iterator[Entry]:
    """The entries of a source, from its directory or its location (``store``, or the one ``config`` names):
    ``ObjectStoreError`` when the location cannot be listed."""
    store = store or object_store(source_dir, config)
    return readers.discover_objects(store, options) if store else readers.discover(source_dir, options)


def read_options(source_dir: Path, config: SourceConfig, *, max_record_bytes: int = MAX_RECORD_BYTES) -> ReadOptions:
    """How the readers read ``source_dir``'s files, following its ``source.yaml``."""
    return ReadOptions(raw_root=Path(os.path.realpath(source_dir.parent)), format=config.format,
                       summary_suffix=config.text.summary_suffix, csv_delimiter=config.csv.delimiter,
                       csv_encoding=config.csv.encoding, sheet=config.xlsx.sheet, max_record_bytes=max_record_bytes,
                       columns=frozenset(_columns(config.fields)))


def _columns(mapping: FieldMapping) -> Iterator[str]:
    """The top-level columns a mapping reads (a Parquet file's other columns are not loaded)."""
    for path in (mapping.id, mapping.group, mapping.document, mapping.summary):
        yield path
        yield path.split(".")[0]
