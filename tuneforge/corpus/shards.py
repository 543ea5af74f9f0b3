"""State sharded by key, so no process holds every row's keys: the dedup keys of cleaning and curation, and the
ids of ingestion (``tuneforge.corpus.firsts``).

Records of uint64 columns are partitioned by a key into ``count`` shards as they arrive (``scatter``: a shuffle), to
files on this machine (``FileShards``) or to Ray's object store (``RayShards``); afterwards ``map`` runs a function on
each shard's records on its own, one shard at a time here or as parallel Ray tasks. Only the results travel back.
The scatter is buffered in the producer up to ``BUFFER_BYTES`` in all, so the files appended to or objects put grow
with the bytes scattered and the shard count, not with chunks x shards: hundreds of shards cost no more small writes
than a few.

Duplicate finding: each chunk's exact keys and MinHash band keys are scattered by key. A shard holds every row that
shares a key with any of its rows, so the exact duplicates and the LSH candidate pairs found shard by shard are
exactly those found over all rows at once. The caller clusters the candidate pairs (``dedup.cluster_pairs``) in the
same order as :class:`~tuneforge.corpus.dedup.DuplicateFinder`, so both give the same duplicates.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from tuneforge.corpus.dedup import Duplicate, Verifier, cluster_pairs

EXACT, BANDS, IDS = "exact", "bands", "ids"
# exact: key, row; bands: band, key, row; ids: the columns tuneforge.corpus.firsts.FIELDS names
COLUMNS = {EXACT: 2, BANDS: 3, IDS: 11}
DEFAULT_SHARDS = 16
# Scattered records wait in the producer until they hold this many bytes (all kinds and shards together), then each
# shard's share of them is written at once: one file append or one Ray object per shard and kind per flush. So a
# shuffle of B bytes writes about (B / BUFFER_BYTES + 1) x shards pieces of about BUFFER_BYTES / shards bytes each,
# however small the chunks it arrives in, and the buffer never holds more than this (plus one chunk).
BUFFER_BYTES = 128 << 20


class _BufferedShards:
    """The scatter side every kind of shards shares: records are buffered with their shard numbers, and ``flush``
    (when the buffer is full, and before ``map``) sorts them by shard, stably, and hands each shard its records in
    input order to ``_write``. ``writes`` counts the pieces written."""

    def __init__(self, count: int, buffer_bytes: int | None = None) -> None:
        if count < 1:
            raise ValueError(f"a shard count is at least 1, got {count}")
        self.count = count
        self.buffer_bytes = BUFFER_BYTES if buffer_bytes is None else buffer_bytes
        self.writes = 0
        self._pending: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {kind: [] for kind in COLUMNS}
        self._pending_bytes = 0

    def scatter(self, kind: str, records: np.ndarray, keys: np.ndarray) -> None:
        """Send each record to the shard its key falls in (``key % count``); within a shard the records keep their
        order of arrival. The arrays are held until the next flush: the caller must not change them."""
        if len(records) == 0:
            return
        records = np.asarray(records).astype(np.uint64, copy=False)
        shard_of = (np.asarray(keys, dtype=np.uint64) % np.uint64(self.count)).astype(
            np.uint16 if self.count <= 1 << 16 else np.int64)  # 16 bits: numpy's stable sort is a radix sort
        self._pending[kind].append((records, shard_of))
        self._pending_bytes += records.nbytes + shard_of.nbytes
        if self._pending_bytes >= self.buffer_bytes:
            self.flush()

    def flush(self) -> None:
        """Write out what the buffer holds: per kind, each shard's records in one piece."""
        for kind, pending in self._pending.items():
            if not pending:
                continue
            records = np.concatenate([part for part, _ in pending])
            shard_of = np.concatenate([shard for _, shard in pending])
            pending.clear()
            order = np.argsort(shard_of, kind="stable")
            records = records[order]
            bounds = np.r_[0, np.cumsum(np.bincount(shard_of, minlength=self.count))]
            del shard_of, order
            for shard in np.flatnonzero(bounds[1:] > bounds[:-1]).tolist():
                self._write(kind, shard, records[bounds[shard]:bounds[shard + 1]])
                self.writes += 1
        self._pending_bytes = 0

    def _write(self, kind: str, shard: int, records: np.ndarray) -> None:
        raise NotImplementedError


class FileShards(_BufferedShards):
    """Shards as files of uint64 records in a directory, processed one at a time in this process."""

    def __init__(self, directory: Path, count: int = DEFAULT_SHARDS, buffer_bytes: int | None = None) -> None:
        super().__init__(count, buffer_bytes)
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)

    def _path(self, kind: str, shard: int) -> Path:
        return self.directory / f"{kind}-{shard:04d}.u64"

    def _write(self, kind: str, shard: int, records: np.ndarray) -> None:
        with self._path(kind, shard).open("ab") as handle:
            records.tofile(handle)

    def map(self, function: Callable[..., Any], kind: str, *args: Any) -> Iterator[Any]:
        self.flush()
        for shard in range(self.count):
            path = self._path(kind, shard)
            records = np.fromfile(path, dtype=np.uint64) if path.exists() else np.zeros(0, dtype=np.uint64)
            yield function(records.reshape(-1, COLUMNS[kind]), *args)


class MemoryShards(_BufferedShards):
    """Shards as arrays in this process: for an input small enough that its keys are few (a small source's ids)."""

    def __init__(self, count: int = 1, buffer_bytes: int | None = None) -> None:
        super().__init__(count, buffer_bytes)
        self._parts: dict[str, list[list[np.ndarray]]] = {kind: [[] for _ in range(count)] for kind in COLUMNS}

    def _write(self, kind: str, shard: int, records: np.ndarray) -> None:
        self._parts[kind][shard].append(records)

    def map(self, function: Callable[..., Any], kind: str, *args: Any) -> Iterator[Any]:
        self.flush()
        for parts in self._parts[kind]:
            records = np.concatenate(parts) if parts else np.zeros((0, COLUMNS[kind]), dtype=np.uint64)
            yield function(records.reshape(-1, COLUMNS[kind]), *args)


class RayShards(_BufferedShards):
    """Shards as lists of objects in Ray's object store (spilled to disk by Ray when memory runs short); each shard
    is processed by a Ray task on whichever node has room, taking its pieces (one per flush) as arguments."""

    def __init__(self, ray: Any, count: int = DEFAULT_SHARDS, buffer_bytes: int | None = None) -> None:
        super().__init__(count, buffer_bytes)
        self._ray = ray
        self._parts: dict[str, list[list[Any]]] = {kind: [[] for _ in range(count)] for kind in COLUMNS}
        self._task = ray.remote(_process_parts)

    def _write(self, kind: str, shard: int, records: np.ndarray) -> None:
        self._parts[kind][shard].append(self._ray.put(records))

    def map(self, function: Callable[..., Any], kind: str, *args: Any) -> Iterator[Any]:
        self.flush()
        shared = [self._ray.put(arg) for arg in args]
        pending = [self._task.remote(function, COLUMNS[kind], len(shared), *shared, *parts)
                   for parts in self._parts[kind]]
        for reference in pending:
            yield self._ray.get(reference)


def _process_parts(function: Callable[..., Any], columns: int, shared: int, *values: Any) -> Any:
    args, parts = values[:shared], values[shared:]
    records = np.concatenate(parts) if parts else np.zeros((0, columns), dtype=np.uint64)
    return function(records.reshape(-1, columns), *args)


def scatter(shards: FileShards | MemoryShards | RayShards, kind: str, records: np.ndarray, keys: np.ndarray) -> None:
    """Append each record to the shard its key falls in (``key % count``), keeping their order within a shard
    (buffered: see ``BUFFER_BYTES``)."""
    shards.scatter(kind, records, keys)


class ShardedDuplicateFinder:
    """:class:`~tuneforge.corpus.dedup.DuplicateFinder`'s interface and results, with the keys in shards."""

    def __init__(self, shards: FileShards | RayShards) -> None:
        self.shards = shards
        self.rows = 0

    def add(self, exact_keys: np.ndarray, bands: np.ndarray) -> None:
        exact_keys = np.asarray(exact_keys, dtype=np.uint64)
        bands = np.asarray(bands, dtype=np.uint64)
        if len(exact_keys) != len(bands):
            raise ValueError(f"{len(exact_keys)} exact keys but {len(bands)} band-key rows")
        rows = np.arange(self.rows, self.rows + len(exact_keys), dtype=np.uint64)
        scatter(self.shards, EXACT, np.stack([exact_keys, rows], axis=1), exact_keys)
        if bands.size:
            count = bands.shape[1]
            # Band-major, so within a band the rows stay in input order across chunks.
            band_ids = np.repeat(np.arange(count, dtype=np.uint64), len(rows))
            keys = bands.T.reshape(-1)
            scatter(self.shards, BANDS, np.stack([band_ids, keys, np.tile(rows, count)], axis=1), keys)
        self.rows += len(exact_keys)

    def find(self, verify: Verifier) -> dict[int, Duplicate]:
        duplicates: dict[int, Duplicate] = {}
        for removed, kept in self.shards.map(exact_duplicates_in, EXACT):
            for row, original in zip(removed.tolist(), kept.tolist(), strict=True):
                duplicates[row] = Duplicate(original, "exact_duplicate", original, "same document and summary")
        removed = np.array(sorted(duplicates), dtype=np.uint64)
        found = [pairs for pairs in self.shards.map(candidate_pairs_in, BANDS, removed) if len(pairs)]
        if found:
            pairs = np.unique(np.concatenate(found), axis=0)
            pairs = pairs[np.lexsort((pairs[:, 0], pairs[:, 1]))]
            duplicates.update(cluster_pairs(pairs, verify))
        return duplicates


def exact_duplicates_in(records: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(removed rows, the earliest row with the same key) within one shard of (key, row) records."""
    keys, rows = records[:, 0], records[:, 1]
    order = np.lexsort((rows, keys))
    keys, rows = keys[order], rows[order]
    first = np.r_[True, keys[1:] != keys[:-1]] if len(keys) else np.zeros(0, dtype=bool)
    start = np.maximum.accumulate(np.where(first, np.arange(len(keys)), 0)) if len(keys) else first
    repeats = ~first
    return rows[repeats].astype(np.int64), rows[start[repeats]].astype(np.int64)


def candidate_pairs_in(records: np.ndarray, removed: np.ndarray) -> np.ndarray:
    """(earliest, later) row pairs sharing a band key within one shard of (band, key, row) records, leaving out the
    removed rows; each bucket pairs its earliest row with the rest."""
    if len(records) == 0:
        return np.zeros((0, 2), dtype=np.int64)
    records = records[~np.isin(records[:, 2], removed)]
    band, key, row = records[:, 0], records[:, 1], records[:, 2]
    order = np.lexsort((row, key, band))
    band, key, row = band[order], key[order], row[order]
    same = (band[1:] == band[:-1]) & (key[1:] == key[:-1])
    if not same.any():
        return np.zeros((0, 2), dtype=np.int64)
    starts = np.maximum.accumulate(np.where(np.r_[True, ~same], np.arange(len(row)), 0))
    later = np.flatnonzero(same) + 1
    return np.stack([row[starts[later]], row[later]], axis=1).astype(np.int64)


def local_shards(parent: Path, count: int = DEFAULT_SHARDS) -> FileShards:
    """File shards in a fresh directory under ``parent`` (the caller removes it)."""
    return FileShards(Path(tempfile.mkdtemp(dir=parent, prefix=".dedup-")), count)
