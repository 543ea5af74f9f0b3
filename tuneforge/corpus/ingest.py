"""Read a raw source directory (``data/raw/<source>/``) into canonical examples, streaming.

What a source is and how its ``source.yaml`` configures it is in ``tuneforge.corpus.sources``; how a record's fields
become an example, in ``tuneforge.corpus.mapping``. This module reads every record of a source and writes each one
either as a row or as a quarantine entry.

Nothing is dropped silently. A record that cannot be read or mapped goes to the quarantine file, one JSON object
per line: ``{"file", "line", "reason", "detail", "record"}`` (``line`` is null for a whole file: empty, binary, a
symlink leading outside ``data/raw``, an unsupported type, a corrupt compressed stream...). Hidden files and
README/LICENSE-style documentation are skipped and listed in the report. A source whose share of bad records
exceeds ``max_bad_share`` fails with ``SourceError``; its quarantine file is still written so it can be inspected.

Two kinds of quarantine entry are notes, not bad records (``NOTED_REASONS``): they are listed under ``noted`` in
the report and do not count toward ``max_bad_share``. ``empty_file``: a file without records (0 bytes, only
whitespace, a CSV or sheet with only a header). ``duplicate_record``: a record repeating an earlier one exactly
(the same id, document, summary, reference summaries and group); it is dropped and the first one kept. The same id
with different content in the same file is an id clash, ``duplicate_id``, and a bad record; in a later file it is
another record (exports often number each file from 0): its id becomes ``<id>@<file>`` and the report counts it
under ``qualified_ids``. Every record read is written either as
a row or as a quarantine entry, so the files and the counts add up; that is why the notes go to the quarantine
file rather than to a third one.

What a reader detected by itself (a CSV file's delimiter and encoding, the sheet read from a workbook) is listed per
file under ``detected`` in the report.

The records are parsed and mapped on the data engine (``tuneforge.corpus.engines``: this process, local worker
processes, or Ray tasks) with the same readers and mapping, and the rows, the quarantine and the report are the same
bytes on any engine and any number of workers. This process lists the files and reads them, in input order, in
pieces of about ``PIECE_RECORDS`` records (a JSONL file's lines unparsed: parsing them is the tasks' work; a small
object on object storage is read by its task), and writes what the tasks give back in the same order. Whether a
record is the first with its id, an exact repeat or an id clash depends on every record read before it: those
decisions are made after reading, with the ids sharded (``tuneforge.corpus.firsts``), and the rows are then
rewritten without the repeats and clashes.

Memory stays flat whatever the source size: the pieces in flight are bounded, the ids are held shard by shard (in
files here, in Ray's object store on Ray), what the last pass needs of each piece is spooled to disk (kept in memory
only for a source under ``PARALLEL_MIN_BYTES``), and the output files are written to temporary names and renamed
into place.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import pickle
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

import numpy as np

from tuneforge.atomic import AtomicFile
from tuneforge.corpus import firsts, readers
from tuneforge.corpus.engines import Engine, EngineConfig, InProcess, open_engine, workers_for
from tuneforge.corpus.mapping import has_id, to_example
from tuneforge.corpus.objectstore import ObjectPath, ObjectStore, ObjectStoreError
from tuneforge.corpus.readers import MAX_RECORD_BYTES, DataFile, Entry, Problem, RawRecord, ReadOptions, Skipped
from tuneforge.corpus.records import Example
from tuneforge.corpus.shards import MemoryShards
from tuneforge.corpus.sources import (
    SOURCE_CONFIG,
    SUPPORTED,
    FieldMapping,
    SourceError,
    check_source_dir,
    load_source_config,
    object_store,
    read_options,
    source_entries,
)
from tuneforge.governance.tombstones import Tombstones

# Quarantine entries that are notes rather than bad records: they do not count toward max_bad_share.
NOTED_REASONS = frozenset({"empty_file", "duplicate_record"})
# Ingestion on the engine (``ingest_source``): a task maps about this many records, or this much input; a source
# under PARALLEL_MIN_BYTES is mapped in this process (its pieces kept in memory): starting worker processes costs
# more than they save on rows this light. An object up to TASK_READ_BYTES is read by its task itself.
PIECE_RECORDS = 1000
PIECE_BYTES = 8 << 20
PARALLEL_MIN_BYTES = 64 << 20
TASK_READ_BYTES = 4 << 20
COPY_BYTES = 1 << 20  # rows are copied from one file to the other in blocks of this size
RECORD_BYTES = 1024  # what a record read without its text (Parquet, a workbook) counts for in a piece
__all__ = ["NOTED_REASONS", "IngestReport", "ingest_source"]


@dataclass
class IngestReport:
    """What ingesting one source read, kept and quarantined. Every record read is either a row or quarantined;
    the quarantine entries with a reason in ``NOTED_REASONS`` (empty files, exact repeats) are not bad records."""

    source: str
    files: list[str] = field(default_factory=list)
    rows: int = 0
    quarantined: int = 0
    quarantine_reasons: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # file -> why it is not data (hidden, documentation)
    detected: dict[str, dict[str, str]] = field(default_factory=dict)  # file -> what its reader detected
    # file -> rows whose id an earlier file already used for another record (exports often number each file from 0):
    # read as their own records, with the id qualified by the file (``<id>@<file>``)
    qualified_ids: dict[str, int] = field(default_factory=dict)
    erased: int = 0  # records skipped because an erasure request tombstoned them (neither rows nor quarantined)
    erasures: list[str] = field(default_factory=list)  # the erasure requests in force while this source was read
    location: str | None = None  # the object-storage prefix the files were read from (None: the directory)
    etags: dict[str, str] = field(default_factory=dict)  # data object -> its ETag: the content that was read
    # the shards the ids were partitioned into: an engine fact, left out of ``as_dict`` (the report is the same on any)
    dedup_shards: int = 0

    @property
    def records_read(self) -> int:
        return self.rows + self.quarantined

    @property
    def noted(self) -> dict[str, int]:
        return {reason: count for reason, count in sorted(self.quarantine_reasons.items()) if reason in NOTED_REASONS}

    @property
    def bad(self) -> int:
        return self.quarantined - sum(self.noted.values())

    @property
    def bad_share(self) -> float:
        """Bad records among those that count: rows and bad records (notes are neither)."""
        counted = self.rows + self.bad
        return self.bad / counted if counted else 0.0

    def as_dict(self) -> dict[str, Any]:
        """The figures; ``noted`` and ``detected`` appear only when there is something in them."""
        reasons = dict(sorted(self.quarantine_reasons.items(), key=lambda item: (-item[1], item[0])))
        figures = {"source": self.source, "files": list(self.files), "records_read": self.records_read,
                   "rows": self.rows, "quarantined": self.quarantined, "bad_share": round(self.bad_share, 4),
                   "quarantine_reasons": reasons, "skipped": dict(self.skipped)}
        if self.noted:
            figures["noted"] = self.noted
        if self.detected:
            figures["detected"] = {file: dict(facts) for file, facts in self.detected.items()}
        if self.qualified_ids:
            figures["qualified_ids"] = dict(self.qualified_ids)
        if self.erasures:
            figures["erased"] = self.erased
            figures["erasures"] = list(self.erasures)
        if self.location:
            figures["location"] = self.location
            figures["etags"] = dict(self.etags)
        return figures


# --- rows: their JSON lines, digests and qualified ids --------------------------------------------------------


_ROW_ENCODER = json.JSONEncoder(ensure_ascii=False, sort_keys=True)


def _row_line(example: Example) -> bytes:
    return _ROW_ENCODER.encode(example.model_dump()).encode("utf-8") + b"\n"


# Every field of a row but its id and group (tests check that this covers Example's fields).
CONTENT_FIELDS = ("source", "document", "summary", "references", "language")


def _row_digests(example: Example, qualified: tuple[str, str] | None) -> tuple[int, int]:
    """64-bit digests of the row under its id and, when it can be qualified, under its ``qualified`` id and group
    (``_qualified_names``; 0 when it cannot). Two rows held under one id are the same JSON line exactly when their
    digests are equal: a digest covers every field but the id, and the group by its mark (``_group_mark``).
    Qualifying a row mostly keeps its mark, and then its digest: the content is hashed once."""
    texts = (example.source, example.document, example.summary, *example.references)
    content = hashlib.sha256(f"{[len(text) for text in texts]} {example.language!r}".encode())
    for text in texts:
        content.update(text.encode("utf-8"))
    mark = _group_mark(example.id, example.group)
    qualified_mark = mark if qualified is None else _group_mark(*qualified)
    plain = content if qualified_mark == mark else content.copy()
    plain.update(mark)
    digest = int.from_bytes(plain.digest()[:8], "big")
    if qualified_mark == mark:
        return digest, 0 if qualified is None else digest
    content.update(qualified_mark)
    return digest, int.from_bytes(content.digest()[:8], "big")


def _group_mark(example_id: str, group: str) -> bytes:
    """A row's group as its digest covers it: the same as the id's key (a mark that qualifying keeps), or itself."""
    return b"=" if group == example_id.split("/", 1)[1] else b":" + group.encode("utf-8")


def _qualified_names(example_id: str, group: str, file: str) -> tuple[str, str]:
    """The id of a record qualified by the file it was read from, and its group (qualified too when it was the id)."""
    key = example_id.split("/", 1)[1]
    return _qualified_id(example_id, file), _qualified_id(key, file) if group == key else group


def _qualified_id(example_id: str, file: str) -> str:
    return f"{example_id}@{file}"


def _qualified_line(line: bytes, file: str) -> bytes:
    """A row's JSON line with its id (and group) qualified by ``file``: the same bytes as the qualified row's."""
    row = json.loads(line)
    row["id"], row["group"] = _qualified_names(row["id"], row["group"], file)
    return json.dumps(row, ensure_ascii=False, sort_keys=True).encode("utf-8") + b"\n"


# --- the work of a task: records to rows ------------------------------------------------------------------------


@dataclass(frozen=True)
class _FileStart:
    """A file this process reads begins (its records follow)."""

    name: str
    etag: str | None


@dataclass(frozen=True)
class _FileEnd:
    """A file this process read ends; what its reader detected by itself."""

    name: str
    detected: dict[str, str]


class _Detail(NamedTuple):
    """What a candidate row's quarantine entry needs, should it repeat or clash with an earlier record."""

    id: str
    file: str
    line: int | None
    label: str
    preview: str
    has_id: bool


@dataclass(frozen=True)
class _Task:
    """What every task needs besides its piece (shipped once per task; to Ray, once per run)."""

    source: str
    mapping: FieldMapping
    options: ReadOptions
    tombstones: Tombstones
    packed: bool  # pickle the details: they go to another process or to a file, and are rarely read


@dataclass
class _Mapped:
    """A piece's records mapped: the candidate rows (whether each is the first with its id is decided later, over
    every piece), the problems between them, and what the report needs."""

    files: list[tuple[str, str | None]] = field(default_factory=list)  # files begun in the piece: name, ETag
    skipped: list[tuple[str, str]] = field(default_factory=list)
    detected: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    erased: int = 0
    # One key row per candidate (tuneforge.corpus.firsts); its file column counts the files begun in this piece
    # before it (0: its file began in an earlier piece).
    keys: np.ndarray | None = None
    rows: bytes = b""  # the candidates' JSON lines
    ends: list[int] = field(default_factory=list)  # where each candidate's line ends in ``rows``
    problems: list[tuple[int, Problem]] = field(default_factory=list)  # each after this many candidates
    details: list[_Detail] | bytes = field(default_factory=list)  # one per candidate; bytes: pickled


def map_piece(piece: list[Any], task: _Task) -> _Mapped:
    """Parse and map a piece of a source (an engine task): lines and records read by the driver, or whole objects
    read here, in input order."""
    return _Mapper(task).run(piece)


class _Mapper:
    """Maps one piece's events into a ``_Mapped``."""

    def __init__(self, task: _Task) -> None:
        self.task, self.mapped = task, _Mapped()
        self.erasing = bool(task.tombstones)
        self.keys = bytearray()
        self.lines: list[bytes] = []
        self.details: list[_Detail] = []
        self.size = 0

    def run(self, piece: list[Any]) -> _Mapped:
        mapped, options = self.mapped, self.task.options
        for event in piece:
            if isinstance(event, readers.RawLine):
                self.item(readers.parse_line(event, options))
            elif isinstance(event, RawRecord | Problem):
                self.item(event)
            elif isinstance(event, DataFile):
                mapped.files.append((event.name, _etag(event)))
                detected: dict[str, str] = {}
                for item in readers.read_file(event, options, detected):
                    self.item(item)
                mapped.detected.append((event.name, detected))
            elif isinstance(event, _FileStart):
                mapped.files.append((event.name, event.etag))
            elif isinstance(event, _FileEnd):
                mapped.detected.append((event.name, event.detected))
            elif isinstance(event, Skipped):
                mapped.skipped.append((event.name, event.why))
        mapped.keys = firsts.rows_of(bytes(self.keys))
        mapped.rows = b"".join(self.lines)
        mapped.details = (pickle.dumps(self.details, protocol=pickle.HIGHEST_PROTOCOL) if self.task.packed
                          else self.details)
        return mapped

    def item(self, item: RawRecord | Problem) -> None:
        mapped, task = self.mapped, self.task
        example = item if isinstance(item, Problem) else to_example(item, task.mapping, task.source)
        if isinstance(example, Problem):
            mapped.problems.append((len(mapped.ends), example))
            return
        if self.erasing and task.tombstones.erases(example):
            mapped.erased += 1
            return
        record: RawRecord = item  # type: ignore[assignment]  # a Problem returned above
        own_id = has_id(record, task.mapping)  # a derived id is never qualified
        names = _qualified_names(example.id, example.group, record.file) if own_id else None
        digest, qualified_digest = _row_digests(example, names)
        qualified = None if names is None else (names[0], qualified_digest)
        self.keys += firsts.key_row(example.id, digest, qualified, len(mapped.files), record.line or 0)
        line = _row_line(example)
        self.lines.append(line)
        self.size += len(line)
        mapped.ends.append(self.size)
        self.details.append(_Detail(example.id, record.file, record.line, record.label, record.preview(), own_id))


def _etag(data_file: DataFile) -> str | None:
    path = data_file.path
    return path.info.etag if isinstance(path, ObjectPath) and path.info is not None else None


# --- the pieces: what the driver reads, what tasks read ---------------------------------------------------------


def _pieces(entries: list[Entry], options: ReadOptions) -> Iterator[list[Any]]:
    """A source's entries and records in input order, cut into pieces of about ``PIECE_RECORDS`` records or
    ``PIECE_BYTES`` bytes. This process lists and reads the files, giving a JSONL file's lines unparsed; a small
    object on object storage is left whole, for its task to read."""
    piece: list[Any] = []
    size = 0
    for event, weight in _events(entries, options):
        piece.append(event)
        size += weight
        if len(piece) >= PIECE_RECORDS or size >= PIECE_BYTES:
            yield piece
            piece, size = [], 0
    if piece:
        yield piece


def _events(entries: list[Entry], options: ReadOptions) -> Iterator[tuple[Any, int]]:
    for entry in entries:
        if not isinstance(entry, DataFile):
            yield entry, 0
        elif _read_by_task(entry):
            yield _for_task(entry, options), _file_size(entry)
        else:
            yield _FileStart(entry.name, _etag(entry)), 0
            detected: dict[str, str] = {}
            for item in readers.read_file(entry, options, detected, unparsed=True):
                yield item, _weight(item)
            yield _FileEnd(entry.name, detected), 0


def _read_by_task(data_file: DataFile) -> bool:
    """Whether a task reads the file itself: an uncompressed object on object storage (reachable from every
    worker), small enough for its records to come back at once."""
    return (isinstance(data_file.path, ObjectPath) and data_file.compression is None
            and _file_size(data_file) <= TASK_READ_BYTES)


def _for_task(data_file: DataFile, options: ReadOptions) -> DataFile:
    """The object as shipped to its task: knowing, of the objects beside it, only a text document's summary."""
    assert isinstance(data_file.path, ObjectPath)
    sidecar = readers.summary_name(data_file.path.name, options.summary_suffix)
    return replace(data_file, path=data_file.path.with_siblings([sidecar]))


def _weight(item: readers.RawLine | RawRecord | Problem) -> int:
    if isinstance(item, readers.RawLine):
        return len(item.data)
    if isinstance(item, RawRecord):
        return len(item.raw) if item.raw is not None else RECORD_BYTES
    return 0


def _file_size(data_file: DataFile) -> int:
    try:
        return data_file.path.stat().st_size
    except OSError:
        return 0  # reading it reports why


# --- the driver: three passes -----------------------------------------------------------------------------------


class _Spool:
    """What pass 3 needs of each piece (where its rows end, its problems, its details): kept as it is for a small
    source mapped in this process, else pickled to a file (the details are bytes by then: copied, not encoded)."""

    def __init__(self, path: Path | None) -> None:
        self._path, self._kept = path, []
        self._file = path.open("wb") if path is not None else None

    def add(self, mapped: _Mapped) -> None:
        piece = (mapped.ends, mapped.problems, mapped.details)
        if self._file is None:
            self._kept.append(piece)
        else:
            pickle.dump(piece, self._file, protocol=pickle.HIGHEST_PROTOCOL)

    def __iter__(self) -> Iterator[tuple[list[int], list[tuple[int, Problem]], list[_Detail] | bytes]]:
        if self._file is None or self._path is None:
            yield from self._kept
            return
        self._file.close()
        with self._path.open("rb") as handle:
            while True:
                try:
                    yield pickle.load(handle)
                except EOFError:
                    return


class _Ingestion:
    """Routes each record of one source to the rows or the quarantine, and counts.

    Pass 1 maps the source's pieces on the engine and writes their candidate rows in input order, while the rows'
    id keys are scattered into shards and the rest is spooled; pass 2 decides, shard by shard, which candidates
    repeat or clash with an earlier record or are qualified by their file (``tuneforge.corpus.firsts``); pass 3
    writes the quarantine in input order and, when pass 2 decided anything, copies the rows into a second file
    without the repeats and clashes and with the qualified ids."""

    def __init__(self, source: str, tombstones: Tombstones, store: ObjectStore | None) -> None:
        self.report = IngestReport(source=source, erasures=list(tombstones.requests),
                                   location=store.location if store else None)
        self._store = store
        self.first_problem: Problem | None = None
        self.first_bad: Problem | None = None

    def run(self, runner: Engine, pieces: Iterable[list[Any]], task: _Task, found: firsts.FirstOccurrences,
            spool: _Spool, rows: AtomicFile, quarantine: AtomicFile, rewrite: Callable[[], AtomicFile]) -> AtomicFile:
        """Ingest; the file holding the rows is returned: ``rows``, or a second one from ``rewrite`` when the rows
        had to be rewritten."""
        for mapped in runner.map_ordered(map_piece, pieces, task):
            self._gather(mapped, found)
            rows.write(mapped.rows)
            spool.add(mapped)
        decisions = found.decide()
        if not len(decisions):
            for _, problems, _ in spool:
                for _, problem in problems:
                    self.quarantine(quarantine, problem)
            self.report.rows = found.records
            return rows
        rewritten = rewrite()
        with rows.read_back() as written:
            copy = _Rewrite(self, written, rewritten, quarantine)
            position = 0
            for ends, problems, details in spool:
                copy.piece(ends, problems, details, decisions.between(position, position + len(ends)), position)
                position += len(ends)
        return rewritten

    def _gather(self, mapped: _Mapped, found: firsts.FirstOccurrences) -> None:
        """Pass 1 for one piece: its files, notes and counts into the report, its key rows into the shards."""
        report = self.report
        assert mapped.keys is not None
        keys = mapped.keys.copy()  # (from Ray, read-only) file column: the files begun in this piece before the row
        keys[:, firsts.FILE] = (keys[:, firsts.FILE].astype(np.int64) + len(report.files) - 1).astype(np.uint64)
        for name, etag in mapped.files:
            report.files.append(name)
            if etag is not None:
                report.etags[name] = etag
        report.skipped.update(mapped.skipped)
        report.detected.update((name, detected) for name, detected in mapped.detected if detected)
        report.erased += mapped.erased
        found.add(keys)

    def repeat(self, detail: _Detail, code: int, file: int, line: int) -> Problem:
        """The entry for a record whose id was read before: an exact repeat (a note), or an id clash."""
        example_id = _qualified_id(detail.id, detail.file) if code & firsts.QUALIFIED else detail.id
        where = f"{self.report.files[file]}:{line}" if line else self.report.files[file]
        if code & firsts.REPEAT:
            return Problem(detail.file, detail.line, "duplicate_record",
                           f"{detail.label}an exact repeat of the record at {where} (the same id {example_id!r}, "
                           "document, summary and group); dropped, the first one is kept", detail.preview)
        derived = "" if detail.has_id else (
            " (records without an id get a hash of source, document and summary: this pair appears twice)")
        return Problem(detail.file, detail.line, "duplicate_id",
                       f"{detail.label}id {example_id!r} was already read at {where}{derived}", detail.preview)

    def quarantine(self, quarantine: AtomicFile, problem: Problem) -> None:
        if self._store is not None:
            problem = replace(problem, url=self._store.url(problem.file))
        entry = json.dumps(problem.as_dict(), ensure_ascii=False) + "\n"
        quarantine.write(entry.encode("utf-8", "backslashreplace"))  # a lone surrogate stays a JSON escape
        self.report.quarantined += 1
        self.report.quarantine_reasons[problem.reason] = self.report.quarantine_reasons.get(problem.reason, 0) + 1
        self.first_problem = self.first_problem or problem
        if problem.reason not in NOTED_REASONS:
            self.first_bad = self.first_bad or problem


class _Rewrite:
    """Pass 3 when pass 2 decided something: the rows written in pass 1 (``written``, read in order) copied to
    ``out`` but for the repeats and clashes, which go to the quarantine with the problems, in input order."""

    def __init__(self, ingestion: _Ingestion, written: BinaryIO, out: AtomicFile, quarantine: AtomicFile) -> None:
        self.ingestion, self.written, self.out, self.quarantine = ingestion, written, out, quarantine

    def piece(self, ends: list[int], problems: list[tuple[int, Problem]], details: list[_Detail] | bytes,
              decided: dict[int, tuple[int, int, int]], start: int) -> None:
        report = self.ingestion.report
        pending = iter(problems)
        problem = next(pending, None)
        unpacked = (pickle.loads(details) if isinstance(details, bytes) else details) if decided else []
        done = 0  # rows copied or decided
        for position, decision in decided.items():  # in input order
            index = position - start
            self._copy(_begin(ends, index) - _begin(ends, done))
            report.rows += index - done
            while problem is not None and problem[0] <= index:  # the problems read before this record
                self.ingestion.quarantine(self.quarantine, problem[1])
                problem = next(pending, None)
            self._decided(self.written.read(ends[index] - _begin(ends, index)), unpacked[index], decision)
            done = index + 1
        self._copy(_begin(ends, len(ends)) - _begin(ends, done))
        report.rows += len(ends) - done
        while problem is not None:
            self.ingestion.quarantine(self.quarantine, problem[1])
            problem = next(pending, None)

    def _decided(self, line: bytes, detail: _Detail, decision: tuple[int, int, int]) -> None:
        report = self.ingestion.report
        if decision[0] != firsts.QUALIFIED:
            self.ingestion.quarantine(self.quarantine, self.ingestion.repeat(detail, *decision))
            return
        self.out.write(_qualified_line(line, detail.file))
        report.rows += 1
        report.qualified_ids[detail.file] = report.qualified_ids.get(detail.file, 0) + 1

    def _copy(self, size: int) -> None:
        while size > 0:
            block = self.written.read(min(size, COPY_BYTES))
            self.out.write(block)
            size -= len(block)


@contextlib.contextmanager
def _scratch(parent: Path | None) -> Iterator[Path | None]:
    """A temporary directory under ``parent`` for the spool and the id shards (None: none is needed)."""
    if parent is None:
        yield None
        return
    with tempfile.TemporaryDirectory(dir=parent, prefix=".ingest-") as tmp:
        yield Path(tmp)


def _begin(ends: list[int], index: int) -> int:
    """Where the ``index``-th row of a piece begins in its rows (``len(ends)``: where they end)."""
    return ends[index - 1] if index else 0


def ingest_source(
    source_dir: Path,
    rows_path: Path,
    quarantine_path: Path,
    max_bad_share: float = 0.1,
    *,
    max_record_bytes: int = MAX_RECORD_BYTES,
    tombstones: Tombstones | None = None,
    engine: EngineConfig | None = None,
    workers: int | None = None,
    large_source_workers: int = 0,
) -> IngestReport:
    """Stream every data file of one source into ``rows_path`` (canonical examples, JSONL) and
    ``quarantine_path`` (what could not be read, and why). Raise ``SourceError`` when the source is unusable:
    missing, unsafely named, misconfigured, without readable rows, or with more than ``max_bad_share`` of its
    records quarantined. The rows file is replaced only on success; the quarantine file is written either way
    once reading has begun. Records ``tombstones`` names (erased on request) are skipped and only counted.

    The records are parsed and mapped on ``engine`` (the local one by default), the same bytes out on any: in this
    process for a source under ``PARALLEL_MIN_BYTES``, else in ``large_source_workers`` local processes (0: one per
    CPU; ``workers`` overrides both, 1 runs in this process), or as Ray tasks."""
    if not 0.0 <= max_bad_share <= 1.0:
        raise ValueError(f"max_bad_share must be between 0 and 1, got {max_bad_share}")
    source = check_source_dir(source_dir)
    config = load_source_config(source_dir)
    options = read_options(source_dir, config, max_record_bytes=max_record_bytes)
    store = object_store(source_dir, config)
    tombstones = tombstones or Tombstones([])
    engine = engine or EngineConfig()
    with contextlib.ExitStack() as files:
        rows = files.enter_context(AtomicFile(rows_path, "wb"))
        quarantine = files.enter_context(AtomicFile(quarantine_path, "wb"))
        ingestion = _Ingestion(source, tombstones, store)
        try:
            entries = list(source_entries(source_dir, config, options, store))
            size = sum(_file_size(entry) for entry in entries if isinstance(entry, DataFile))
            with open_engine(engine, workers_for(size, large_source_workers, workers, PARALLEL_MIN_BYTES)) as runner:
                # A small source mapped here is held here: its spool in memory, its ids in one shard.
                in_memory = isinstance(runner, InProcess) and size < PARALLEL_MIN_BYTES
                with _scratch(None if in_memory else rows_path.parent) as tmp:
                    task = _Task(source, config.fields, options, tombstones, packed=tmp is not None)
                    spool = _Spool(tmp and tmp / "spool.pickle")
                    shards = MemoryShards() if tmp is None else runner.key_shards(tmp / "ids", engine.shards_for(size))
                    ingestion.report.dedup_shards = shards.count
                    found = firsts.FirstOccurrences(shards)
                    written = ingestion.run(runner, _pieces(entries, options), task, found, spool, rows, quarantine,
                                            lambda: files.enter_context(AtomicFile(rows_path, "wb")))
        except ObjectStoreError as error:
            error = getattr(error, "cause", error)  # a Ray task's error carries the remote traceback around it
            raise SourceError(f"Source {source!r} ({config.location}): {error}. Nothing was written: the earlier "
                              f"{rows_path.name} and {quarantine_path.name}, if any, are kept.") from None
        quarantine.commit()
        _check_outcome(ingestion, source_dir, quarantine_path, config.fields, max_bad_share)
        written.commit()
    return ingestion.report


def _check_outcome(ingestion: _Ingestion, source_dir: Path, quarantine_path: Path, mapping: FieldMapping,
                   max_bad_share: float) -> None:
    report, first = ingestion.report, ingestion.first_problem
    if report.rows == 0:
        found = (f"{report.quarantined} record(s) quarantined to {quarantine_path}, first at {first.where}: "
                 f"{first.detail}" if first else f"it holds no {SUPPORTED} files")
        raise SourceError(
            f"Source {report.source!r} ({report.location or source_dir}) has no readable rows ({found}). Each record "
            f"needs the fields 'document' and 'summary' (read from {mapping.document!r} and {mapping.summary!r}); map "
            f"your field names under 'fields:' in {source_dir / SOURCE_CONFIG}."
        )
    if report.bad_share > max_bad_share and (bad := ingestion.first_bad):
        reasons = ", ".join(f"{reason} {count}" for reason, count in report.as_dict()["quarantine_reasons"].items()
                            if reason not in NOTED_REASONS)
        raise SourceError(
            f"Source {report.source!r}: {report.bad} of {report.rows + report.bad} records "
            f"({_percent(report.bad_share)}) could not be read, above the {_percent(max_bad_share)} limit; "
            f"first at {bad.where}: {bad.detail}. All are in {quarantine_path} ({reasons}); fix them, or raise "
            "max_bad_share."
        )


def _percent(share: float) -> str:
    return f"{share * 100:.1f}".removesuffix(".0") + "%"
