"""Which record comes first with its id: ingestion's repeat and id-clash decisions, made with the ids sharded.

Ingestion keeps the first record of each id. A later record with the same id is an exact repeat of it (the same
row: a note, ``duplicate_record``) or an id clash (``duplicate_id``), except that a record read in another file than
the first one, with other content and an id of its own, is another record (exports often number each file from 0):
it is kept under its id qualified by its file, ``<id>@<file>``, unless that id was read before too, when it is a
repeat or a clash of that one. Which record comes first depends on the order of reading, so these decisions used to
be made in one dictionary of every id while reading.

Here each record becomes one row of fixed-width keys (``key_row``): hashes of its id and of its qualified id, a
digest of its row under each, and where it was read. The rows are scattered by the part of the id before its first
``@`` (``tuneforge.corpus.shards``): an id and every id qualified from it share that part, so a shard holds every
record that any decision about its records depends on, and deciding shard by shard, in input order
(``decide_shard``), gives exactly the decisions of the one dictionary. No process holds every id: a shard's records
are about 1/count of them, and only the ids that more than one of its records share enter its dictionary.

Ids are compared by 128-bit hashes and rows by 64-bit digests (as the one dictionary compared them): a collision is
as unlikely as one of those digests.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from tuneforge.corpus.shards import COLUMNS, IDS, scatter

if TYPE_CHECKING:
    from tuneforge.corpus.shards import FileShards, MemoryShards, RayShards

# The columns of a key row. BASE: the shard key (a hash of the id up to its first '@'); POSITION: the record's number
# among all records, in input order; the id's hash (two words); the qualified id's hash; the row's digest under the
# id and under the qualified id; FILE and LINE: where it was read (LINE 0: a whole-file record); QUALIFIABLE: 1 when
# the record carries an id of its own (a derived id is never qualified).
FIELDS = ("base", "position", "id_hi", "id_lo", "qualified_hi", "qualified_lo", "digest", "qualified_digest",
          "file", "line", "qualifiable")
BASE, POSITION, FILE = FIELDS.index("base"), FIELDS.index("position"), FIELDS.index("file")
assert len(FIELDS) == COLUMNS[IDS]

# Key rows are scattered in batches of about this many (88 bytes each).
SCATTER_ROWS = 1 << 16
# What a decision says about a record (bits): kept or quarantined under its qualified id; an exact repeat; a clash.
QUALIFIED, REPEAT, CLASH = 1, 2, 4


_WORDS = struct.Struct(">QQ").unpack  # a 16-byte digest as two 64-bit words
_ROW = struct.Struct(f"={len(FIELDS)}Q").pack  # a key row as numpy reads np.uint64 columns


def id_hash(text: str) -> tuple[int, int]:
    """128 bits of an id's hash, as two 64-bit words."""
    return _WORDS(hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest())


def key_row(example_id: str, digest: int, qualified: tuple[str, int] | None, file: int, line: int) -> bytes:
    """The key row of one record, packed (``rows_of`` reads them; the position is set by ``FirstOccurrences.add``);
    ``qualified`` is its qualified id (``example_id@...``) and the digest of its row under it, or None when it
    cannot be qualified."""
    id_hi, id_lo = id_hash(example_id)
    at = example_id.find("@")
    base = id_hi if at < 0 else id_hash(example_id[:at])[0]
    if qualified is None:
        return _ROW(base, 0, id_hi, id_lo, 0, 0, digest, 0, file, line, 0)
    qualified_id, qualified_digest = qualified
    if not qualified_id.startswith(example_id + "@"):
        raise ValueError(f"a qualified id extends the id with '@...': {qualified_id!r} does not extend {example_id!r}")
    return _ROW(base, 0, id_hi, id_lo, *id_hash(qualified_id), digest, qualified_digest, file, line, 1)


def rows_of(packed: bytes) -> np.ndarray:
    """Packed key rows (``key_row``'s, concatenated) as an array of them."""
    return np.frombuffer(packed, dtype=np.uint64).reshape(-1, len(FIELDS)).copy()


@dataclass(frozen=True)
class Decisions:
    """The records that are not plain first occurrences, by position: ``codes`` (bits of QUALIFIED, REPEAT, CLASH)
    and, for a repeat or a clash, the file index and line of the record it repeats or clashes with."""

    positions: np.ndarray
    codes: np.ndarray
    files: np.ndarray
    lines: np.ndarray

    @classmethod
    def of(cls, rows: np.ndarray) -> Decisions:
        rows = rows[np.argsort(rows[:, 0], kind="stable")]
        return cls(rows[:, 0], rows[:, 1], rows[:, 2], rows[:, 3])

    def __len__(self) -> int:
        return len(self.positions)

    def between(self, start: int, stop: int) -> dict[int, tuple[int, int, int]]:
        """position -> (code, file, line) for the positions in ``[start, stop)``."""
        low, high = np.searchsorted(self.positions, [start, stop])
        return {position: (code, file, line) for position, code, file, line in zip(
            self.positions[low:high].tolist(), self.codes[low:high].tolist(), self.files[low:high].tolist(),
            self.lines[low:high].tolist(), strict=True)}


class FirstOccurrences:
    """Key rows scattered into shards as they arrive (in input order, a batch at a time), then decided shard by
    shard."""

    def __init__(self, shards: FileShards | MemoryShards | RayShards) -> None:
        self.shards = shards
        self.records = 0
        self._pending: list[np.ndarray] = []
        self._pending_rows = 0

    def add(self, keys: np.ndarray) -> None:
        """Add the key rows of the next records in input order; their POSITION column is set here."""
        keys = np.array(keys, dtype=np.uint64).reshape(-1, len(FIELDS))  # a copy: the caller's is left as it was
        keys[:, POSITION] = np.arange(self.records, self.records + len(keys), dtype=np.uint64)
        self.records += len(keys)
        self._pending.append(keys)
        self._pending_rows += len(keys)
        if self._pending_rows >= SCATTER_ROWS:
            self._scatter()

    def _scatter(self) -> None:
        if self._pending:
            keys = np.concatenate(self._pending)
            scatter(self.shards, IDS, keys, keys[:, BASE])
        self._pending, self._pending_rows = [], 0

    def decide(self) -> Decisions:
        self._scatter()
        found = [rows for rows in self.shards.map(decide_shard, IDS) if len(rows)]
        return Decisions.of(np.concatenate(found) if found else np.zeros((0, 4), dtype=np.int64))


def decide_shard(keys: np.ndarray) -> np.ndarray:
    """(position, code, first file, first line) of every record in one shard that is not a plain first occurrence,
    deciding in input order as one dictionary of every id would. A record whose base no other record of the shard
    shares is a plain first occurrence: only the others are looked at, and only their ids enter the dictionary."""
    keys = keys[np.argsort(keys[:, POSITION], kind="stable")]
    _, inverse, counts = np.unique(keys[:, BASE], return_inverse=True, return_counts=True)
    seen: dict[int, tuple[int, int, int]] = {}  # id hash -> digest, file and line of the record holding it
    decided: list[tuple[int, int, int, int]] = []
    for (_, position, id_hi, id_lo, qualified_hi, qualified_lo, digest, qualified_digest, file, line,
         qualifiable) in keys[counts[inverse] > 1].tolist():
        key = id_hi << 64 | id_lo
        first = seen.get(key)
        qualify = bool(qualifiable) and first is not None and first[0] != digest and first[1] != file
        if qualify:
            key, digest = qualified_hi << 64 | qualified_lo, qualified_digest
            first = seen.get(key)
        code = QUALIFIED if qualify else 0
        if first is not None:
            decided.append((position, code | (REPEAT if first[0] == digest else CLASH), first[1], first[2]))
            continue
        if qualify:
            decided.append((position, code, 0, 0))
        seen[key] = (digest, file, line)
    return np.array(decided, dtype=np.int64).reshape(-1, 4)
