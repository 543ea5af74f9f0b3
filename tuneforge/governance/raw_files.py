"""The records of the raw sources an erasure request matches, and removing them from their files in place.

Records are read by the same readers and field mappings as ingestion, so a record is found in every format a
source may hold. A source on object storage (``location:`` in its ``source.yaml``) is searched the same way, its
objects listed and streamed through the same store as ingestion (its ``storage_options``, credentials from the
environment); its matches carry the object's URL and ETag. Those objects are never rewritten: tuneforge does not
own a source's bucket, so such a record is only tombstoned (ingestion then drops it) and reported as held at the
source. A file is rewritten in its own format and compression, without the matched records (the lines of
a JSONL or CSV file that are kept stay byte for byte as they were); a file left without records, or one that could
not be parsed and holds a matched value, is deleted.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import zstandard

from tuneforge.atomic import AtomicFile
from tuneforge.corpus import readers
from tuneforge.corpus.compressed import open_decompressed
from tuneforge.corpus.mapping import to_example
from tuneforge.corpus.objectstore import ObjectPath, ObjectStoreError
from tuneforge.corpus.records import Example
from tuneforge.corpus.sources import (
    FieldMapping,
    list_sources,
    load_source_config,
    object_store,
    read_options,
    source_entries,
)
from tuneforge.governance.matching import line_digest, normalize, record_text, value_in
from tuneforge.governance.stored import text_of


@dataclass(frozen=True)
class RawMatch:
    """One raw record (or one whole unreadable file, ``position`` None) holding what a request asks to erase."""

    source: str
    file: str  # relative to the source directory
    position: int | None  # line (JSONL, CSV), item (JSON), row (xlsx, Parquet); None: the whole file
    why: str  # "id" or "value"
    example: Example | None  # the canonical row it maps to (None when it could not be mapped)
    url: str | None = None  # the object's URL, for a source on object storage (its records are not rewritten)
    etag: str | None = None  # the object's ETag as listed: the content the match was found in

    @property
    def at_source(self) -> bool:
        """Held in an object of a source's bucket, which tuneforge does not write to."""
        return self.url is not None


class SourceUnreachable(RuntimeError):
    """A source on object storage could not be listed or read while searching it: the search is not complete."""


def id_matches(example_id: str, wanted: set[str]) -> bool:
    """``wanted`` holds ids as a user gives them: ``<source>/<id>`` or the bare id, in any source."""
    qualified = example_id.split("@", 1)[0]
    return qualified in wanted or qualified.split("/", 1)[1] in wanted


def find_records(raw_dir: Path, ids: set[str], values: list[str]) -> Iterator[RawMatch]:
    """Every record under ``raw_dir`` whose id is in ``ids`` or that holds one of ``values``, in the sources' files
    on disk and in the objects of the sources on object storage (read-only, streamed). ``SourceUnreachable`` naming
    the source and its location when one of those cannot be listed or read."""
    for source in list_sources(raw_dir):
        source_dir = raw_dir / source
        config = load_source_config(source_dir)
        options = read_options(source_dir, config)
        try:
            # strict: an object this process may not read fails the search rather than being skipped (the ingestion
            # may run with other credentials, and read it).
            store = object_store(source_dir, config, strict=True)
            yield from _source_records(source, source_entries(source_dir, config, options, store), config.fields,
                                       options, ids, values)
        except ObjectStoreError as error:
            error = getattr(error, "cause", error)
            raise SourceUnreachable(f"Source {source!r} ({config.location}): {error}") from None


def _source_records(source: str, entries: Iterator[readers.Entry], fields: FieldMapping, options: readers.ReadOptions,
                    ids: set[str], values: list[str]) -> Iterator[RawMatch]:
    for entry in entries:
        if not isinstance(entry, readers.DataFile):
            continue
        url = etag = None
        if isinstance(entry.path, ObjectPath):
            url = str(entry.path)
            etag = entry.path.info.etag if entry.path.info is not None else None
        for item in readers.read_file(entry, options):
            if isinstance(item, readers.Problem):
                if values and item.record and any(value_in(v, normalize(item.record)) for v in values):
                    yield RawMatch(source, item.file, item.line, "value", None, url, etag)
                continue
            example = to_example(item, fields, source)
            example = example if isinstance(example, Example) else None
            if example is not None and id_matches(example.id, ids):
                yield RawMatch(source, item.file, item.line, "id", example, url, etag)
            elif values and any(value_in(v, normalize(record_text(item.data))) for v in values):
                yield RawMatch(source, item.file, item.line, "value", example, url, etag)


def record_lines(path: Path, positions: set[int | None]) -> set[str]:
    """The digests of the lines at ``positions`` of a line-per-record file (JSONL, CSV; the first line of a CSV
    record that spans several), to find the file's earlier versions; empty for other formats."""
    if readers.data_format_of(path.name) not in ("jsonl", "csv"):
        return set()
    lines = text_of(path.read_bytes()).splitlines()
    return {line_digest(lines[p - 1]) for p in positions if p is not None and 0 < p <= len(lines)
            and lines[p - 1].strip()}


def scrub_file(source_dir: Path, name: str, positions: set[int | None]) -> str:
    """Remove the records at ``positions`` from ``source_dir/name``; returns ``rewritten``, ``deleted`` or
    ``absent`` (already gone: a rerun after a crash)."""
    path = source_dir / name
    if not path.exists():
        return "absent"
    config = load_source_config(source_dir)
    options = read_options(source_dir, config)
    data_file = next((entry for entry in readers.discover(source_dir, options)
                      if isinstance(entry, readers.DataFile) and entry.name == name), None)
    if data_file is None or None in positions or data_file.format == "text":
        return _delete(path, data_file, options)
    kept = REWRITERS[data_file.format](data_file, positions, options)
    if kept == 0:
        return _delete(path, data_file, options)
    return "rewritten"


def _delete(path: Path, data_file: readers.DataFile | None, options: readers.ReadOptions) -> str:
    if data_file is not None and data_file.format == "text":
        path.with_name(readers.summary_name(path.name, options.summary_suffix)).unlink(missing_ok=True)
    path.unlink()
    return "deleted"


def _decompressed(data_file: readers.DataFile) -> bytes:
    with open_decompressed(data_file.path, data_file.compression) as handle:
        return handle.read()


def _write(data_file: readers.DataFile, data: bytes) -> None:
    """Replace the file atomically with ``data``, compressed as it was."""
    compress = {None: lambda raw: raw, "gzip": gzip.compress, "bzip2": bz2.compress,
                "zstd": zstandard.ZstdCompressor().compress}[data_file.compression]
    with AtomicFile(data_file.path, "wb") as handle:
        handle.write(compress(data))
        handle.commit()


def _rewrite_jsonl(data_file: readers.DataFile, positions: set[int | None], options: readers.ReadOptions) -> int:
    lines = _decompressed(data_file).splitlines(keepends=True)
    kept = [line for number, line in enumerate(lines, start=1) if number not in positions]
    _write(data_file, b"".join(kept))
    return sum(1 for line in kept if line.strip())


def _rewrite_csv(data_file: readers.DataFile, positions: set[int | None], options: readers.ReadOptions) -> int:
    # CSV encodings a source may declare are ASCII-compatible (checked when source.yaml is read), so latin-1 maps
    # each byte to one character and back: the record boundaries are found without knowing the encoding.
    lines = _decompressed(data_file).decode("latin-1").splitlines(keepends=True)
    detected: dict[str, str] = {}
    delimiter = options.csv_delimiter or _detected_delimiter(data_file, options, detected)
    reader = csv.reader(iter(lines), delimiter=delimiter)
    drop: set[int] = set()
    records, end = 0, 0
    for row in reader:
        start, end = end + 1, reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        records += 1
        if start in positions:
            drop.update(range(start, end + 1))
    kept = [line for number, line in enumerate(lines, start=1) if number not in drop]
    _write(data_file, "".join(kept).encode("latin-1"))
    return records - 1 - len(positions)  # less the header


def _detected_delimiter(data_file: readers.DataFile, options: readers.ReadOptions, detected: dict[str, str]) -> str:
    for _ in readers.read_file(data_file, options, detected):
        pass
    return detected.get("delimiter", ",")


def _rewrite_json(data_file: readers.DataFile, positions: set[int | None], options: readers.ReadOptions) -> int:
    value = json.loads(_decompressed(data_file).decode("utf-8-sig"))
    if not isinstance(value, list):
        return 0
    kept = [item for index, item in enumerate(value, start=1) if index not in positions]
    _write(data_file, (json.dumps(kept, ensure_ascii=False, indent=2) + "\n").encode("utf-8"))
    return len(kept)


def _rewrite_xlsx(data_file: readers.DataFile, positions: set[int | None], options: readers.ReadOptions) -> int:
    import openpyxl

    workbook = openpyxl.load_workbook(data_file.path)
    sheet = workbook[options.sheet] if options.sheet else workbook.worksheets[0]
    for row in sorted((p for p in positions if p is not None), reverse=True):
        sheet.delete_rows(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    _write(data_file, buffer.getvalue())
    return max(sheet.max_row - 1, 0)


def _rewrite_parquet(data_file: readers.DataFile, positions: set[int | None], options: readers.ReadOptions) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(data_file.path)
    mask = pa.array([index not in positions for index in range(1, table.num_rows + 1)])
    kept = table.filter(mask)
    buffer = io.BytesIO()
    pq.write_table(kept, buffer)
    _write(data_file, buffer.getvalue())
    return kept.num_rows


REWRITERS = {"jsonl": _rewrite_jsonl, "csv": _rewrite_csv, "json": _rewrite_json, "xlsx": _rewrite_xlsx,
             "parquet": _rewrite_parquet}
