"""Find the files of one raw source safely and read each one, record by record, without loading it whole.

``discover`` walks ``data/raw/<source>/`` (recursively, in sorted order) and yields a ``DataFile`` for each file to
read, a ``Skipped`` note for files that are not data (hidden files, README/LICENSE-style documentation) and a
``Problem`` for files that must not or cannot be read: symlinks leading outside ``data/raw``, unknown file types,
pipes and devices. ``read_file`` yields a ``RawRecord`` per record and a ``Problem`` per record (or file) it cannot
read, and fills a ``detected`` dictionary with what it chose by itself (a CSV file's delimiter and encoding, a
workbook's sheet). Readers know nothing about field mappings; ``tuneforge.corpus.mapping`` turns raw records into
examples. ``read_file(..., unparsed=True)`` gives a JSONL file's lines as read (``RawLine``), for ``parse_line`` to
parse elsewhere (an engine task): the same records and problems, in the same order.

Formats, chosen by extension (or for every file by ``format:`` in ``source.yaml``):

- ``.jsonl`` / ``.ndjson``: one JSON object per line, read line by line in binary mode: the streaming format.
- ``.json``: a top-level array of objects, or one object. The file is loaded whole (at most
  ``MAX_JSON_FILE_BYTES``, decompressed); convert big ones to JSONL.
- ``.csv``: a header row naming the fields, then one record per row (quoted fields may span lines). The delimiter
  and encoding come from ``csv:`` in ``source.yaml``; without them the delimiter is sniffed (``csv.Sniffer``, among
  ``, ; tab |``) from the first ``SNIFF_BYTES``, and the encoding is chosen at the first line holding a non-ASCII
  byte: UTF-8 if that line is valid UTF-8, else cp1252 (latin-1 if even cp1252 cannot decode it). A UTF-8
  byte-order mark means UTF-8.
- ``.xlsx``: one sheet (the first, or ``xlsx: {sheet: ...}`` in ``source.yaml``) read in openpyxl's read-only
  mode; its first non-empty row names the fields, every later row is a record numbered as the spreadsheet numbers it.
- ``.parquet``: read in batches of ``PARQUET_BATCH_ROWS`` rows, only the columns the mapping needs.
- ``.txt``: one document per file, its summary in a sidecar ``<stem>.summary.txt`` beside it.

A source on object storage (``location:`` in ``source.yaml``, see ``tuneforge.corpus.objectstore``) is walked by
``discover_objects`` the same way, prefix by prefix in sorted order, and its objects are read by the same readers
(there are no symlinks, pipes or devices there).

``.jsonl``, ``.ndjson``, ``.json`` and ``.csv`` files may be compressed: ``part-0.jsonl.gz`` (gzip), ``.bz2``
(bzip2) or ``.zst`` (Zstandard). They are decompressed as they are read (``tuneforge.corpus.compressed``), with
the same per-line reports; a corrupt or truncated stream is a ``Problem`` for the file.

A file without records (0 bytes, only blank lines, a CSV or sheet with only a header...) gives one ``empty_file``
``Problem``; ingestion notes it without counting it as a bad record.
"""

from __future__ import annotations

import codecs
import csv
import itertools
import json
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

import pyarrow as pa
import pyarrow.parquet as pq

from tuneforge.corpus import spreadsheet
from tuneforge.corpus.compressed import COMPRESSIONS, CorruptStream, compression_of, open_decompressed
from tuneforge.corpus.objectstore import ObjectPath, ObjectStore

CONFIG_NAME = "source.yaml"
FORMATS = ("jsonl", "json", "csv", "xlsx", "parquet", "text")
EXTENSIONS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv", ".xlsx": "xlsx",
              ".parquet": "parquet", ".txt": "text"}
COMPRESSIBLE_FORMATS = ("jsonl", "json", "csv")
DATA_FILES = (".jsonl, .json, .csv, .xlsx, .parquet or .txt; .jsonl, .ndjson, .json and .csv may be compressed, "
              "named like part-0.jsonl.gz (" + ", ".join(COMPRESSIONS) + ")")
DEFAULT_SUMMARY_SUFFIX = ".summary.txt"
# Files that document a source rather than hold its data: skipped, and listed in the report as skipped.
DOCUMENTATION_STEMS = frozenset({"README", "LICENSE", "LICENCE", "COPYING", "NOTICE", "CHANGELOG", "CITATION",
                                 "AUTHORS", "SHA256SUMS", "SHA1SUMS", "MD5SUMS", "CHECKSUMS"})
DOCUMENTATION_SUFFIXES = frozenset({".md", ".rst"})

MAX_RECORD_BYTES = 32 * 1024 * 1024
MAX_JSON_FILE_BYTES = 256 * 1024 * 1024
PARQUET_BATCH_ROWS = 256
PARQUET_BUFFER_BYTES = 1 << 20
PREVIEW_CHARS = 2000
SNIFF_BYTES = 8192
CSV_DELIMITERS = ",;\t|"
# Tried in turn when a CSV file's first non-ASCII line is not UTF-8; latin-1 decodes any byte.
FALLBACK_ENCODINGS = ("cp1252", "latin-1")
# UTF-32 first: its little-endian mark starts with UTF-16's.
WIDE_BOMS = ((codecs.BOM_UTF32_LE, "UTF-32"), (codecs.BOM_UTF32_BE, "UTF-32"),
             (codecs.BOM_UTF16_LE, "UTF-16"), (codecs.BOM_UTF16_BE, "UTF-16"))
TEXT_CONTROL_BYTES = frozenset(b"\t\n\r\f\b\x1b")
# Any byte but ASCII whitespace (what ``bytes.strip`` removes).
_NOT_ASCII_SPACE = re.compile(rb"[^ \t\n\r\x0b\x0c]")
EMPTY_HINTS = {"jsonl": "empty or only blank lines", "json": "empty, or an empty array",
               "csv": "no rows, or only a header", "xlsx": "no rows, or only a header", "parquet": "0 rows",
               "text": "empty or only whitespace"}


@dataclass(frozen=True)
class ReadOptions:
    raw_root: Path  # the real path of data/raw: nothing outside it is read
    format: str | None = None  # read every file in this format instead of choosing by extension
    summary_suffix: str = DEFAULT_SUMMARY_SUFFIX
    csv_delimiter: str | None = None  # None: sniffed per file
    csv_encoding: str | None = None  # None: detected per file
    sheet: str | None = None  # the .xlsx sheet to read (None: the first)
    max_record_bytes: int = MAX_RECORD_BYTES
    max_json_bytes: int = MAX_JSON_FILE_BYTES
    columns: frozenset[str] | None = None  # Parquet columns to read (None: all)


@dataclass(frozen=True)
class DataFile:
    path: Path | ObjectPath  # a file on disk, or an object listed under a source's location
    name: str  # relative to the source directory, '/'-separated
    format: str
    compression: str | None = None  # gzip, bzip2 or zstd: read through a decompressing stream


@dataclass(frozen=True)
class Skipped:
    name: str
    why: str


@dataclass(frozen=True)
class Problem:
    """A record, or a whole file (``line`` None), that goes to the quarantine instead of the rows."""

    file: str
    line: int | None
    reason: str
    detail: str
    record: str = ""
    url: str | None = None  # the object's URL, for a source on object storage (``file`` is relative to it)

    @property
    def where(self) -> str:
        place = self.url or self.file
        return place if self.line is None else f"{place}:{self.line}"

    def as_dict(self) -> dict[str, Any]:
        entry = {"file": self.file, "line": self.line, "reason": self.reason, "detail": self.detail,
                 "record": self.record[:PREVIEW_CHARS]}
        return entry if self.url is None else {**entry, "url": self.url}


class RawRecord(NamedTuple):
    """One record as read. ``line`` counts ``unit``s: lines (JSONL, CSV), items (JSON), rows (Parquet), or is
    None for a whole-file record (plain text). A tuple: one is made per record, and a tuple is made fastest."""

    file: str
    line: int | None
    data: dict[str, Any]
    raw: str | None = None  # the record's text as read, for the quarantine (None: serialise ``data``)
    unit: str = "line"
    canonical: bool = False  # keys are already the canonical field names (plain text)

    @property
    def label(self) -> str:
        """Prefix for details where ``line`` is not a line number: ``item 3: ``."""
        return f"{self.unit} {self.line}: " if self.unit in ("item", "row") else ""

    def preview(self) -> str:
        if self.raw is not None:
            return self.raw[:PREVIEW_CHARS]
        return json.dumps(self.data, ensure_ascii=False, default=str)[:PREVIEW_CHARS]


class RawLine(NamedTuple):
    """A JSONL line as read and not yet parsed (``parse_line`` makes it a record): ``read_file(unparsed=True)`` gives
    these, so the parsing can run elsewhere (an engine task) while the numbering stays the file's. A tuple: made
    once per line, it is the cheapest to make and to ship."""

    file: str
    line: int
    offset: int  # of the line's first byte in the (decompressed) file
    data: bytes  # without a byte-order mark; only the first bytes of a line over the limit
    complete: bool  # False: the line is longer than max_record_bytes


@dataclass(frozen=True)
class _Detected:
    """Something a reader chose by itself for a file; ``read_file`` collects these instead of yielding them."""

    key: str
    value: str


Entry = DataFile | Skipped | Problem


# --- discovery ------------------------------------------------------------------------------------------------


def discover(source_dir: Path, options: ReadOptions) -> Iterator[Entry]:
    """Every entry under ``source_dir`` in sorted order; symlinks are followed only while they stay in raw_root."""
    yield from _walk(source_dir, "", options, {os.path.realpath(source_dir)})


def discover_objects(store: ObjectStore, options: ReadOptions) -> Iterator[Entry]:
    """Every entry under ``store``'s location in sorted order, as ``discover`` walks a directory; a ``source.yaml``
    lying there is not read (a source's settings are in its directory under data/raw). ``ObjectStoreError`` when
    a prefix cannot be listed."""
    yield from _walk_objects(store, "", options)


def _walk_objects(store: ObjectStore, prefix: str, options: ReadOptions) -> Iterator[Entry]:
    files, directories = store.list_dir(prefix)
    listed = {info.base: info for info in files}
    siblings = set(listed) | set(directories)
    # (name, is a prefix): the order of ``discover``, where a name's directory and file are distinct entries.
    for base, is_prefix in sorted([(base, False) for base in listed] + [(base, True) for base in directories]):
        name = prefix + base
        if base.startswith("."):
            yield Skipped(name, "hidden")
        elif is_prefix:
            yield from _walk_objects(store, name + "/", options)
        elif not prefix and base == CONFIG_NAME:
            yield Skipped(name, f"a {CONFIG_NAME} at the location is not read: the source's settings are in its "
                                f"{CONFIG_NAME} under data/raw")
        elif (item := _classify(ObjectPath(store, listed[base], name, listed), name, siblings, options)) is not None:
            yield item


def has_data_files(directory: Path, format_override: str | None = None) -> bool:
    """Whether ``directory`` holds at least one file with a data extension (a cheap check for listing sources)."""
    visited: set[str] = set()
    pending = [directory]
    while pending:
        current = pending.pop()
        real = os.path.realpath(current)
        if real in visited:
            continue
        visited.add(real)
        try:
            with os.scandir(current) as entries:
                for entry in entries:
                    if entry.name.startswith(".") or (current == directory and entry.name == CONFIG_NAME):
                        continue
                    if entry.is_dir():
                        pending.append(Path(entry.path))
                    elif entry.is_file() and not _is_documentation(entry.name) and (
                        format_override or data_format_of(entry.name)
                    ):
                        return True
        except OSError:
            continue
    return False


def _walk(directory: Path, prefix: str, options: ReadOptions, visited: set[str]) -> Iterator[Entry]:
    try:
        with os.scandir(directory) as scan:
            entries = sorted(scan, key=lambda entry: entry.name)
    except OSError as error:
        yield Problem(prefix.rstrip("/") or ".", None, "unreadable_file", f"cannot list directory: {error}")
        return
    siblings = {entry.name for entry in entries}
    for entry in entries:
        name = prefix + entry.name
        if entry.name.startswith("."):
            yield Skipped(name, "hidden")
            continue
        if not prefix and entry.name == CONFIG_NAME:
            continue
        path = Path(entry.path)
        if entry.is_symlink() and (problem := _check_link(path, name, options.raw_root)):
            yield problem
        elif entry.is_dir():
            real = os.path.realpath(path)
            if real in visited:
                yield Skipped(name + "/", f"the same directory as {real}, already read (through a symlink)")
                continue
            visited.add(real)
            yield from _walk(path, name + "/", options, visited)
        elif entry.is_file():
            if (item := _classify(path, name, siblings, options)) is not None:
                yield item
        else:
            yield Problem(name, None, "unsupported_file",
                          f"{name} is not a regular file (a pipe, socket or device); it was not read")


def _check_link(path: Path, name: str, raw_root: Path) -> Problem | None:
    target = Path(os.path.realpath(path))
    if not target.is_relative_to(raw_root):
        return Problem(name, None, "outside_source",
                       f"{name} is a symlink to {target}, outside {raw_root}; it was not read. Copy the data under "
                       f"{raw_root} (or link only to places inside it).")
    if not target.exists():
        return Problem(name, None, "unreadable_file", f"{name} is a broken symlink (to {target}); fix or remove it")
    return None


def _classify(
    path: Path | ObjectPath, name: str, siblings: set[str], options: ReadOptions
) -> DataFile | Skipped | Problem | None:
    """What to do with a regular file: read it, skip it, quarantine it, or nothing (a summary read by its document)."""
    if _is_documentation(path.name):
        return Skipped(name, "documentation")
    suffix = options.summary_suffix
    if options.format in (None, "text") and path.name.endswith(suffix) and len(path.name) > len(suffix):
        if any(summary_name(sibling, suffix) == path.name and _is_text_document(sibling, options)
               for sibling in siblings):
            return None  # read with its document
        base = path.name[: -len(suffix)]
        return Problem(name, None, "orphan_summary",
                       f"{name} is a summary file (suffix {suffix!r}) without its document {base}.txt beside it")
    file_format = options.format or data_format_of(path.name)
    compression = compression_of(path.name)
    if file_format is None:
        suffix = Path(path.stem).suffix + path.suffix if compression else path.suffix
        kind = f"'{suffix}'" if suffix else "without an extension"
        return Problem(name, None, "unsupported_file",
                       f"{name}: files {kind} are not read; data files are {DATA_FILES} (or set 'format:' in "
                       "source.yaml)")
    if compression and file_format not in COMPRESSIBLE_FORMATS:
        return Problem(name, None, "unsupported_file",
                       f"{name}: compressed {file_format} files are not read; decompress it (only .jsonl, .ndjson, "
                       ".json and .csv files may be compressed)")
    return DataFile(path, name, file_format, compression)


def data_format_of(file_name: str) -> str | None:
    """The format a file's extension names (``jsonl`` for ``a.jsonl`` and ``a.jsonl.gz``), or None."""
    path = Path(file_name)
    suffix = Path(path.stem).suffix if compression_of(file_name) else path.suffix
    return EXTENSIONS.get(suffix.lower())


def _is_text_document(file_name: str, options: ReadOptions) -> bool:
    """Whether ``file_name`` is read as a plain-text document (and so reads its summary sidecar)."""
    return (not file_name.startswith(".") and not _is_documentation(file_name)
            and not file_name.endswith(options.summary_suffix)
            and (options.format == "text" or (options.format is None and Path(file_name).suffix.lower() == ".txt")))


def _is_documentation(file_name: str) -> bool:
    return (file_name.split(".")[0].upper() in DOCUMENTATION_STEMS
            or Path(file_name).suffix.lower() in DOCUMENTATION_SUFFIXES)


def summary_name(document_name: str, suffix: str) -> str:
    """``a.txt`` -> ``a.summary.txt``: the sidecar holding a plain-text document's summary."""
    stem = document_name[: -len(Path(document_name).suffix)] if Path(document_name).suffix else document_name
    return stem + suffix


# --- reading --------------------------------------------------------------------------------------------------


def read_file(
    data_file: DataFile, options: ReadOptions, detected: dict[str, str] | None = None, *, unparsed: bool = False
) -> Iterator[RawRecord | Problem | RawLine]:
    """The file's records and problems; a file that cannot be read at all (or from some point on: a corrupt
    compressed stream) gives one ``Problem`` with line None. ``detected`` receives what the reader chose by itself,
    such as ``{"delimiter": ";", "encoding": "cp1252"}``. With ``unparsed``, a JSONL file gives its non-blank lines
    as ``RawLine``s instead of parsing them: ``parse_line`` turns each into the record or problem it would have
    been, so the items, their order and the file's problems are the same."""
    reader = _jsonl_lines if unparsed and data_file.format == "jsonl" else READERS[data_file.format]
    count = 0
    try:
        problem = _check_file(data_file)
        if problem is not None:
            yield problem
            return
        for item in reader(data_file, options):
            if isinstance(item, _Detected):
                if detected is not None:
                    detected[item.key] = item.value
                continue
            count += 1
            yield item
    except (OSError, CorruptStream, spreadsheet.WorkbookError) as error:
        after = f" after {count} records" if count else ""
        yield Problem(data_file.name, None, "unreadable_file", f"{data_file.name} could not be read{after}: {error}")
        return
    if count == 0:
        yield Problem(data_file.name, None, "empty_file",
                      f"{data_file.name} holds no records ({EMPTY_HINTS[data_file.format]})")


def _check_file(data_file: DataFile) -> Problem | None:
    name = data_file.name
    if data_file.path.stat().st_size == 0:
        return Problem(name, None, "empty_file", f"{name} is empty (0 bytes)")
    if data_file.format in ("parquet", "xlsx"):
        return None
    head = _read_head(data_file)
    for bom, encoding in WIDE_BOMS:
        if head.startswith(bom):
            return Problem(name, None, "unsupported_encoding",
                           f"{name} is {encoding} text (it starts with a {encoding} byte-order mark); convert it to "
                           f"UTF-8, e.g. `iconv -f {encoding} -t UTF-8`")
    if _looks_binary(head):
        return Problem(name, None, "binary_file",
                       f"{name} looks binary (NUL or control bytes in its first {SNIFF_BYTES} bytes), not "
                       f"{data_file.format} text; remove it, or save it as UTF-8 text")
    return None


def _read_head(data_file: DataFile) -> bytes:
    """The first ``SNIFF_BYTES`` of the file (decompressed)."""
    with open_decompressed(data_file.path, data_file.compression) as handle:
        return handle.read(SNIFF_BYTES)


def _looks_binary(head: bytes) -> bool:
    if b"\0" in head:
        return True
    control = sum(1 for byte in head if byte < 0x20 and byte not in TEXT_CONTROL_BYTES)
    return control > len(head) // 10


def _lines(handle: BinaryIO, limit: int) -> Iterator[tuple[int, int, bytes, bool]]:
    """``(line number, byte offset, bytes, complete)`` per line. A line over ``limit`` bytes gives only its first
    bytes (``complete`` False) and the rest is skipped in chunks, so it is never held whole. A UTF-8 byte-order
    mark opening the file is dropped."""
    offset = 0
    for line_no in itertools.count(1):
        data = handle.readline(limit + 1)
        if not data:
            return
        start = offset
        offset += len(data)
        if line_no == 1 and data.startswith(codecs.BOM_UTF8):
            data, start = data[len(codecs.BOM_UTF8):], start + len(codecs.BOM_UTF8)
        if len(data) > limit and not data.endswith(b"\n"):
            offset += _skip_line(handle)
            yield line_no, start, data[: PREVIEW_CHARS * 4], False
        else:
            yield line_no, start, data, True


def _skip_line(handle: BinaryIO) -> int:
    skipped = 0
    while chunk := handle.readline(1 << 20):
        skipped += len(chunk)
        if chunk.endswith(b"\n"):
            break
    return skipped


def _decode_error(error: UnicodeDecodeError, data: bytes | memoryview, offset: int, encoding: str = "utf-8",
                  fix: str = "save the file as UTF-8") -> str:
    byte = data[error.start]
    label = "UTF-8" if encoding == "utf-8" else encoding
    return (f"invalid {label} at byte offset {offset + error.start} of the file (byte 0x{byte:02x}, column "
            f"{error.start + 1} of the line: {error.reason}); {fix}")


def _too_long(line_no: int, limit: int) -> str:
    return (f"line {line_no} is longer than {limit} bytes (max_record_bytes); it was not read. Split the record or "
            "raise the limit")


def _loose_text(data: bytes) -> str:
    return data.decode("utf-8", "backslashreplace")


def _read_jsonl(data_file: DataFile, options: ReadOptions) -> Iterator[RawRecord | Problem]:
    for line in _jsonl_lines(data_file, options):
        yield parse_line(line, options)


def _jsonl_lines(data_file: DataFile, options: ReadOptions) -> Iterator[RawLine]:
    """The file's lines that hold something (each gives exactly one record or ``Problem`` when parsed)."""
    with open_decompressed(data_file.path, data_file.compression) as handle:
        for line_no, offset, data, complete in _lines(handle, options.max_record_bytes):
            if not complete or not _blank(data):
                yield RawLine(data_file.name, line_no, offset, data, complete)


def _blank(data: bytes) -> bool:
    """Whether a whole line is only whitespace, as ``str.strip`` sees it once decoded (a line that cannot be decoded
    is not blank: it is a ``Problem``)."""
    first = _NOT_ASCII_SPACE.search(data)
    if first is None:
        return True
    if 0x21 <= data[first.start()] <= 0x7E:  # a visible ASCII character: the common case, decided without decoding
        return False
    try:
        return not data.decode("utf-8").strip()
    except UnicodeDecodeError:
        return False


def parse_line(line: RawLine, options: ReadOptions) -> RawRecord | Problem:
    """One JSONL line's record, or the ``Problem`` that quarantines it."""
    name, line_no, data = line.file, line.line, line.data
    if not line.complete:
        return Problem(name, line_no, "record_too_large", _too_long(line_no, options.max_record_bytes),
                       _loose_text(data))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        return Problem(name, line_no, "invalid_utf8", _decode_error(error, data, line.offset), _loose_text(data))
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        return Problem(name, line_no, "invalid_json", f"invalid JSON: {error.msg} at column {error.colno}",
                       text.rstrip("\r\n"))
    if not isinstance(value, dict):
        return Problem(name, line_no, "not_an_object", f"expected a JSON object, got {type(value).__name__}",
                       text.rstrip("\r\n"))
    return RawRecord(name, line_no, value, raw=text.rstrip("\r\n")[:PREVIEW_CHARS])


def _read_json(data_file: DataFile, options: ReadOptions) -> Iterator[RawRecord | Problem]:
    name = data_file.name
    data = _read_bounded(data_file, options.max_json_bytes)
    if data is None:
        decompressed = " (decompressed)" if data_file.compression else ""
        yield Problem(name, None, "file_too_large",
                      f"{name} is over the {options.max_json_bytes}-byte limit{decompressed} for .json files, which "
                      f"are loaded whole; convert it to JSONL (one object per line), e.g. `jq -c '.[]' {name}`")
        return
    text = _decode_whole(data, name)
    if isinstance(text, Problem):
        yield text
        return
    if not text.strip():
        return
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        around = text[max(0, error.pos - PREVIEW_CHARS // 2): error.pos + PREVIEW_CHARS // 2]
        yield Problem(name, None, "invalid_json",
                      f"invalid JSON at line {error.lineno} column {error.colno}: {error.msg}", around)
        return
    if isinstance(value, dict):
        yield RawRecord(name, 1, value, unit="item")
    elif isinstance(value, list):
        yield from _json_items(name, value)
    else:
        yield Problem(name, None, "not_an_object",
                      f"expected a JSON array of objects or one object, got {type(value).__name__}", text)


def _read_bounded(data_file: DataFile, limit: int) -> bytes | None:
    """The file's (decompressed) bytes, or None when there are more than ``limit``."""
    if data_file.compression is None and data_file.path.stat().st_size > limit:
        return None
    with open_decompressed(data_file.path, data_file.compression) as handle:
        data = handle.read(limit + 1)
    return data if len(data) <= limit else None


def _json_items(name: str, items: list[Any]) -> Iterator[RawRecord | Problem]:
    for index, item in enumerate(items, start=1):
        if isinstance(item, dict):
            yield RawRecord(name, index, item, unit="item")
        else:
            yield Problem(name, index, "not_an_object", f"item {index}: expected a JSON object, got "
                          f"{type(item).__name__}", json.dumps(item, ensure_ascii=False, default=str))


class _CsvLines:
    """Feeds ``csv.reader`` decoded lines and notes, per record, the lines that could not be decoded or were too long.

    A line that cannot be decoded is handed to the parser with replacement characters (so the row structure stays
    intact) and the record it belongs to is quarantined; a line over the limit is replaced by an empty line. Without
    an ``encoding``, it is chosen at the first line holding a non-ASCII byte (the lines before read the same in
    every candidate): UTF-8 if that line is valid UTF-8, else the first of ``FALLBACK_ENCODINGS`` that decodes it.
    """

    def __init__(self, handle: BinaryIO, limit: int, encoding: str | None) -> None:
        self._lines = _lines(handle, limit)
        self._limit = limit
        self.encoding = encoding or "utf-8"
        self._undecided = encoding is None
        self.problems: list[tuple[int, str, str]] = []
        self._preview: list[str] = []
        self._preview_chars = 0

    def __iter__(self) -> _CsvLines:
        return self

    def __next__(self) -> str:
        line_no, offset, data, complete = next(self._lines)
        if not complete:
            self.problems.append((line_no, "record_too_large", _too_long(line_no, self._limit)))
            self._keep(_loose_text(data))
            return "\n"
        if self._undecided and not data.isascii():
            self.encoding, self._undecided = _first_decoding(data), False
        try:
            text = data.decode(self.encoding)
        except UnicodeDecodeError as error:
            self.problems.append((line_no, *_csv_decode_problem(error, data, offset, self.encoding)))
            self._keep(_loose_text(data))
            return data.decode(self.encoding, "replace")
        self._keep(text)
        return text

    def _keep(self, text: str) -> None:
        if self._preview_chars < PREVIEW_CHARS:
            self._preview.append(text[:PREVIEW_CHARS])
            self._preview_chars += len(text)

    def take(self) -> tuple[list[tuple[int, str, str]], str]:
        """The problems and text of the lines read since the last call."""
        problems, preview = self.problems, "".join(self._preview).rstrip("\r\n")
        self.problems, self._preview, self._preview_chars = [], [], 0
        return problems, preview


def _first_decoding(line: bytes) -> str:
    for encoding in ("utf-8", *FALLBACK_ENCODINGS):
        try:
            line.decode(encoding)
        except UnicodeDecodeError:
            continue
        return encoding
    return FALLBACK_ENCODINGS[-1]


def _csv_decode_problem(error: UnicodeDecodeError, data: bytes, offset: int, encoding: str) -> tuple[str, str]:
    if encoding == "utf-8":
        fix = "save the file as UTF-8, or name its encoding in source.yaml (csv: {encoding: cp1252})"
        return "invalid_utf8", _decode_error(error, data, offset, encoding, fix)
    fix = "name the file's encoding in source.yaml (csv: {encoding: ...}; latin-1 reads any byte)"
    return "invalid_encoding", _decode_error(error, data, offset, encoding, fix)


def _sniff_delimiter(head: bytes, encoding: str) -> str:
    """The most likely of ``CSV_DELIMITERS`` in the file's first bytes; a comma when nothing stands out."""
    text = head.removeprefix(codecs.BOM_UTF8).decode(encoding, "replace")
    if len(head) == SNIFF_BYTES and "\n" in text:
        text = text[: text.rindex("\n")]  # whole lines only
    try:
        return csv.Sniffer().sniff(text, delimiters=CSV_DELIMITERS).delimiter
    except csv.Error:
        return ","


@contextmanager
def _csv_field_limit(limit: int) -> Iterator[None]:
    previous = csv.field_size_limit()
    csv.field_size_limit(limit)
    try:
        yield
    finally:
        csv.field_size_limit(previous)


def _read_csv(data_file: DataFile, options: ReadOptions) -> Iterator[RawRecord | Problem | _Detected]:
    head = _read_head(data_file)
    # A UTF-8 byte-order mark declares the encoding: its lines that are not UTF-8 are damaged, not another encoding.
    encoding = options.csv_encoding or ("utf-8" if head.startswith(codecs.BOM_UTF8) else None)
    delimiter = options.csv_delimiter
    if delimiter is None:
        delimiter = _sniff_delimiter(head, encoding or "utf-8")
        yield _Detected("delimiter", delimiter)
    with (open_decompressed(data_file.path, data_file.compression) as handle,
          _csv_field_limit(options.max_record_bytes)):
        lines = _CsvLines(handle, options.max_record_bytes, encoding)
        yield from _csv_records(data_file.name, lines, delimiter)
    if options.csv_encoding is None:
        yield _Detected("encoding", lines.encoding)


def _csv_records(name: str, lines: _CsvLines, delimiter: str) -> Iterator[RawRecord | Problem]:
    reader = csv.reader(lines, delimiter=delimiter)
    header: list[str] | None = None
    end = 0
    while True:
        start = end + 1
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as error:
            row, reason = None, "record_too_large" if "field limit" in str(error) else "malformed_row"
            lines.problems.insert(0, (start, reason, f"not valid CSV: {error}"))
        end = reader.line_num
        problems, preview = lines.take()
        if problems:
            line_no, reason, detail = problems[0]
            if header is None:
                yield Problem(name, None, reason, f"header line {line_no}: {detail}; no row of {name} was read",
                              preview)
                return
            yield Problem(name, start, reason, detail, preview)
        elif row is None or not any(cell.strip() for cell in row):
            continue  # a blank line
        elif header is None:
            header = row
            if problem := _duplicate_header(name, header, preview):
                yield problem
                return
        elif len(row) != len(header):
            yield Problem(name, start, "malformed_row",
                          f"row has {len(row)} fields but the header has {len(header)}", preview)
        else:
            yield RawRecord(name, start, dict(zip(header, row, strict=True)), raw=preview)


def _duplicate_header(name: str, header: list[str], preview: str) -> Problem | None:
    if duplicates := sorted({column for column in header if column and header.count(column) > 1}):
        return Problem(name, None, "malformed_header",
                       f"the header names column(s) {duplicates} more than once; no row of {name} was read", preview)
    return None


@contextmanager
def _seekable(path: Path | ObjectPath) -> Iterator[Path | BinaryIO]:
    """What a library that seeks (pyarrow, openpyxl) is given: a file's path, or an object opened as a stream."""
    if isinstance(path, Path):
        yield path
        return
    with path.open("rb") as handle:
        yield handle


def _read_xlsx(data_file: DataFile, options: ReadOptions) -> Iterator[RawRecord | Problem | _Detected]:
    with _seekable(data_file.path) as workbook, spreadsheet.open_sheet(workbook, options.sheet) as sheet:
        if options.sheet is None:
            yield _Detected("sheet", sheet.title)
        yield from _sheet_records(data_file.name, spreadsheet.sheet_rows(sheet))


def _sheet_records(name: str, rows: Iterator[tuple[int, tuple[Any, ...]]]) -> Iterator[RawRecord | Problem]:
    """Like a CSV file's: the first non-empty row names the fields, later rows are records (blank ones skipped)."""
    header: list[str] | None = None
    for row_no, values in rows:
        width = _filled_width(values)
        if width == 0:
            continue
        if header is None:
            header = ["" if value is None else str(value) for value in values[:width]]
            if problem := _duplicate_header(name, header, _cells_preview(values[:width])):
                yield problem
                return
        elif width > len(header):
            yield Problem(name, row_no, "malformed_row",
                          f"row {row_no}: it has values in {width} columns but the header names {len(header)}",
                          _cells_preview(values[:width]))
        else:
            cells = values[: len(header)] + (None,) * (len(header) - len(values))
            yield RawRecord(name, row_no, dict(zip(header, cells, strict=True)), unit="row")


def _cells_preview(values: tuple[Any, ...]) -> str:
    return json.dumps(values, ensure_ascii=False, default=str)[:PREVIEW_CHARS]


def _filled_width(values: tuple[Any, ...]) -> int:
    """The number of cells up to the last that holds something other than blanks."""
    for index in range(len(values), 0, -1):
        value = values[index - 1]
        if value is not None and not (isinstance(value, str) and not value.strip()):
            return index
    return 0


def _read_parquet(data_file: DataFile, options: ReadOptions) -> Iterator[RawRecord | Problem]:
    with _seekable(data_file.path) as source:
        yield from _parquet_records(data_file.name, source, options)


def _parquet_records(name: str, source: Path | BinaryIO, options: ReadOptions) -> Iterator[RawRecord | Problem]:
    try:
        # Buffered page-by-page reads: memory stays flat even when a file is one huge row group.
        parquet = pq.ParquetFile(source, pre_buffer=False, buffer_size=PARQUET_BUFFER_BYTES)
    except (pa.ArrowException, OSError, ValueError) as error:
        yield Problem(name, None, "unreadable_file", f"{name} is not a readable Parquet file: {error}")
        return
    with parquet:
        names = parquet.schema_arrow.names
        columns = names if options.columns is None else [column for column in names if column in options.columns]
        row_no = 0
        try:
            for batch in parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS, columns=columns):
                for data in batch.to_pylist():
                    row_no += 1
                    yield RawRecord(name, row_no, data, unit="row")
        except (pa.ArrowException, OSError, ValueError) as error:
            yield Problem(name, row_no + 1, "unreadable_file",
                          f"row {row_no + 1}: rows from here on could not be read: {error}")


def _read_text(data_file: DataFile, options: ReadOptions) -> Iterator[RawRecord | Problem]:
    name = data_file.name
    document = _read_whole_text(data_file.path, name, options)
    if isinstance(document, Problem):
        yield document
        return
    if not document.strip():
        return
    sidecar = data_file.path.with_name(summary_name(data_file.path.name, options.summary_suffix))
    sidecar_name = name[: len(name) - len(data_file.path.name)] + sidecar.name
    preview = document[:PREVIEW_CHARS]
    if not sidecar.is_file():
        yield Problem(name, None, "missing_summary",
                      f"{name} has no summary file {sidecar_name} beside it; add one (the suffix is "
                      f"text.summary_suffix in source.yaml, now {options.summary_suffix!r})", preview)
        return
    if isinstance(sidecar, Path) and not Path(os.path.realpath(sidecar)).is_relative_to(options.raw_root):
        yield Problem(name, None, "outside_source",
                      f"its summary file {sidecar_name} is a symlink outside {options.raw_root}; it was not read",
                      preview)
        return
    summary = _read_whole_text(sidecar, sidecar_name, options)
    if isinstance(summary, Problem):
        yield Problem(name, None, summary.reason, f"summary file {sidecar_name}: {summary.detail}", preview)
        return
    document_id = name[: len(name) - len(data_file.path.suffix)] if data_file.path.suffix else name
    yield RawRecord(name, None, {"id": document_id, "document": document.strip(), "summary": summary.strip()},
                    raw=preview, unit="file", canonical=True)


def _read_whole_text(path: Path | ObjectPath, name: str, options: ReadOptions) -> str | Problem:
    size = path.stat().st_size
    if size > options.max_record_bytes:
        return Problem(name, None, "record_too_large",
                       f"{name} is {size} bytes, over max_record_bytes ({options.max_record_bytes}); it was not read")
    return _decode_whole(path.read_bytes(), name)


def _decode_whole(data: bytes, name: str) -> str | Problem:
    """A whole file's text; a UTF-8 byte-order mark is dropped (without copying the bytes)."""
    start = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    body = memoryview(data)[start:]
    try:
        return str(body, "utf-8")
    except UnicodeDecodeError as error:
        return Problem(name, None, "invalid_utf8", _decode_error(error, body, start),
                       _loose_text(bytes(body[:PREVIEW_CHARS])))


READERS: dict[str, Callable[[DataFile, ReadOptions], Iterator[RawRecord | Problem | _Detected]]] = {
    "jsonl": _read_jsonl,
    "json": _read_json,
    "csv": _read_csv,
    "xlsx": _read_xlsx,
    "parquet": _read_parquet,
    "text": _read_text,
}
